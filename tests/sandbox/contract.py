"""Checking the stand-ins against the providers' published OpenAPI documents.

The documents name the real hosts as servers; the copies loaded here name a loopback
origin with a port variable instead, so openapi-core matches requests to the stand-in.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict


def _contracts_folder() -> Path:
    """The providers' specs sit in ``shared/contracts`` beside the checkout; a clone made
    elsewhere (CI's, a temp dir) falls back to the workplace's copy."""
    beside_checkout = Path(__file__).resolve().parents[3] / "shared" / "contracts"
    return beside_checkout if beside_checkout.is_dir() else Path("/work/shared/contracts")


CONTRACTS = _contracts_folder()
TWILIO_SPEC = CONTRACTS / "twilio" / "twilio_api_v2010.json"
SENDGRID_SPEC = CONTRACTS / "sendgrid" / "tsg_mail_v3.json"
LOOPBACK = [{"url": "http://127.0.0.1:{port}", "variables": {"port": {"default": "8190"}}}]
TWILIO_MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


def _pointed_at_loopback(document: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    # Only the operations under test: validating the whole Twilio document costs seconds.
    document["paths"] = {path: document["paths"][path] for path in paths}
    document["servers"] = LOOPBACK
    for item in document["paths"].values():
        item.pop("servers", None)
    return document


@cache
def twilio_openapi() -> OpenAPI:
    document = json.loads(TWILIO_SPEC.read_text())
    return OpenAPI.from_dict(_pointed_at_loopback(document, [TWILIO_MESSAGES]))


@cache
def sendgrid_openapi() -> OpenAPI:
    document = json.loads(SENDGRID_SPEC.read_text())
    return OpenAPI.from_dict(_pointed_at_loopback(document, ["/v3/mail/send"]))


class WireRequest:
    """An HTTP request as it went over the wire, in openapi-core's request protocol."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes | None):
        parts = urlsplit(url)
        self._method = method.lower()
        self._host_url = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path
        self._body = body
        self._headers = Headers(headers)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(parts.query)),
            header=self._headers,
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return self._host_url

    @property
    def path(self) -> str:
        return self._path

    @property
    def method(self) -> str:
        return self._method

    @property
    def body(self) -> bytes | None:
        return self._body

    @property
    def content_type(self) -> str:
        return str(self._headers.get("Content-Type", "")).lower()


class WireResponse:
    def __init__(self, status_code: int, headers: dict[str, str], data: bytes | None):
        self._status_code = status_code
        self._headers = Headers(headers)
        self._data = data

    @property
    def status_code(self) -> int:
        return self._status_code

    @property
    def headers(self) -> Headers:
        return self._headers

    @property
    def content_type(self) -> str:
        return str(self._headers.get("Content-Type", "")).lower()

    @property
    def data(self) -> bytes | None:
        return self._data
