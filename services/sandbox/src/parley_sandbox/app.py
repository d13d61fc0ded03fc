"""The sandbox app: both provider stand-ins plus endpoints to inspect what they accepted."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from parley_sandbox import __version__
from parley_sandbox.callbacks import Caller, new_message_sid, twilio_signature
from parley_sandbox.faults import FaultPlan, FaultRequest
from parley_sandbox.records import MessageLog, Provider, RecordedMessage
from parley_sandbox.sendgrid_api import build_sendgrid_router
from parley_sandbox.settings import SandboxSettings
from parley_sandbox.twilio_api import build_twilio_router


class InboundSms(BaseModel):
    """A debtor's text, as Twilio would deliver it to the messenger."""

    from_: str = Field(alias="from", description="The debtor's number, E.164.")
    body: str
    to: str = Field(default="+15005550006", description="Our number the text was sent to.")


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    settings = settings or SandboxSettings()
    log = MessageLog()
    faults = FaultPlan()
    caller = Caller(settings.callback_delay_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await caller.close()

    app = FastAPI(title="Parley provider sandbox", version=__version__, lifespan=lifespan)
    app.state.messages = log
    app.state.faults = faults
    app.include_router(build_twilio_router(settings, log, faults, caller))
    app.include_router(build_sendgrid_router(settings, log, faults, caller))

    @app.post("/_sandbox/faults", tags=["sandbox"])
    async def add_fault(fault: FaultRequest) -> dict[str, int]:
        """Queue a fault for the next ``times`` calls, or for every call during
        ``for_seconds``; answers how many faults are pending per provider."""
        faults.add(fault)
        return faults.pending()

    @app.delete("/_sandbox/faults", tags=["sandbox"])
    async def clear_faults() -> dict[str, int]:
        faults.clear()
        return faults.pending()

    @app.post("/_sandbox/twilio/inbound", tags=["sandbox"], response_model=None)
    async def simulate_inbound(sms: InboundSms) -> JSONResponse:
        """Deliver a debtor's text to the messenger, signed like Twilio; answers with the
        messenger's status and the replies its TwiML asks for."""
        if settings.twilio_inbound_url is None:
            return JSONResponse({"detail": "twilio_inbound_url is not set"}, status_code=409)
        sid = new_message_sid()
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": settings.twilio_account_sid,
            "From": sms.from_,
            "To": sms.to,
            "Body": sms.body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        url = settings.twilio_inbound_url
        signature = twilio_signature(settings.twilio_auth_token.get_secret_value(), url, form)
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
        replies: list[str] = []
        if response.status_code == 200 and response.text.strip().startswith("<?xml"):
            root = ElementTree.fromstring(response.text)  # noqa: S314 - our own TwiML
            replies = [message.text or "" for message in root.iter("Message")]
        return JSONResponse(
            {"message_sid": sid, "status": response.status_code, "replies": replies}
        )

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
