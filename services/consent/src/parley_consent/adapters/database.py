"""The consent store in PostgreSQL schema ``consent``: decisions and consent changes.

Both tables are append-only records. Every method runs in its own transaction and has
committed by the time it returns, so a caller may acknowledge or publish right after.
"""

from __future__ import annotations

import uuid
from typing import Any

from parley_shared.events import Channel, ConsentChanged, ConsentChangeKind, ContactDecision
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_consent.domain.audit import StoredDecision
from parley_consent.domain.consent_state import ConsentRecord, ConsentState, address_key

SCHEMA = "consent"

metadata = MetaData(schema=SCHEMA)

decisions = Table(
    "decisions",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("debtor_id", String(128), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("defer_until", DateTime(timezone=True)),
    Column("lawful_until", DateTime(timezone=True)),
    Column("rule_set_version", Text, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("trace_id", String(32)),
    Column("decision", JSONB, nullable=False, comment="The ContactDecision event as published."),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_decisions_debtor_id_decided_at", "debtor_id", "decided_at"),
)

consent_changes = Table(
    "consent_changes",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("debtor_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(16)),
    Column("address", Text, comment="As received; personal data, never logged."),
    Column("address_key", Text, comment="Normalised address used to match opt-outs."),
    Column("source", String(32), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_consent_changes_debtor_id", "debtor_id"),
    Index("ix_consent_changes_address_key", "address_key"),
)


class ConsentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find_decision(self, proposal_id: uuid.UUID) -> ContactDecision | None:
        async with self._engine.connect() as connection:
            stored = await connection.scalar(
                select(decisions.c.decision).where(decisions.c.proposal_id == proposal_id)
            )
        return None if stored is None else ContactDecision.model_validate(stored)

    async def save_decision(
        self, decision: ContactDecision, *, trace_id: str | None
    ) -> ContactDecision:
        """Store ``decision`` unless one exists for its proposal; return the stored one.

        The first decision stored wins, so a consumer that lost a race publishes the
        winner's decision, not its own.
        """
        insert = (
            pg_insert(decisions)
            .values(
                proposal_id=decision.proposal_id,
                event_id=decision.event_id,
                debtor_id=decision.debtor_id,
                verdict=decision.verdict.value,
                reasons=[reason.model_dump(mode="json") for reason in decision.reasons],
                defer_until=decision.defer_until,
                lawful_until=decision.lawful_until,
                rule_set_version=decision.rule_set_version,
                decided_at=decision.occurred_at,
                trace_id=trace_id,
                decision=decision.model_dump(mode="json"),
            )
            .on_conflict_do_nothing(index_elements=[decisions.c.proposal_id])
            .returning(decisions.c.decision)
        )
        async with self._engine.begin() as connection:
            stored = await connection.scalar(insert)
            if stored is None:
                stored = await connection.scalar(
                    select(decisions.c.decision).where(
                        decisions.c.proposal_id == decision.proposal_id
                    )
                )
        return ContactDecision.model_validate(stored)

    async def find_decision_record(self, proposal_id: uuid.UUID) -> StoredDecision | None:
        """The stored decision with its audit columns (trace id, when it was recorded)."""
        query = select(decisions.c.decision, decisions.c.trace_id, decisions.c.recorded_at).where(
            decisions.c.proposal_id == proposal_id
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return StoredDecision(
            decision=ContactDecision.model_validate(row.decision),
            trace_id=row.trace_id,
            recorded_at=row.recorded_at,
        )

    async def load_consent_state(self, debtor_id: str, address: str) -> ConsentState:
        """Every change of this debtor's, plus every change anyone made for this address."""
        query = select(
            consent_changes.c.debtor_id,
            consent_changes.c.kind,
            consent_changes.c.channel,
            consent_changes.c.address_key,
            consent_changes.c.occurred_at,
        ).where(
            or_(
                consent_changes.c.debtor_id == debtor_id,
                consent_changes.c.address_key == address_key(address),
            )
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return ConsentState(
            tuple(
                ConsentRecord(
                    debtor_id=row.debtor_id,
                    kind=ConsentChangeKind(row.kind),
                    channel=None if row.channel is None else Channel(row.channel),
                    address_key=row.address_key,
                    occurred_at=row.occurred_at,
                )
                for row in rows
            )
        )

    async def record_consent_change(self, event: ConsentChanged) -> tuple[ConsentChanged, bool]:
        """Store ``event`` unless its event id is already recorded.

        Returns the change as recorded and whether this call recorded it.
        """
        insert = (
            pg_insert(consent_changes)
            .values(
                event_id=event.event_id,
                debtor_id=event.debtor_id,
                kind=event.kind.value,
                channel=event.channel.value if event.channel else None,
                address=event.address,
                address_key=address_key(event.address) if event.address else None,
                source=event.source.value,
                evidence=event.evidence,
                details=event.details,
                occurred_at=event.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=[consent_changes.c.event_id])
            .returning(consent_changes.c.event_id)
        )
        async with self._engine.begin() as connection:
            if await connection.scalar(insert) is not None:
                return event, True
            row = (
                await connection.execute(
                    select(consent_changes).where(consent_changes.c.event_id == event.event_id)
                )
            ).one()
        return _consent_change_from_row(row._mapping), False


def _consent_change_from_row(row: Any) -> ConsentChanged:
    return ConsentChanged(
        event_id=row["event_id"],
        debtor_id=row["debtor_id"],
        occurred_at=row["occurred_at"],
        kind=row["kind"],
        channel=row["channel"],
        address=row["address"],
        source=row["source"],
        evidence=row["evidence"],
        details=row["details"],
    )
