"""``parley-sandbox``: serve the provider stand-ins."""

from __future__ import annotations

import logging

import uvicorn

from parley_sandbox.app import create_app
from parley_sandbox.settings import SandboxSettings


def main() -> None:
    settings = SandboxSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        # Access logs would carry nothing personal here, but they add noise to the demo.
        access_log=False,
    )


if __name__ == "__main__":
    main()
