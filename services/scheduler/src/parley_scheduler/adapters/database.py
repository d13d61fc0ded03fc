"""The scheduler's store: proposals (an outbox) and the decisions that came back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from parley_shared.events import ContactDecision, ReminderProposed
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncEngine

SCHEMA = "scheduler"
metadata = MetaData(schema=SCHEMA)

proposals = Table(
    "proposals",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("debtor_id", String(128), nullable=False, index=True),
    Column("campaign_id", String(64), nullable=False),
    Column("campaign_version", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("event", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
)

decisions = Table(
    "decisions",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("debtor_id", String(128), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("rule_ids", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("defer_until", DateTime(timezone=True)),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)


class SchedulerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_proposals(self, planned: Sequence[ReminderProposed]) -> int:
        """Insert proposals not seen before; returns how many were new."""
        if not planned:
            return 0
        rows = [
            {
                "proposal_id": proposal.proposal_id,
                "debtor_id": proposal.debtor_id,
                "campaign_id": proposal.campaign_id,
                "campaign_version": proposal.campaign_version,
                "step": proposal.step,
                "channel": proposal.channel.value,
                "event": proposal.model_dump(mode="json"),
            }
            for proposal in planned
        ]
        statement = (
            insert(proposals)
            .on_conflict_do_nothing(index_elements=["proposal_id"])
            .returning(proposals.c.proposal_id)
        )
        async with self._engine.begin() as connection:
            inserted = 0
            for start in range(0, len(rows), 1000):
                result = await connection.execute(statement, rows[start : start + 1000])
                inserted += len(result.fetchall())
        return inserted

    async def unpublished(self, limit: int = 1000) -> list[ReminderProposed]:
        query = (
            select(proposals.c.event)
            .where(proposals.c.published_at.is_(None))
            .order_by(proposals.c.created_at, proposals.c.proposal_id)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            result = await connection.execute(query)
            return [ReminderProposed.model_validate(row.event) for row in result]

    async def mark_published(self, proposal_ids: Sequence[uuid.UUID], at: datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(proposals)
                .where(proposals.c.proposal_id.in_(list(proposal_ids)))
                .values(published_at=at)
            )

    async def record_decision(self, decision: ContactDecision) -> bool:
        """Store a decision once; a redelivered decision changes nothing."""
        statement = (
            insert(decisions)
            .values(
                proposal_id=decision.proposal_id,
                debtor_id=decision.debtor_id,
                verdict=decision.verdict.value,
                rule_ids=[reason.rule_id for reason in decision.reasons],
                defer_until=decision.defer_until,
                decided_at=decision.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=["proposal_id"])
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def decision_counts(self) -> dict[str, Any]:
        query = select(decisions.c.verdict, func.count()).group_by(decisions.c.verdict)
        async with self._engine.connect() as connection:
            result = await connection.execute(query)
            return {row[0]: row[1] for row in result}
