"""``parley-messenger``: run the messenger service (``asyncapi`` prints its AsyncAPI document)."""

from __future__ import annotations

from parley_shared.service import service_main

from parley_messenger.bootstrap import create_app
from parley_messenger.settings import MessengerSettings


def main() -> None:
    service_main(MessengerSettings, create_app)


if __name__ == "__main__":
    main()
