"""Run the consent service: ``python -m parley_consent`` (or ``asyncapi`` to print its document)."""

from __future__ import annotations

from parley_shared.service import service_main

from parley_consent.bootstrap import create_app
from parley_consent.settings import ConsentSettings


def main() -> None:
    service_main(ConsentSettings, create_app)


if __name__ == "__main__":
    main()
