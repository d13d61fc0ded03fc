"""Signed, expiring links to the preference page, and the CSRF tokens of its forms.

A link token carries one debtor id and when it was signed, nothing else; itsdangerous
signs it, the same library the unsubscribe links use. A form's CSRF token is a
signature over the link token and the form's submission id, so a form is only accepted
back on the link it was served for.
"""

from __future__ import annotations

import base64
import binascii
import uuid

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

LINK_SALT = "parley.preferences.link"
CSRF_SALT = "parley.preferences.csrf"


class LinkExpired(Exception):
    """A genuine link, too old to act on."""


class LinkInvalid(Exception):
    """Not a link the messenger signed (forged, altered or cut short)."""


def _encode(debtor_id: str) -> str:
    return base64.urlsafe_b64encode(debtor_id.encode()).decode().rstrip("=")


def _decode(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise LinkInvalid("the debtor part is not readable") from error


class PreferenceLinks:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        # The debtor id is base64url-encoded so the token stays URL-safe whatever the id.
        self._signer = TimestampSigner(secret, salt=LINK_SALT, sep=".")
        self._csrf = Signer(secret, salt=CSRF_SALT, sep=".")
        self._max_age = max_age_seconds

    def sign(self, debtor_id: str) -> str:
        return self._signer.sign(_encode(debtor_id)).decode()

    def debtor_of(self, token: str) -> str:
        """The debtor a token names; raises LinkExpired or LinkInvalid."""
        try:
            value = self._signer.unsign(token, max_age=self._max_age)
        except SignatureExpired as error:
            raise LinkExpired("the link is older than its lifetime") from error
        except BadSignature as error:
            raise LinkInvalid("the link's signature does not match") from error
        return _decode(value.decode())

    def csrf_token(self, link_token: str, submission: uuid.UUID) -> str:
        return self._csrf.get_signature(f"{link_token}|{submission}").decode()

    def csrf_valid(self, link_token: str, submission: uuid.UUID, csrf: str) -> bool:
        try:
            return self._csrf.verify_signature(f"{link_token}|{submission}", csrf.encode())
        except BadSignature:
            return False
