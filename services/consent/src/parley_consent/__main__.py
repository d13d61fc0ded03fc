"""Run the consent service: ``python -m parley_consent`` or ``parley-consent``."""

from __future__ import annotations

from parley_shared.service import serve

from parley_consent.bootstrap import create_app
from parley_consent.settings import ConsentSettings


def main() -> None:
    settings = ConsentSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
