"""The stand-ins calling back, signed the way the providers sign: Twilio status callbacks
and inbound SMS (X-Twilio-Signature, computed by the twilio SDK's RequestValidator), and
SendGrid's Event Webhook (ECDSA P-256 over timestamp + body)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

# Sandbox-only numbers: accepted, then reported undelivered with this error (carrier
# filtering) in the status callback, as Twilio does for 30007.
UNDELIVERED_NUMBERS: dict[str, str] = {"+15005550030": "30007"}
# Sandbox-only mailboxes: accepted, then reported by the Event Webhook as these events.
EMAIL_OUTCOMES: dict[str, dict[str, str]] = {
    "bounce": {"event": "bounce", "type": "bounce", "reason": "550 5.1.1 mailbox unknown"},
    "blocked": {"event": "bounce", "type": "blocked", "reason": "421 try again later"},
    "dropped": {"event": "dropped", "reason": "Bounced Address"},
    "spam": {"event": "spamreport"},
    "unsubscribe": {"event": "unsubscribe"},
}


def twilio_signature(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    return str(RequestValidator(auth_token).compute_signature(url, dict(form)))


def sendgrid_signature(private_key_pem: str, timestamp: str, body: bytes) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the Event Webhook key must be an EC (P-256) private key")
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


class Caller:
    """Posts callbacks in the background, so the API answer never waits for them."""

    def __init__(self, delay_seconds: float) -> None:
        self._delay = delay_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def later(self, *posts: tuple[str, dict[str, str], bytes | dict[str, str]]) -> None:
        task = asyncio.create_task(self._post_in_order(posts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_in_order(
        self, posts: Sequence[tuple[str, dict[str, str], bytes | dict[str, str]]]
    ) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for url, headers, body in posts:
                await asyncio.sleep(self._delay)
                try:
                    if isinstance(body, bytes):
                        response = await client.post(url, content=body, headers=headers)
                    else:
                        response = await client.post(url, data=body, headers=headers)
                except httpx.HTTPError as error:
                    log.warning("callback to %s failed: %s", url, type(error).__name__)
                    return
                if response.status_code >= 300:
                    log.warning("callback to %s answered %s", url, response.status_code)

    async def close(self) -> None:
        """Drop callbacks not yet made: a stopped provider calls nobody."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def twilio_status_posts(
    auth_token: str, account_sid: str, url: str, sid: str, sender: str, to: str
) -> list[tuple[str, dict[str, str], bytes | dict[str, str]]]:
    error = UNDELIVERED_NUMBERS.get(to)
    finals = [("sent", ""), ("undelivered", error) if error else ("delivered", "")]
    posts: list[tuple[str, dict[str, str], bytes | dict[str, str]]] = []
    for status, code in finals:
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": account_sid,
            "From": sender,
            "To": to,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
        }
        if code:
            form["ErrorCode"] = code
        signature = twilio_signature(auth_token, url, form)
        posts.append((url, {"X-Twilio-Signature": signature}, form))
    return posts


def sendgrid_events(
    message_id: str, recipients: Sequence[str], custom_args: Mapping[str, str]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    now = int(time.time())
    for email in recipients:
        outcome = EMAIL_OUTCOMES.get(email.split("@", 1)[0].lower())
        kinds = [{"event": "processed"}, outcome or {"event": "delivered"}]
        for kind in kinds:
            events.append(
                {
                    "email": email,
                    "timestamp": now,
                    "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16))
                    .rstrip(b"=")
                    .decode(),
                    "sg_message_id": f"{message_id}.filterdrecv-sandbox-0",
                    **kind,
                    **custom_args,
                }
            )
    return events


def sendgrid_event_post(
    private_key_pem: str, url: str, events: list[dict[str, Any]]
) -> tuple[str, dict[str, str], bytes]:
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": sendgrid_signature(
            private_key_pem, timestamp, body
        ),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    return url, headers, body
