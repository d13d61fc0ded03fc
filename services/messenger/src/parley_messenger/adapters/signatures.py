"""Who may talk to the messenger's public endpoints: provider signatures and the signed
unsubscribe links, each checked with the library that defines it."""

from __future__ import annotations

import binascii
import time
import uuid
from collections.abc import Mapping

from itsdangerous import BadSignature, Signer
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

UNSUBSCRIBE_SALT = "parley.unsubscribe"


class UnsubscribeLinks:
    """Signs a proposal id into its unsubscribe link, and checks a link's token."""

    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret, salt=UNSUBSCRIBE_SALT)

    def sign(self, proposal_id: uuid.UUID) -> str:
        return self._signer.get_signature(str(proposal_id)).decode()

    def valid(self, proposal_id: uuid.UUID, token: str) -> bool:
        try:
            return self._signer.verify_signature(str(proposal_id), token.encode())
        except BadSignature:
            return False


class TwilioWebhookVerifier:
    """``X-Twilio-Signature``: HMAC-SHA1 with the auth token over the public URL Twilio
    requested plus the sorted form fields."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def valid(self, public_url: str, form: Mapping[str, object], signature: str | None) -> bool:
        if not signature:
            return False
        return bool(self._validator.validate(public_url, form, signature))


class SendGridWebhookVerifier:
    """The signed Event Webhook: ECDSA P-256 over timestamp + raw body. A post older than
    ``max_age`` seconds is refused, so a captured post cannot be replayed later."""

    def __init__(self, public_key: str | None, max_age: int) -> None:
        self._webhook = EventWebhook(public_key) if public_key else None
        self._max_age = max_age

    def valid(
        self, body: bytes, signature: str | None, timestamp: str | None, now: float | None = None
    ) -> bool:
        if self._webhook is None or not signature or not timestamp:
            return False
        try:
            age = (time.time() if now is None else now) - int(timestamp)
            payload = body.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        if not -60 <= age <= self._max_age:
            return False
        try:
            return bool(self._webhook.verify_signature(payload, signature, timestamp))
        except (binascii.Error, ValueError):
            return False
