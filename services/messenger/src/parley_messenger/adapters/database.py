"""The ``messenger.sends`` ledger: one row per proposal, claimed before any provider call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from parley_shared.events import Channel
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_messenger.domain.model import SendRecord, SendStatus

SCHEMA = "messenger"

metadata = MetaData(schema=SCHEMA)

sends = Table(
    "sends",
    metadata,
    # The primary key is the at-most-once guarantee: a second claim cannot insert.
    Column("proposal_id", Uuid(), primary_key=True),
    Column("debtor_id", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_message_id", String(64)),
    Column("error_code", String(64)),
    Column("detail", Text()),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("trace_id", String(32)),
    CheckConstraint(
        "status IN ('claimed', 'sent', 'failed', 'expired', 'unknown')", name="ck_sends_status"
    ),
    Index("ix_sends_debtor_id", "debtor_id"),
)


def _record(row: Any) -> SendRecord:
    return SendRecord(
        proposal_id=row.proposal_id,
        debtor_id=row.debtor_id,
        channel=Channel(row.channel),
        status=SendStatus(row.status),
        provider=row.provider,
        claimed_at=row.claimed_at,
        provider_message_id=row.provider_message_id,
        error_code=row.error_code,
        detail=row.detail,
        finished_at=row.finished_at,
        trace_id=row.trace_id,
    )


class SendStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, record: SendRecord) -> SendRecord | None:
        """Insert ``record`` and commit. Returns None when it was inserted, or the row that
        was already there (the proposal was claimed before: never send again)."""
        values = {
            "proposal_id": record.proposal_id,
            "debtor_id": record.debtor_id,
            "channel": record.channel.value,
            "status": record.status.value,
            "provider": record.provider,
            "provider_message_id": record.provider_message_id,
            "error_code": record.error_code,
            "detail": record.detail,
            "claimed_at": record.claimed_at,
            "finished_at": record.finished_at,
            "trace_id": record.trace_id,
        }
        statement = (
            insert(sends)
            .values(values)
            .on_conflict_do_nothing(index_elements=[sends.c.proposal_id])
            .returning(sends.c.proposal_id)
        )
        async with self._engine.begin() as connection:
            inserted = (await connection.execute(statement)).first()
            if inserted is not None:
                return None
            existing = (
                await connection.execute(
                    select(sends).where(sends.c.proposal_id == record.proposal_id)
                )
            ).one()
        return _record(existing)

    async def finish(self, record: SendRecord) -> bool:
        """Store a claimed send's outcome. An ``unknown`` set meanwhile (a redelivery saw the
        claim and gave up on it) is overwritten: the sender knows what happened."""
        statement = (
            update(sends)
            .where(
                sends.c.proposal_id == record.proposal_id,
                sends.c.status.in_([SendStatus.CLAIMED.value, SendStatus.UNKNOWN.value]),
            )
            .values(
                status=record.status.value,
                provider_message_id=record.provider_message_id,
                error_code=record.error_code,
                detail=record.detail,
                finished_at=record.finished_at,
            )
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def give_up_on_claim(
        self, proposal_id: uuid.UUID, finished_at: datetime, detail: str
    ) -> SendRecord | None:
        """Turn a claim whose outcome nobody recorded into ``unknown``; return the row after."""
        statement = (
            update(sends)
            .where(
                sends.c.proposal_id == proposal_id,
                sends.c.status == SendStatus.CLAIMED.value,
            )
            .values(status=SendStatus.UNKNOWN.value, finished_at=finished_at, detail=detail)
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)
            row = (
                await connection.execute(select(sends).where(sends.c.proposal_id == proposal_id))
            ).first()
        return None if row is None else _record(row)
