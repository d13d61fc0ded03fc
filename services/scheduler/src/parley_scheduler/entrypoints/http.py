from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException
from parley_shared.clock import Clock
from pydantic import BaseModel, Field

from parley_scheduler import handlers
from parley_scheduler.adapters.database import SchedulerStore
from parley_scheduler.domain.campaign import CampaignError


class CampaignRunRequest(BaseModel):
    campaign_yaml: str = Field(description="The campaign definition, as YAML text.")
    accounts_csv: str = Field(description="The accounts, as CSV text with a header row.")


class RejectedRowOut(BaseModel):
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
    rejected_rows: list[RejectedRowOut]
    unreachable: list[UnreachableOut]
    planned: int
    new: int
    published: int


def build_http_router(
    store: SchedulerStore, publisher: handlers.Publisher, clock: Clock
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["campaigns"])

    @router.post("/campaign-runs", response_model=CampaignRunResponse)
    async def run_campaign(request: CampaignRunRequest) -> CampaignRunResponse:
        """Propose the campaign's first step for every usable account (idempotent)."""
        try:
            report = await handlers.run_first_step(
                request.campaign_yaml, request.accounts_csv, store, publisher, clock
            )
        except CampaignError as error:
            raise HTTPException(status_code=422, detail=error.problems) from error
        return CampaignRunResponse.model_validate(asdict(report))

    return router
