"""The messenger's tables: the ``sends`` ledger (one row per proposal, claimed before any
provider call), the ``suppressions`` checked at dispatch, provider ``receipts`` and the
``inbound_messages`` already answered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parley_shared.events import Channel
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    desc,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_messenger.domain.model import SendRecord, SendStatus
from parley_messenger.domain.suppression import SuppressionChange

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
    Column("span_id", String(16)),
    # Kept so replies (STOP from a number, one-click unsubscribe) find whom they concern.
    Column("address", Text()),
    CheckConstraint(
        "status IN ('claimed', 'sent', 'failed', 'expired', 'unknown', 'suppressed')",
        name="ck_sends_status",
    ),
    Index("ix_sends_debtor_id", "debtor_id"),
    Index("ix_sends_address", "address"),
    Index("ix_sends_provider_message_id", "provider_message_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("scope", Text(), primary_key=True),
    Column("suppressed", Boolean(), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("source", String(32), nullable=False),
    Column("evidence", Text(), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    # "twilio:<sid>:<status>" or "sendgrid:<sg_event_id>": a provider's retry is one row.
    Column("receipt_id", String(200), primary_key=True),
    Column("proposal_id", Uuid(), nullable=False),
    Column("debtor_id", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_message_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("error_code", String(64)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("trace_id", String(32)),
    Index("ix_receipts_debtor_id", "debtor_id"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("message_sid", String(64), primary_key=True),
    Column("intent", String(16), nullable=False),
    # The TwiML answered the first time: a retried webhook gets the same, so a debtor
    # never receives two confirmations for one STOP.
    Column("reply", Text(), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def _row_values(record: SendRecord) -> dict[str, Any]:
    return {
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
        "span_id": record.span_id,
        "address": record.address,
    }


# The columns of a claim, and the ones a finished send updates.
_SEND_COLUMNS = tuple(sends.c.keys())
_OUTCOME_COLUMNS = (
    "proposal_id",
    "status",
    "provider_message_id",
    "error_code",
    "detail",
    "finished_at",
)


def _as_arrays(records: list[SendRecord], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """One array per column, as the batch statements below take their parameters."""
    rows = [_row_values(record) for record in records]
    return {name: [row[name] for row in rows] for name in names}


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
        span_id=row.span_id,
        address=row.address,
    )


# Claims and outcomes of many sends each take one statement, every column one array
# parameter: the statement text is the same whatever the batch size, so SQLAlchemy and
# asyncpg reuse its compiled form and prepared plan (a multi-row VALUES list was
# compiled anew for every batch, about a tenth of the messenger's CPU).
_CLAIM_SENDS = text(
    """
    INSERT INTO messenger.sends (
        proposal_id, debtor_id, channel, status, provider, provider_message_id, error_code,
        detail, claimed_at, finished_at, trace_id, span_id, address
    )
    SELECT * FROM unnest(
        CAST(:proposal_id AS uuid[]), CAST(:debtor_id AS text[]), CAST(:channel AS text[]),
        CAST(:status AS text[]), CAST(:provider AS text[]),
        CAST(:provider_message_id AS text[]), CAST(:error_code AS text[]),
        CAST(:detail AS text[]), CAST(:claimed_at AS timestamptz[]),
        CAST(:finished_at AS timestamptz[]), CAST(:trace_id AS text[]),
        CAST(:span_id AS text[]), CAST(:address AS text[])
    )
    ON CONFLICT (proposal_id) DO NOTHING
    RETURNING proposal_id
    """
).columns(sends.c.proposal_id)

# Only a claim, or an ``unknown`` given up on meanwhile, takes an outcome.
_FINISH_SENDS = text(
    """
    UPDATE messenger.sends
    SET status = outcome.status, provider_message_id = outcome.provider_message_id,
        error_code = outcome.error_code, detail = outcome.detail,
        finished_at = outcome.finished_at
    FROM unnest(
        CAST(:proposal_id AS uuid[]), CAST(:status AS text[]),
        CAST(:provider_message_id AS text[]), CAST(:error_code AS text[]),
        CAST(:detail AS text[]), CAST(:finished_at AS timestamptz[])
    ) AS outcome(proposal_id, status, provider_message_id, error_code, detail, finished_at)
    WHERE sends.proposal_id = outcome.proposal_id
      AND sends.status IN ('claimed', 'unknown')
    RETURNING sends.proposal_id
    """
).columns(sends.c.proposal_id)


class SendStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, record: SendRecord) -> SendRecord | None:
        """Insert ``record`` and commit. Returns None when it was inserted, or the row that
        was already there (the proposal was claimed before: never send again)."""
        (existing,) = await self.claim_many([record])
        return existing

    async def claim_many(self, records: list[SendRecord]) -> list[SendRecord | None]:
        """``claim`` for several records in one statement and one commit; the answers are
        in the order of ``records``. A proposal twice in the list is claimed by its first
        occurrence only: the later one gets that claim back as the row already there."""
        if not records:
            return []
        parameters = _as_arrays(records, _SEND_COLUMNS)
        async with self._engine.begin() as connection:
            inserted = set((await connection.scalars(_CLAIM_SENDS, parameters)).all())
            # Rows of the same proposal as an earlier list entry are not inserted twice.
            first_of: dict[uuid.UUID, SendRecord] = {}
            for record in records:
                first_of.setdefault(record.proposal_id, record)
            there_before = {r.proposal_id for r in records} - inserted
            found: dict[uuid.UUID, SendRecord] = {}
            if there_before:
                rows = await connection.execute(
                    select(sends).where(sends.c.proposal_id.in_(there_before))
                )
                found = {row.proposal_id: _record(row) for row in rows}
        answers: list[SendRecord | None] = []
        claimed: set[uuid.UUID] = set()
        for record in records:
            key = record.proposal_id
            if key in inserted and key not in claimed:
                claimed.add(key)
                answers.append(None)
            else:
                answers.append(found.get(key, first_of[key]))
        return answers

    async def finish(self, record: SendRecord) -> bool:
        """Store a claimed send's outcome. An ``unknown`` set meanwhile (a redelivery saw the
        claim and gave up on it) is overwritten: the sender knows what happened."""
        (stored,) = await self.finish_many([record])
        return stored

    async def finish_many(self, records: list[SendRecord]) -> list[bool]:
        """``finish`` for several sends in one statement and one commit; True for each
        outcome stored, in the order of ``records``."""
        if not records:
            return []
        parameters = _as_arrays(records, _OUTCOME_COLUMNS)
        async with self._engine.begin() as connection:
            stored = set((await connection.scalars(_FINISH_SENDS, parameters)).all())
        return [record.proposal_id in stored for record in records]

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

    async def get(self, proposal_id: uuid.UUID) -> SendRecord | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(sends).where(sends.c.proposal_id == proposal_id))
            ).first()
        return None if row is None else _record(row)

    async def by_provider_message_id(self, provider_message_id: str) -> SendRecord | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(sends).where(sends.c.provider_message_id == provider_message_id)
                )
            ).first()
        return None if row is None else _record(row)

    async def unknown_outcomes(self, limit: int = 200) -> list[SendRecord]:
        """Sends whose outcome nobody knows (the request left, no answer came): for ops to
        check with the provider by hand, since they are never resent. Newest first."""
        statement = (
            select(sends)
            .where(sends.c.status == SendStatus.UNKNOWN.value)
            .order_by(desc(sends.c.claimed_at))
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_record(row) for row in rows]

    async def latest_of(self, debtor_id: str) -> SendRecord | None:
        """The debtor's most recent send, whatever became of it (the preference page shows
        the account that message was about)."""
        statement = (
            select(sends)
            .where(sends.c.debtor_id == debtor_id)
            .order_by(desc(sends.c.claimed_at))
            .limit(1)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        return None if row is None else _record(row)

    async def debtors_reached_at(self, channel: Channel, address: str) -> list[str]:
        """Debtors we have sent to at this address, most recent first."""
        statement = (
            select(sends.c.debtor_id, sends.c.claimed_at)
            .where(sends.c.channel == channel.value, sends.c.address == address)
            .order_by(desc(sends.c.claimed_at))
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return list(dict.fromkeys(row.debtor_id for row in rows))


@dataclass(frozen=True)
class Receipt:
    """A provider's later word on one message (delivered, bounced ...)."""

    receipt_id: str
    proposal_id: uuid.UUID
    debtor_id: str
    channel: Channel
    provider: str
    provider_message_id: str | None
    status: str
    error_code: str | None
    occurred_at: datetime
    trace_id: str | None = None


@dataclass(frozen=True)
class DeliveryRow:
    proposal_id: uuid.UUID
    channel: str
    status: str
    provider: str
    provider_message_id: str | None
    error_code: str | None
    at: datetime
    trace_id: str | None


async def _apply_suppression(connection: AsyncConnection, change: SuppressionChange) -> bool:
    """Apply a change unless a newer one of the same scope is stored. Returns True when
    the scope went from not suppressed to suppressed."""
    current = (
        await connection.execute(
            select(suppressions).where(suppressions.c.scope == change.scope).with_for_update()
        )
    ).first()
    values = {
        "suppressed": change.suppressed,
        "reason": change.reason,
        "source": change.source,
        "evidence": change.evidence,
        "changed_at": change.changed_at,
    }
    if current is None:
        # A concurrent first insert of the same scope loses quietly: both are changes of
        # the same moment, and the other one is stored.
        await connection.execute(
            insert(suppressions)
            .values(scope=change.scope, **values)
            .on_conflict_do_nothing(index_elements=[suppressions.c.scope])
        )
        return change.suppressed
    if current.changed_at > change.changed_at:
        return False
    await connection.execute(
        update(suppressions).where(suppressions.c.scope == change.scope).values(**values)
    )
    return change.suppressed and not current.suppressed


class SuppressionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def apply(self, changes: list[SuppressionChange]) -> bool:
        """Apply changes in one transaction; True when any scope became suppressed."""
        newly = False
        async with self._engine.begin() as connection:
            for change in changes:
                newly = await _apply_suppression(connection, change) or newly
        return newly

    async def first_suppressing(self, scopes: tuple[str, ...]) -> str | None:
        """The reason of an opt-out in force for any of ``scopes``, or None."""
        (reason,) = await self.first_suppressing_many([scopes])
        return reason

    async def first_suppressing_many(self, groups: list[tuple[str, ...]]) -> list[str | None]:
        """``first_suppressing`` for several sends' scopes, in one query."""
        wanted = {scope for scopes in groups for scope in scopes}
        if not wanted:
            return [None for _ in groups]
        statement = select(
            suppressions.c.scope, suppressions.c.reason, suppressions.c.source
        ).where(suppressions.c.scope.in_(wanted), suppressions.c.suppressed.is_(True))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        reasons = {row.scope: f"{row.reason} ({row.source})" for row in rows}
        return [
            next((reasons[scope] for scope in scopes if scope in reasons), None)
            for scopes in groups
        ]

    async def answer_inbound_once(
        self,
        message_sid: str,
        intent: str,
        changes: list[SuppressionChange],
        reply_if_newly_suppressed: str,
        reply_otherwise: str,
        received_at: datetime,
    ) -> str:
        """Apply an inbound message's changes and choose its reply, once per message: a
        retried webhook gets the stored reply and changes nothing more. A second STOP
        from a number already stopped gets ``reply_otherwise``."""
        async with self._engine.begin() as connection:
            stored = (
                await connection.execute(
                    select(inbound_messages.c.reply)
                    .where(inbound_messages.c.message_sid == message_sid)
                    .with_for_update()
                )
            ).first()
            if stored is not None:
                return str(stored.reply)
            newly = False
            for change in changes:
                newly = await _apply_suppression(connection, change) or newly
            reply = reply_if_newly_suppressed if newly else reply_otherwise
            await connection.execute(
                insert(inbound_messages)
                .values(
                    message_sid=message_sid, intent=intent, reply=reply, received_at=received_at
                )
                .on_conflict_do_nothing(index_elements=[inbound_messages.c.message_sid])
            )
        return reply


class ReceiptStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, receipt: Receipt, changes: list[SuppressionChange]) -> bool:
        """Store a receipt and what it means for later sends, in one transaction. Returns
        False when the receipt was stored before (the provider retried)."""
        async with self._engine.begin() as connection:
            for change in changes:
                await _apply_suppression(connection, change)
            inserted = (
                await connection.execute(
                    insert(receipts)
                    .values(
                        receipt_id=receipt.receipt_id,
                        proposal_id=receipt.proposal_id,
                        debtor_id=receipt.debtor_id,
                        channel=receipt.channel.value,
                        provider=receipt.provider,
                        provider_message_id=receipt.provider_message_id,
                        status=receipt.status,
                        error_code=receipt.error_code,
                        occurred_at=receipt.occurred_at,
                        trace_id=receipt.trace_id,
                    )
                    .on_conflict_do_nothing(index_elements=[receipts.c.receipt_id])
                    .returning(receipts.c.receipt_id)
                )
            ).first()
        return inserted is not None

    async def deliveries(self, debtor_id: str, limit: int = 200) -> list[DeliveryRow]:
        """Send outcomes and receipts of one debtor, newest first; no addresses."""
        async with self._engine.connect() as connection:
            send_rows = (
                await connection.execute(
                    select(sends)
                    .where(sends.c.debtor_id == debtor_id)
                    .order_by(desc(sends.c.claimed_at))
                    .limit(limit)
                )
            ).all()
            receipt_rows = (
                await connection.execute(
                    select(receipts)
                    .where(receipts.c.debtor_id == debtor_id)
                    .order_by(desc(receipts.c.occurred_at))
                    .limit(limit)
                )
            ).all()
        rows = [
            DeliveryRow(
                proposal_id=row.proposal_id,
                channel=row.channel,
                status=row.status,
                provider=row.provider,
                provider_message_id=row.provider_message_id,
                error_code=row.error_code,
                at=row.finished_at or row.claimed_at,
                trace_id=row.trace_id,
            )
            for row in send_rows
        ] + [
            DeliveryRow(
                proposal_id=row.proposal_id,
                channel=row.channel,
                status=row.status,
                provider=row.provider,
                provider_message_id=row.provider_message_id,
                error_code=row.error_code,
                at=row.occurred_at,
                trace_id=row.trace_id,
            )
            for row in receipt_rows
        ]
        rows.sort(key=lambda row: row.at, reverse=True)
        return rows[:limit]
