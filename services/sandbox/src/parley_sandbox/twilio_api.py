"""The Twilio Messages API stand-in: ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

Answers like Twilio does (201 with the message resource, or Twilio's error JSON) so the
real ``twilio`` SDK can talk to it, including Twilio's magic test numbers.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from parley_sandbox.callbacks import Caller, new_message_sid, twilio_status_posts
from parley_sandbox.faults import FaultPlan
from parley_sandbox.records import MessageLog, RecordedMessage
from parley_sandbox.settings import SandboxSettings

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_BODY_CHARACTERS = 1600
MAX_VALIDITY_PERIOD = 36_000

# Twilio's documented test numbers and the errors they produce.
TEST_NUMBER_ERRORS: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}

ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21212: "Invalid 'From' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21624: "Invalid validity period value",
}

# GSM 03.38: the basic set costs one septet, the extension set two; anything else
# forces UCS-2, which changes how many characters fit in a segment.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("^{}\\[~]|€\f")


def count_segments(body: str) -> int:
    """How many SMS segments Twilio would bill for ``body``."""
    if all(char in _GSM_BASIC or char in _GSM_EXTENSION for char in body):
        septets = sum(2 if char in _GSM_EXTENSION else 1 for char in body)
        single, multi = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: characters outside the BMP take two.
        septets = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if septets <= single:
        return 1
    return -(-septets // multi)


def twilio_error(code: int, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(
        {
            "code": code,
            "message": ERROR_MESSAGES.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
        headers=headers,
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    return (username, password) if separator else None


def _authorised(request: Request, account_sid: str, settings: SandboxSettings) -> bool:
    credentials = _basic_credentials(request)
    if credentials is None:
        return False
    username, password = credentials
    expected_token = settings.twilio_auth_token.get_secret_value()
    # Evaluate both comparisons to keep the timing independent of which one fails.
    user_ok = secrets.compare_digest(username.encode(), settings.twilio_account_sid.encode())
    token_ok = secrets.compare_digest(password.encode(), expected_token.encode())
    return user_ok and token_ok and account_sid == settings.twilio_account_sid


_FAULT_CODES = {429: 20429, 500: 20500, 503: 20503}


def build_twilio_router(
    settings: SandboxSettings, log: MessageLog, faults: FaultPlan, caller: Caller
) -> APIRouter:
    router = APIRouter(tags=["twilio"])

    @router.post(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", response_model=None)
    async def create_message(account_sid: str, request: Request) -> JSONResponse:
        # When the request arrived, not when a slow answer was ready: that is when the
        # sender started this send.
        arrived = datetime.now(UTC)
        if not _authorised(request, account_sid, settings):
            return twilio_error(20003, 401)
        fault = faults.next_for("twilio")
        if fault is not None and fault.refuses:
            return twilio_error(_FAULT_CODES[fault.status], fault.status)
        if fault is not None and fault.kind == "slow":
            await fault.wait()
        response = await _create(account_sid, request, arrived)
        if fault is not None and fault.kind == "timeout":
            # Accepted and recorded, but the answer comes after the client gave up.
            await fault.wait()
        return response

    async def _create(account_sid: str, request: Request, arrived: datetime) -> JSONResponse:
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}

        to = fields.get("To")
        sender = fields.get("From")
        service_sid = fields.get("MessagingServiceSid")
        body = fields.get("Body")
        if not to:
            return twilio_error(21604, 400)
        if not sender and not service_sid:
            return twilio_error(21603, 400)
        if not body:
            return twilio_error(21602, 400)
        if len(body) > MAX_BODY_CHARACTERS:
            return twilio_error(21617, 400)
        if sender and not E164.match(sender):
            return twilio_error(21212, 400)
        validity_period: int | None = None
        if "ValidityPeriod" in fields:
            try:
                validity_period = int(fields["ValidityPeriod"])
            except ValueError:
                return twilio_error(21624, 400)
            if not 1 <= validity_period <= MAX_VALIDITY_PERIOD:
                return twilio_error(21624, 400)
        if to in TEST_NUMBER_ERRORS:
            return twilio_error(TEST_NUMBER_ERRORS[to], 400)
        if not E164.match(to):
            return twilio_error(21211, 400)

        sid = new_message_sid()
        now = arrived
        sequence = log.next_sequence()
        log.add(
            RecordedMessage(
                sequence=sequence,
                provider="twilio",
                message_id=sid,
                to=(to,),
                sender=sender or service_sid,
                body=body,
                traceparent=request.headers.get("traceparent"),
                status_callback=fields.get("StatusCallback"),
                validity_period=validity_period,
                received_at=now,
            )
        )
        status_callback = fields.get("StatusCallback")
        if status_callback and settings.twilio_status_callbacks:
            caller.later(
                *twilio_status_posts(
                    settings.twilio_auth_token.get_secret_value(),
                    account_sid,
                    status_callback,
                    sid,
                    sender or service_sid or "",
                    to,
                )
            )
        return JSONResponse(
            _message_resource(
                sid=sid,
                account_sid=account_sid,
                to=to,
                sender=sender,
                service_sid=service_sid,
                body=body,
                created=now,
            ),
            status_code=201,
        )

    return router


def _message_resource(
    *,
    sid: str,
    account_sid: str,
    to: str,
    sender: str | None,
    service_sid: str | None,
    body: str,
    created: datetime,
) -> dict[str, Any]:
    """The ``api.v2010.account.message`` resource as Twilio returns it right after create."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    timestamp = format_datetime(created)  # RFC 2822, "+0000" like Twilio's
    # Through a Messaging Service without a From, Twilio picks the sender later.
    via_service = service_sid is not None and not sender
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": timestamp,
        "date_sent": None,
        "date_updated": timestamp,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": sender,
        "messaging_service_sid": service_sid,
        "num_media": "0",
        "num_segments": "0" if via_service else str(count_segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if via_service else "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": to,
        "uri": f"{uri}.json",
    }
