"""The messenger's HTTP endpoints: provider webhooks, one-click unsubscribe, and the
read and check endpoints other services call.

Every webhook checks its signature first (403, nothing recorded, when it fails) and
answers 2xx only after its effect is durable.
"""

from __future__ import annotations

import html
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from parley_shared.events import Channel
from parley_shared.metrics import ServiceMetrics
from pydantic import BaseModel, Field

from parley_messenger import listening
from parley_messenger.adapters.signatures import (
    SendGridWebhookVerifier,
    TwilioWebhookVerifier,
    UnsubscribeLinks,
)
from parley_messenger.adapters.templates import TemplateChecker

log = logging.getLogger(__name__)

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class HttpDeps:
    listening: listening.ListeningDeps
    public_base_url: str
    twilio: TwilioWebhookVerifier
    sendgrid: SendGridWebhookVerifier
    links: UnsubscribeLinks
    checker: TemplateChecker
    metrics: ServiceMetrics | None = None


class TemplateCheckRequest(BaseModel):
    template: str = Field(min_length=1, max_length=64)
    locale: str = Field(min_length=2, max_length=35)
    channel: Channel
    variables: list[str] = Field(
        default_factory=list, description="Names of the variables the campaign will supply."
    )


class TemplateCheckProblem(BaseModel):
    line: int | None
    reason: str


class TemplateCheckResult(BaseModel):
    ok: bool
    problems: list[TemplateCheckProblem]


def build_http_router(deps: HttpDeps) -> APIRouter:
    router = APIRouter()

    def refuse(endpoint: str, reason: str) -> None:
        if deps.metrics is not None:
            deps.metrics.webhook_rejections.labels(endpoint, reason).inc()

    def forbidden(endpoint: str) -> JSONResponse:
        refuse(endpoint, "bad_signature")
        return JSONResponse({"detail": "invalid signature"}, status_code=403)

    def malformed(endpoint: str, detail: str) -> JSONResponse:
        refuse(endpoint, "malformed")
        return JSONResponse({"detail": detail}, status_code=400)

    def public_url(request: Request) -> str:
        # Providers sign the URL they called, which is the public one, not what a proxy
        # in front of the messenger forwards.
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{deps.public_base_url.rstrip('/')}{request.url.path}{query}"

    async def verified_twilio_form(request: Request) -> dict[str, str] | None:
        form = await request.form()
        signature = request.headers.get("X-Twilio-Signature")
        if not deps.twilio.valid(public_url(request), form, signature):
            log.warning("refused a Twilio webhook to %s: bad signature", request.url.path)
            return None
        return {key: value for key, value in form.items() if isinstance(value, str)}

    @router.post("/webhooks/twilio/status", tags=["webhooks"], response_model=None)
    async def twilio_status(request: Request) -> Response:
        form = await verified_twilio_form(request)
        if form is None:
            return forbidden("twilio_status")
        try:
            proposal_id = uuid.UUID(request.query_params.get("proposal_id", ""))
        except ValueError:
            proposal_id = None
        try:
            await listening.record_twilio_status(form, proposal_id, deps.listening)
        except ValueError as error:
            return malformed("twilio_status", str(error))
        return Response(status_code=204)

    @router.post("/webhooks/twilio/inbound", tags=["webhooks"], response_model=None)
    async def twilio_inbound(request: Request) -> Response:
        form = await verified_twilio_form(request)
        if form is None:
            return forbidden("twilio_inbound")
        try:
            reply = await listening.answer_twilio_inbound(form, deps.listening)
        except ValueError as error:
            return malformed("twilio_inbound", str(error))
        return Response(reply, media_type="application/xml")

    @router.post("/webhooks/sendgrid/events", tags=["webhooks"], response_model=None)
    async def sendgrid_events(request: Request) -> Response:
        body = await request.body()
        if not deps.sendgrid.valid(
            body,
            request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"),
        ):
            log.warning("refused a SendGrid event post: bad or stale signature")
            return forbidden("sendgrid_events")
        try:
            events: Any = json.loads(body)
            if not isinstance(events, list):
                raise ValueError("the body must be a JSON array of events")
            matched = await listening.record_sendgrid_events(events, deps.listening)
        except ValueError as error:  # JSONDecodeError is a ValueError
            return malformed("sendgrid_events", f"invalid events: {error}")
        return JSONResponse({"received": len(events), "matched": matched})

    @router.get("/unsubscribe/{proposal_id}", tags=["unsubscribe"], response_model=None)
    async def unsubscribe_page(proposal_id: uuid.UUID, token: str = "") -> Response:
        # GET never unsubscribes: mail scanners open links. It offers the POST instead.
        if not deps.links.valid(proposal_id, token):
            return HTMLResponse("<p>This link is not valid.</p>", status_code=403)
        action = html.escape(f"/unsubscribe/{proposal_id}?token={token}")
        return HTMLResponse(
            "<!doctype html><html lang='en'><meta charset='utf-8'><title>Unsubscribe</title>"
            f"<form method='post' action='{action}'>"
            "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
            "<button type='submit'>Stop emails from us</button></form></html>"
        )

    @router.post("/unsubscribe/{proposal_id}", tags=["unsubscribe"], response_model=None)
    async def one_click_unsubscribe(
        proposal_id: uuid.UUID, request: Request, token: str = ""
    ) -> Response:
        if not deps.links.valid(proposal_id, token):
            return forbidden("one_click_unsubscribe")
        form = await request.form()
        if form.get("List-Unsubscribe") != "One-Click":
            return malformed(
                "one_click_unsubscribe", f"the body must be {ONE_CLICK_BODY} (RFC 8058)"
            )
        if not await listening.unsubscribe_by_link(proposal_id, deps.listening):
            return JSONResponse({"detail": "no email was sent for this link"}, status_code=404)
        return HTMLResponse("<p>You will get no more emails from us at this address.</p>")

    @router.get("/v1/debtors/{debtor_id}/deliveries", tags=["deliveries"])
    async def deliveries(debtor_id: str) -> dict[str, list[dict[str, Any]]]:
        return {"deliveries": await listening.deliveries_of(debtor_id, deps.listening)}

    @router.get("/v1/deliveries/unknown", tags=["deliveries"])
    async def unknown_deliveries() -> dict[str, list[dict[str, Any]]]:
        """Sends that may or may not have left: never resent, so ops decide."""
        return {"deliveries": await listening.unknown_outcomes(deps.listening)}

    @router.post("/v1/template-checks", tags=["templates"])
    async def template_check(check: TemplateCheckRequest) -> TemplateCheckResult:
        problems = deps.checker.check(check.template, check.locale, check.channel, check.variables)
        return TemplateCheckResult(
            ok=not problems,
            problems=[TemplateCheckProblem(line=p.line, reason=p.reason) for p in problems],
        )

    return router
