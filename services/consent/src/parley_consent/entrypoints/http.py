"""HTTP routes: consent changes in (durable before the 2xx), decisions out for audit."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from parley_shared.events import ConsentChanged, ContactDecision
from parley_shared.kafka import EventPublisher
from pydantic import BaseModel

from parley_consent.handlers import ConsentStore, apply_consent_change


class DecisionRecord(BaseModel):
    """A stored decision with what the audit needs besides the event itself."""

    decision: ContactDecision
    trace_id: str | None
    recorded_at: datetime


def build_http_router(*, consent_changes: EventPublisher, repository: ConsentStore) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["consent"])

    @router.post(
        "/consent-changes",
        status_code=status.HTTP_201_CREATED,
        responses={200: {"description": "That event id was already recorded; nothing changed."}},
    )
    async def record_consent_change(change: ConsentChanged, response: Response) -> ConsentChanged:
        recorded = await apply_consent_change(change, store=repository)
        # Published on every call, even a repeat: if an earlier call stored the change but
        # failed to publish, the client's retry delivers it. Consumers ignore duplicates.
        await consent_changes.publish(recorded.change)
        if not recorded.newly_recorded:
            response.status_code = status.HTTP_200_OK
        return recorded.change

    @router.get("/decisions/{proposal_id}")
    async def get_decision(proposal_id: uuid.UUID) -> DecisionRecord:
        stored = await repository.find_decision_record(proposal_id)
        if stored is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no decision for this proposal")
        return DecisionRecord(
            decision=stored.decision, trace_id=stored.trace_id, recorded_at=stored.recorded_at
        )

    return router
