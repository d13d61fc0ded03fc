"""The SendGrid Mail Send stand-in: ``POST /v3/mail/send``.

Checks what the real API checks first (bearer key, personalizations, from, subject,
content) and answers like SendGrid: 202 with an empty body and ``X-Message-Id``, or
``{"errors": [...]}``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from parley_sandbox.callbacks import Caller, sendgrid_event_post, sendgrid_events
from parley_sandbox.faults import FaultPlan
from parley_sandbox.records import MessageLog, RecordedMessage
from parley_sandbox.settings import SandboxSettings

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class MailError(Exception):
    """One reason SendGrid would refuse the body (400)."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_json(self) -> dict[str, Any]:
        # SendGrid adds ``help`` (a link, or null) and a null ``field``; its published
        # document types ``help`` as an object and ``field`` as a string. Leaving out what
        # has no value keeps the answer valid against the document and the SDK happy.
        return {"message": self.message} | ({"field": self.field} if self.field else {})


def sendgrid_errors(status: int, *errors: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"errors": list(errors)}, status_code=status)


def new_message_id() -> str:
    """An id shaped like SendGrid's (22 URL-safe base64 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


def _authorised(request: Request, settings: SandboxSettings) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    expected = settings.sendgrid_api_key.get_secret_value()
    return scheme == "Bearer" and secrets.compare_digest(key.encode(), expected.encode())


def _address(value: Any, field: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str):
        raise MailError("The email parameter is required for every address object.", field)
    email: str = value["email"]
    if not EMAIL.match(email):
        raise MailError("Does not contain a valid address.", f"{field}.email")
    return email


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MailError(f"The {field} parameter must be an object of strings.", field)
    return dict(value)


@dataclass(frozen=True)
class ParsedMail:
    recipients: tuple[str, ...]
    sender: str
    subject: str
    text: str
    custom_args: dict[str, str]
    headers: dict[str, str]


def parse_mail(payload: Any) -> ParsedMail:
    """Validate a Mail Send body. Raises ``MailError`` naming the first problem, like
    SendGrid does."""
    if not isinstance(payload, dict):
        raise MailError("Bad Request", None)
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise MailError(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
    recipients: list[str] = []
    custom_args = _string_map(payload.get("custom_args"), "custom_args")
    headers = _string_map(payload.get("headers"), "headers")
    subject = payload.get("subject")
    for index, personalization in enumerate(personalizations):
        field = f"personalizations.{index}"
        if not isinstance(personalization, dict):
            raise MailError("Each personalization must be an object.", field)
        to = personalization.get("to")
        if not isinstance(to, list) or not to:
            raise MailError(
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
                f"{field}.to",
            )
        recipients.extend(_address(item, f"{field}.to.{n}") for n, item in enumerate(to))
        # Personalization values override the message-wide ones, as at SendGrid.
        custom_args |= _string_map(personalization.get("custom_args"), f"{field}.custom_args")
        headers |= _string_map(personalization.get("headers"), f"{field}.headers")
        subject = personalization.get("subject", subject)
    sender = _address(payload.get("from"), "from")
    has_template = isinstance(payload.get("template_id"), str)
    if not has_template and (not isinstance(subject, str) or not subject):
        raise MailError(
            "The subject is required. You can get around this requirement if you use a "
            "template with a subject defined or if every personalization has a subject defined.",
            "subject",
        )
    content = payload.get("content")
    if not has_template and (not isinstance(content, list) or not content):
        raise MailError(
            "Unless a valid template_id is provided, the content parameter is required. There "
            "must be at least one defined content block. We typically suggest both text/plain "
            "and text/html blocks are included, but only one block is required.",
            "content",
        )
    blocks = content if isinstance(content, list) else []
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or not block.get("type") or not block.get("value"):
            raise MailError(
                "The content value must be a string at least one character in length.",
                f"content.{index}.value",
            )
    plain = [b["value"] for b in blocks if b["type"] == "text/plain"]
    text = plain[0] if plain else (blocks[0]["value"] if blocks else "")
    return ParsedMail(tuple(recipients), sender, subject or "", text, custom_args, headers)


_FAULT_MESSAGES = {
    429: "too many requests",
    500: "internal server error",
    503: "service unavailable",
}


def build_sendgrid_router(
    settings: SandboxSettings, log: MessageLog, faults: FaultPlan, caller: Caller
) -> APIRouter:
    router = APIRouter(tags=["sendgrid"])

    @router.post("/v3/mail/send", response_model=None)
    async def send_mail(request: Request) -> Response:
        arrived = datetime.now(UTC)  # when the sender started this send
        if not _authorised(request, settings):
            return sendgrid_errors(
                401,
                {"message": "The provided authorization grant is invalid, expired, or revoked"},
            )
        fault = faults.next_for("sendgrid")
        if fault is not None and fault.refuses:
            refusal = sendgrid_errors(fault.status, {"message": _FAULT_MESSAGES[fault.status]})
            if fault.status == 429:
                refusal.headers["Retry-After"] = "1"
            return refusal
        if fault is not None and fault.kind == "slow":
            await fault.wait()
        response = await _send(request, arrived)
        if fault is not None and fault.kind == "timeout":
            # Accepted and recorded, but the answer comes after the client gave up.
            await fault.wait()
        return response

    async def _send(request: Request, arrived: datetime) -> Response:
        try:
            payload = json.loads(await request.body())
            mail = parse_mail(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return sendgrid_errors(400, MailError("Bad Request", None).as_json())
        except MailError as error:
            return sendgrid_errors(400, error.as_json())

        message_id = new_message_id()
        log.add(
            RecordedMessage(
                sequence=log.next_sequence(),
                provider="sendgrid",
                message_id=message_id,
                to=mail.recipients,
                sender=mail.sender,
                subject=mail.subject,
                body=mail.text,
                traceparent=request.headers.get("traceparent"),
                custom_args=mail.custom_args,
                headers=mail.headers,
                received_at=arrived,
            )
        )
        key = settings.sendgrid_event_private_key
        if settings.sendgrid_event_webhook_url and key is not None:
            events = sendgrid_events(message_id, mail.recipients, mail.custom_args)
            caller.later(
                sendgrid_event_post(
                    key.get_secret_value(), settings.sendgrid_event_webhook_url, events
                )
            )
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    return router
