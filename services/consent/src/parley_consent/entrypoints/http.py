"""HTTP routes: consent changes in (durable before the 2xx), decisions out for audit,
and the evaluate interface for "could we contact this debtor now, and if not, why?"."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response, status
from fastapi.responses import JSONResponse
from parley_shared.clock import Clock
from parley_shared.events import ConsentChanged, ContactDecision
from parley_shared.kafka import EventPublisher
from pydantic import BaseModel

from parley_consent.domain import RuleSet
from parley_consent.domain.debtor_state import CheckedConsentChange
from parley_consent.domain.evaluation import CaseDecision, InvalidCase, evaluate_case
from parley_consent.domain.overview import DebtorOverview, debtor_overview
from parley_consent.handlers import ConsentStore, apply_consent_change


class DecisionRecord(BaseModel):
    """A stored decision with what the audit needs besides the event itself."""

    decision: ContactDecision
    trace_id: str | None
    recorded_at: datetime


class InvalidCaseError(BaseModel):
    detail: str
    field: str


def build_http_router(
    *,
    consent_changes: EventPublisher,
    repository: ConsentStore,
    rules: RuleSet,
    clock: Clock,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["consent"])

    @router.post(
        "/evaluate",
        response_model=CaseDecision,
        responses={422: {"model": InvalidCaseError, "description": "The case is invalid."}},
    )
    async def evaluate(case: Annotated[dict[str, Any], Body()]) -> Any:
        """Decide on one documented JSON case without storing anything: a what-if for
        auditors and ops, under the rule set this service runs."""
        try:
            return evaluate_case(case, rules)
        except InvalidCase as error:
            return JSONResponse(
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                content={"detail": str(error), "field": error.field},
            )

    @router.get("/debtors/{debtor_id}")
    async def get_debtor(debtor_id: str) -> DebtorOverview:
        """The debtor's standing opt-outs, holds, preferences, recent decisions and
        consent changes, newest first; addresses are masked."""
        changes = await repository.debtor_changes(debtor_id)
        decisions = await repository.recent_decisions(debtor_id)
        return debtor_overview(debtor_id, changes, decisions, clock.now())

    @router.post(
        "/consent-changes",
        status_code=status.HTTP_201_CREATED,
        responses={200: {"description": "That event id was already recorded; nothing changed."}},
    )
    async def record_consent_change(
        change: CheckedConsentChange, response: Response
    ) -> ConsentChanged:
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
