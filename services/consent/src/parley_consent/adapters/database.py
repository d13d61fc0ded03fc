"""The consent store in PostgreSQL schema ``consent``: decisions, consent changes and
the contacts counted for frequency caps.

Decisions and consent changes are append-only audit records (a trigger refuses updates
and deletes). Every method runs in its own transaction and has committed by the time it
returns, so a caller may acknowledge or publish right after.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from parley_shared.events import (
    Channel,
    ConsentChanged,
    ContactDecision,
    DeliveryReported,
    DeliveryStatus,
    MessageKind,
    Verdict,
)
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    exists,
    func,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_consent.domain.audit import StoredDecision
from parley_consent.domain.consent_state import address_key
from parley_consent.domain.debtor_state import DebtorState, PastContact

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
    Column("evidence", JSONB, nullable=False, server_default="{}"),
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
    Column("hold_kind", String(32)),
    Column("starts_at", DateTime(timezone=True)),
    Column("ends_at", DateTime(timezone=True)),
    Column("preferences", JSONB),
    Index("ix_consent_changes_debtor_id", "debtor_id"),
    Index("ix_consent_changes_address_key", "address_key"),
)

contacts = Table(
    "contacts",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("debtor_id", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_contacts_debtor_id_sent_at", "debtor_id", "sent_at"),
)

# A message counts as a contact once it has left: sent, or any state only a sent
# message reaches. Failed and expired messages never reached the debtor.
COUNTED_STATUSES = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED}
)
# Contacts older than the longest cap window can never count again.
HISTORY_DAYS = 400


# One statement for a whole batch: each column travels as one array parameter, so the
# statement (and its prepared plan) is the same whatever the batch size, unlike a
# multi-row VALUES list; proposals already decided are skipped. The reasons and evidence
# columns are taken from the published decision itself, which is serialised only once.
_INSERT_DECISIONS = text(
    """
    INSERT INTO consent.decisions (
        proposal_id, event_id, debtor_id, verdict, reasons, defer_until, lawful_until,
        rule_set_version, decided_at, trace_id, decision, evidence
    )
    SELECT
        proposal_id, event_id, debtor_id, verdict, decision -> 'reasons', defer_until,
        lawful_until, rule_set_version, decided_at, trace_id, decision, decision -> 'evidence'
    FROM unnest(
        CAST(:proposal_id AS uuid[]), CAST(:event_id AS uuid[]), CAST(:debtor_id AS text[]),
        CAST(:verdict AS text[]), CAST(:defer_until AS timestamptz[]),
        CAST(:lawful_until AS timestamptz[]), CAST(:rule_set_version AS text[]),
        CAST(:decided_at AS timestamptz[]), CAST(:trace_id AS text[]),
        CAST(:decision AS jsonb[])
    ) AS batch(
        proposal_id, event_id, debtor_id, verdict, defer_until, lawful_until,
        rule_set_version, decided_at, trace_id, decision
    )
    ON CONFLICT (proposal_id) DO NOTHING
    RETURNING proposal_id
    """
).columns(decisions.c.proposal_id)


# Delivery reports, a batch per statement the same way; a proposal counts once.
_INSERT_CONTACTS = text(
    """
    INSERT INTO consent.contacts (proposal_id, debtor_id, channel, sent_at, status, event_id)
    SELECT * FROM unnest(
        CAST(:proposal_id AS uuid[]), CAST(:debtor_id AS text[]), CAST(:channel AS text[]),
        CAST(:sent_at AS timestamptz[]), CAST(:status AS text[]), CAST(:event_id AS uuid[])
    )
    ON CONFLICT (proposal_id) DO NOTHING
    RETURNING proposal_id
    """
).columns(contacts.c.proposal_id)


class ConsentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find_decisions(
        self, proposal_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ContactDecision]:
        if not proposal_ids:
            return {}
        query = select(decisions.c.proposal_id, decisions.c.decision).where(
            decisions.c.proposal_id.in_(proposal_ids)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row.proposal_id: ContactDecision.model_validate(row.decision) for row in rows}

    async def save_decisions(
        self,
        decisions_made: Sequence[ContactDecision],
        *,
        trace_ids: Mapping[uuid.UUID, str | None],
    ) -> dict[uuid.UUID, ContactDecision]:
        """Store each decision unless one exists for its proposal; return the stored ones,
        all in one transaction.

        The first decision stored wins, so a consumer that lost a race publishes the
        winner's decision, not its own.
        """
        if not decisions_made:
            return {}
        parameters = {
            "proposal_id": [d.proposal_id for d in decisions_made],
            "event_id": [d.event_id for d in decisions_made],
            "debtor_id": [d.debtor_id for d in decisions_made],
            "verdict": [d.verdict.value for d in decisions_made],
            "defer_until": [d.defer_until for d in decisions_made],
            "lawful_until": [d.lawful_until for d in decisions_made],
            "rule_set_version": [d.rule_set_version for d in decisions_made],
            "decided_at": [d.occurred_at for d in decisions_made],
            "trace_id": [trace_ids.get(d.proposal_id) for d in decisions_made],
            "decision": [d.model_dump_json() for d in decisions_made],
        }
        ours = {decision.proposal_id: decision for decision in decisions_made}
        async with self._engine.begin() as connection:
            inserted = set((await connection.scalars(_INSERT_DECISIONS, parameters)).all())
            lost = [proposal_id for proposal_id in ours if proposal_id not in inserted]
            winners = (
                (
                    await connection.execute(
                        select(decisions.c.proposal_id, decisions.c.decision).where(
                            decisions.c.proposal_id.in_(lost)
                        )
                    )
                ).all()
                if lost
                else []
            )
        stored = {proposal_id: ours[proposal_id] for proposal_id in inserted}
        stored.update(
            {row.proposal_id: ContactDecision.model_validate(row.decision) for row in winners}
        )
        return stored

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

    async def load_debtor_states(
        self, contacts_proposed: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], DebtorState]:
        """Per (debtor, address): every change of that debtor's, plus every change anyone
        made for that address."""
        if not contacts_proposed:
            return {}
        debtor_ids = {debtor_id for debtor_id, _ in contacts_proposed}
        keys = {address_key(address) for _, address in contacts_proposed}
        query = select(consent_changes).where(
            or_(
                consent_changes.c.debtor_id.in_(debtor_ids),
                consent_changes.c.address_key.in_(keys),
            )
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        changes = [_consent_change_from_row(row._mapping) for row in rows]
        # Indexed once, so a batch costs one pass over the changes, not one per proposal.
        by_debtor: dict[str, list[int]] = {}
        by_key: dict[str, list[int]] = {}
        for number, change in enumerate(changes):
            by_debtor.setdefault(change.debtor_id, []).append(number)
            if change.address:
                by_key.setdefault(address_key(change.address), []).append(number)
        states: dict[tuple[str, str], DebtorState] = {}
        for debtor_id, address in set(contacts_proposed):
            numbers = set(by_debtor.get(debtor_id, ())) | set(by_key.get(address_key(address), ()))
            states[(debtor_id, address)] = DebtorState.from_events(
                debtor_id, [changes[number] for number in sorted(numbers)]
            )
        return states

    async def load_histories(
        self, debtor_ids: Sequence[str], now: datetime
    ) -> dict[str, list[PastContact]]:
        """Each debtor's contacts recent enough to count towards any cap.

        Besides messages reported as sent, an approval whose message may still leave (its
        lawful deadline has not passed and no report counted it yet) counts as a contact
        from the moment it was decided: otherwise two proposals approved before either
        send is reported could both go out past a cap.
        """
        if not debtor_ids:
            return {}
        message_kind = decisions.c.decision["proposal"]["message_kind"].astext
        channel = decisions.c.decision["proposal"]["channel"].astext
        sent = (
            select(
                contacts.c.debtor_id,
                contacts.c.proposal_id,
                contacts.c.channel,
                contacts.c.sent_at,
                message_kind.label("message_kind"),
            )
            .outerjoin(decisions, decisions.c.proposal_id == contacts.c.proposal_id)
            .where(
                contacts.c.debtor_id.in_(debtor_ids),
                contacts.c.sent_at >= now - timedelta(days=HISTORY_DAYS),
            )
        )
        in_flight = select(
            decisions.c.debtor_id,
            decisions.c.proposal_id,
            channel.label("channel"),
            decisions.c.decided_at.label("sent_at"),
            message_kind.label("message_kind"),
        ).where(
            decisions.c.debtor_id.in_(debtor_ids),
            decisions.c.verdict == Verdict.APPROVED.value,
            decisions.c.lawful_until > now,
            ~exists().where(contacts.c.proposal_id == decisions.c.proposal_id),
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(union_all(sent, in_flight))).all()
        histories: dict[str, list[PastContact]] = {}
        for row in rows:
            histories.setdefault(row.debtor_id, []).append(
                PastContact(
                    proposal_id=row.proposal_id,
                    channel=Channel(row.channel),
                    sent_at=row.sent_at,
                    message_kind=MessageKind(row.message_kind) if row.message_kind else None,
                )
            )
        return histories

    async def record_deliveries(self, events: Sequence[DeliveryReported]) -> int:
        """Count each proposal's message as a contact the first time a report shows it
        left, the whole batch in one statement. Returns how many this call counted;
        repeated or later reports change nothing."""
        first: dict[uuid.UUID, DeliveryReported] = {}
        for event in events:
            # The first report that counts is the one kept, as one by one.
            if event.status in COUNTED_STATUSES:
                first.setdefault(event.proposal_id, event)
        if not first:
            return 0
        kept = list(first.values())
        parameters = {
            "proposal_id": [e.proposal_id for e in kept],
            "debtor_id": [e.debtor_id for e in kept],
            "channel": [e.channel.value for e in kept],
            "sent_at": [e.occurred_at for e in kept],
            "status": [e.status.value for e in kept],
            "event_id": [e.event_id for e in kept],
        }
        async with self._engine.begin() as connection:
            return len((await connection.scalars(_INSERT_CONTACTS, parameters)).all())

    async def debtor_changes(self, debtor_id: str) -> list[ConsentChanged]:
        """The debtor's own consent changes, newest first."""
        query = (
            select(consent_changes)
            .where(consent_changes.c.debtor_id == debtor_id)
            .order_by(consent_changes.c.occurred_at.desc(), consent_changes.c.recorded_at.desc())
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_consent_change_from_row(row._mapping) for row in rows]

    async def recent_decisions(self, debtor_id: str, limit: int = 50) -> list[StoredDecision]:
        """The debtor's latest decisions, newest first."""
        query = (
            select(decisions.c.decision, decisions.c.trace_id, decisions.c.recorded_at)
            .where(decisions.c.debtor_id == debtor_id)
            .order_by(decisions.c.decided_at.desc(), decisions.c.recorded_at.desc())
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            StoredDecision(
                decision=ContactDecision.model_validate(row.decision),
                trace_id=row.trace_id,
                recorded_at=row.recorded_at,
            )
            for row in rows
        ]

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
                hold_kind=event.hold_kind.value if event.hold_kind else None,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                preferences=event.preferences.model_dump(mode="json")
                if event.preferences
                else None,
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
        hold_kind=row["hold_kind"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        preferences=row["preferences"],
    )
