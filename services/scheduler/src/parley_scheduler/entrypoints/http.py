"""The scheduler's REST API: campaigns, accounts, enrollment state and ticks."""

from __future__ import annotations

import codecs
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from parley_shared.clock import Clock
from pydantic import BaseModel, Field

from parley_scheduler import handlers
from parley_scheduler.adapters.database import (
    CampaignExists,
    CampaignNotFound,
    NotAnEditor,
    SchedulerStore,
    StoredCampaign,
)
from parley_scheduler.domain.campaign import CampaignError
from parley_scheduler.domain.lifecycle import Action, LifecycleError
from parley_scheduler.domain.templates import TemplateChecker, TemplateCheckUnavailable
from parley_scheduler.entrypoints.auth import Caller, caller_dependency
from parley_scheduler.settings import ApiKey, Role

# Largest accepted import request; bigger files go in several requests (see first_row).
MAX_IMPORT_BYTES = 200 * 1024 * 1024
_DEFINITION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
        "description": "The campaign definition (see docs/campaigns.md); JSON is read as YAML.",
    }
}
_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "Accounts as CSV with a header row (see docs/campaigns.md).",
    }
}


class CampaignRunRequest(BaseModel):
    campaign_yaml: str = Field(description="The campaign definition, as YAML text.")
    accounts_csv: str = Field(description="The accounts, as CSV text with a header row.")


class RowProblemOut(BaseModel):
    row: int
    field: str
    reason: str


class UnreachableOut(BaseModel):
    debtor_id: str
    reason: str


class CampaignRunResponse(BaseModel):
    campaign_id: str
    campaign_version: int
    accounts: int
    rejected_rows: list[RowProblemOut]
    unreachable: list[UnreachableOut]
    planned: int
    new: int
    published: int


class CampaignOut(BaseModel):
    id: str
    version: int
    status: str
    started_at: datetime | None
    updated_at: datetime
    definition: dict[str, Any]
    source: str


class ChangeOut(BaseModel):
    version: int
    action: str
    actor: str
    changes: dict[str, Any]
    at: datetime


class ImportReportOut(BaseModel):
    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: list[RowProblemOut]
    warnings: list[RowProblemOut]


class TickOut(BaseModel):
    planned: int
    new: int
    reproposed: int
    published: int
    by_campaign: dict[str, int]


class EnrollmentEntry(BaseModel):
    proposal_id: str
    campaign_id: str
    campaign_version: int
    step: int
    attempt: int
    channel: str
    proposed_at: datetime
    published_at: datetime | None
    verdict: str | None
    rule_ids: list[str]
    defer_until: datetime | None
    decided_at: datetime | None
    delivery_status: str | None
    delivery_at: datetime | None


class EnrollmentOut(BaseModel):
    debtor_id: str
    proposals: list[EnrollmentEntry]


def _campaign_out(stored: StoredCampaign) -> CampaignOut:
    return CampaignOut(
        id=stored.campaign.id,
        version=stored.campaign.effective_version,
        status=stored.status.value,
        started_at=stored.started_at,
        updated_at=stored.updated_at,
        definition=stored.campaign.model_dump(mode="json"),
        source=stored.source,
    )


async def _text_body(request: Request) -> str:
    body = await request.body()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(status_code=422, detail=["the body must be UTF-8 text"]) from None


def build_http_router(
    store: SchedulerStore,
    publisher: handlers.Publisher,
    clock: Clock,
    checker: TemplateChecker,
    keys: Sequence[ApiKey] = (),
) -> APIRouter:
    router = APIRouter(prefix="/v1")
    # Default-value style: the annotations are strings, resolved in this module's globals.
    as_operator = Depends(caller_dependency(keys, Role.OPERATOR))
    as_auditor = Depends(caller_dependency(keys, Role.AUDITOR))

    @router.post("/campaign-runs", response_model=CampaignRunResponse, tags=["campaigns"])
    async def run_campaign(
        request: CampaignRunRequest, _: Caller = as_operator
    ) -> CampaignRunResponse:
        """Propose a campaign's first step for every usable account at once (idempotent),
        without storing the campaign: for demos and trials."""
        try:
            report = await handlers.run_first_step(
                request.campaign_yaml, request.accounts_csv, store, publisher, clock
            )
        except CampaignError as error:
            raise HTTPException(status_code=422, detail=error.problems) from error
        return CampaignRunResponse.model_validate(asdict(report))

    @router.post(
        "/campaigns",
        status_code=201,
        response_model=CampaignOut,
        tags=["campaigns"],
        openapi_extra=_DEFINITION_BODY,
    )
    async def create_campaign(request: Request, caller: Caller = as_operator) -> CampaignOut:
        """Store a new campaign as a draft (version 1)."""
        source = await _text_body(request)
        try:
            stored = await handlers.save_campaign(
                source, caller.name, store, clock, campaign_id=None
            )
        except CampaignError as error:
            raise HTTPException(status_code=422, detail=error.problems) from error
        except CampaignExists as error:
            raise HTTPException(status_code=409, detail=str(error)) from error
        return _campaign_out(stored)

    @router.put(
        "/campaigns/{campaign_id}",
        response_model=CampaignOut,
        tags=["campaigns"],
        openapi_extra=_DEFINITION_BODY,
    )
    async def change_campaign(
        campaign_id: str, request: Request, caller: Caller = as_operator
    ) -> CampaignOut:
        """Change a campaign: a new version, recorded with who changed what. A running
        campaign keeps its status and runs the new version from the next tick."""
        source = await _text_body(request)
        try:
            stored = await handlers.save_campaign(
                source, caller.name, store, clock, campaign_id=campaign_id
            )
        except CampaignError as error:
            raise HTTPException(status_code=422, detail=error.problems) from error
        except CampaignNotFound as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        except LifecycleError as error:
            raise HTTPException(status_code=409, detail=str(error)) from error
        except NotAnEditor as error:
            raise HTTPException(status_code=403, detail=str(error)) from error
        return _campaign_out(stored)

    @router.get("/campaigns", response_model=list[CampaignOut], tags=["campaigns"])
    async def list_campaigns(_: Caller = as_auditor) -> list[CampaignOut]:
        return [_campaign_out(stored) for stored in await store.all_campaigns()]

    @router.get("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
    async def get_campaign(campaign_id: str, _: Caller = as_auditor) -> CampaignOut:
        try:
            return _campaign_out(await store.campaign(campaign_id))
        except CampaignNotFound as error:
            raise HTTPException(status_code=404, detail=str(error)) from error

    @router.get(
        "/campaigns/{campaign_id}/changes", response_model=list[ChangeOut], tags=["campaigns"]
    )
    async def campaign_changes(campaign_id: str, _: Caller = as_auditor) -> list[ChangeOut]:
        """Every change to the campaign, oldest first: who, when, what."""
        try:
            await store.campaign(campaign_id)
        except CampaignNotFound as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        return [ChangeOut.model_validate(change) for change in await store.changes(campaign_id)]

    def lifecycle_route(action: Action) -> None:
        async def transition(campaign_id: str, caller: Caller = as_operator) -> CampaignOut:
            try:
                stored = await handlers.change_status(
                    campaign_id, action, caller.name, store, checker, clock
                )
            except CampaignNotFound as error:
                raise HTTPException(status_code=404, detail=str(error)) from error
            except LifecycleError as error:
                raise HTTPException(status_code=409, detail=str(error)) from error
            except NotAnEditor as error:
                raise HTTPException(status_code=403, detail=str(error)) from error
            except handlers.TemplatesRefused as error:
                detail = [problem.describe() for problem in error.problems]
                raise HTTPException(status_code=422, detail=detail) from error
            except TemplateCheckUnavailable as error:
                raise HTTPException(status_code=503, detail=str(error)) from error
            return _campaign_out(stored)

        router.add_api_route(
            f"/campaigns/{{campaign_id}}/{action.value}",
            transition,
            methods=["POST"],
            response_model=CampaignOut,
            tags=["campaigns"],
            name=f"{action.value} campaign",
        )

    for action in (Action.ACTIVATE, Action.PAUSE, Action.ARCHIVE):
        lifecycle_route(action)

    @router.post(
        "/accounts/imports",
        response_model=ImportReportOut,
        tags=["accounts"],
        openapi_extra=_CSV_BODY,
    )
    async def import_accounts(
        request: Request,
        _: Caller = as_operator,
        first_row: Annotated[
            int,
            Query(ge=2, description="Row number of the first data row, for files sent in parts."),
        ] = 2,
    ) -> ImportReportOut:
        """Validate and store accounts; every unusable row is reported with its row number,
        field and reason. Importing the same rows again changes nothing."""
        # The body is spooled to disk past a few MB, then read line by line.
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b") as spool:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_IMPORT_BYTES:
                    raise HTTPException(
                        status_code=413, detail="send the file in parts (see first_row)"
                    )
                spool.write(chunk)
            spool.seek(0)
            lines = codecs.iterdecode(spool, "utf-8")
            try:
                report = await handlers.import_accounts(lines, store, clock, first_row)
            except UnicodeDecodeError:
                raise HTTPException(status_code=422, detail=["the CSV must be UTF-8"]) from None
        return ImportReportOut.model_validate(asdict(report))

    @router.get("/accounts/{debtor_id}", tags=["accounts"])
    async def get_account(debtor_id: str, _: Caller = as_auditor) -> dict[str, Any]:
        account = await store.account(debtor_id)
        if account is None:
            raise HTTPException(status_code=404, detail=f"no account {debtor_id}")
        return account.model_dump(mode="json")

    @router.get("/debtors/{debtor_id}/enrollments", response_model=EnrollmentOut, tags=["accounts"])
    async def enrollments(debtor_id: str, _: Caller = as_auditor) -> EnrollmentOut:
        """Every proposal for the debtor with its decision and delivery outcome (no addresses)."""
        rows = await store.debtor_history(debtor_id)
        return EnrollmentOut(
            debtor_id=debtor_id,
            proposals=[
                EnrollmentEntry.model_validate(
                    {
                        **row,
                        "proposal_id": str(row["proposal_id"]),
                        "rule_ids": row["rule_ids"] or [],
                    }
                )
                for row in rows
            ],
        )

    @router.post("/ticks", response_model=TickOut, tags=["scheduling"])
    async def run_tick(_: Caller = as_operator) -> TickOut:
        """Run one scheduling tick now (the loop runs them on its own, too)."""
        return TickOut.model_validate(asdict(await handlers.tick(store, publisher, clock)))

    return router
