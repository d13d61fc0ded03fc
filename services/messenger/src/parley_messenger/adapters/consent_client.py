"""The consent service, as the preference page needs it: record a change (durable
before consent's 2xx, idempotent by event id) and read what is in force."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from parley_shared.events import ConsentChanged


class ConsentUnavailable(Exception):
    """The consent service did not confirm; nothing may be reported as saved."""


class ConsentClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def record(self, change: ConsentChanged) -> ConsentChanged:
        """Send a change; returns it as consent stored it (the first one, for a repeat)."""
        try:
            response = await self._client.post(
                "/v1/consent-changes", json=change.model_dump(mode="json")
            )
        except httpx.HTTPError as error:
            raise ConsentUnavailable(f"consent did not answer: {type(error).__name__}") from error
        if response.status_code not in (200, 201):
            raise ConsentUnavailable(f"consent answered {response.status_code}")
        return ConsentChanged.model_validate(response.json())

    async def debtor(self, debtor_id: str) -> dict[str, Any] | None:
        """Consent's overview of a debtor (masked addresses), or None when unreachable."""
        try:
            response = await self._client.get(f"/v1/debtors/{debtor_id}")
        except httpx.HTTPError:
            return None
        return dict(response.json()) if response.status_code == 200 else None

    async def proposal(self, proposal_id: uuid.UUID) -> dict[str, Any] | None:
        """The proposal consent decided on (its variables and locale), or None."""
        try:
            response = await self._client.get(f"/v1/decisions/{proposal_id}")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        proposal = response.json().get("decision", {}).get("proposal")
        return dict(proposal) if isinstance(proposal, dict) else None
