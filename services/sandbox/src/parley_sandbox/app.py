"""The sandbox app: both provider stand-ins plus endpoints to inspect what they accepted."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query

from parley_sandbox import __version__
from parley_sandbox.records import MessageLog, Provider, RecordedMessage
from parley_sandbox.sendgrid_api import build_sendgrid_router
from parley_sandbox.settings import SandboxSettings
from parley_sandbox.twilio_api import build_twilio_router


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    settings = settings or SandboxSettings()
    log = MessageLog()
    app = FastAPI(title="Parley provider sandbox", version=__version__)
    app.state.messages = log
    app.include_router(build_twilio_router(settings, log))
    app.include_router(build_sendgrid_router(settings, log))

    @app.get("/_sandbox/messages", tags=["sandbox"])
    async def list_messages(
        provider: Provider | None = None,
        after: Annotated[int, Query(ge=0, description="Only sequence numbers above this.")] = 0,
    ) -> list[RecordedMessage]:
        return log.list(provider=provider, after=after)

    @app.delete("/_sandbox/messages", tags=["sandbox"])
    async def clear_messages() -> dict[str, int]:
        return {"deleted": log.clear()}

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": "sandbox"}

    return app
