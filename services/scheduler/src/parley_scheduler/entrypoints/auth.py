"""API keys: only their SHA-256 is configured; operators change things, auditors read."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import Header, HTTPException

from parley_scheduler.settings import ApiKey, Role

# Without configured keys the API is open to a local user acting as this operator.
LOCAL_OPERATOR = "local"


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def caller_dependency(keys: Sequence[ApiKey], needed: Role) -> Callable[..., Awaitable[Caller]]:
    async def caller(
        x_api_key: str | None = Header(default=None, description="Your Parley API key."),
    ) -> Caller:
        if not keys:
            return Caller(LOCAL_OPERATOR, Role.OPERATOR)
        if x_api_key is None:
            raise HTTPException(status_code=401, detail="an X-API-Key header is required")
        digest = hash_key(x_api_key)
        match = next((k for k in keys if hmac.compare_digest(k.sha256, digest)), None)
        if match is None:
            raise HTTPException(status_code=401, detail="unknown API key")
        if needed is Role.OPERATOR and match.role is not Role.OPERATOR:
            raise HTTPException(status_code=403, detail="this needs an operator key")
        return Caller(match.name, match.role)

    return caller
