"""The scheduler's store: campaigns and their history, accounts, proposals (an outbox),
the decisions that came back and the delivery outcomes the fallback steps wait for."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parley_shared.events import ContactDecision, DeliveryReported, ReminderProposed
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    cast,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley_scheduler.domain.accounts import Account
from parley_scheduler.domain.campaign import Campaign, StepCondition
from parley_scheduler.domain.lifecycle import (
    Action,
    CampaignStatus,
    LifecycleError,
    definition_changes,
    status_after,
)
from parley_scheduler.domain.planning import (
    PLANNING_ZONE_FALLBACK,
    UNDELIVERED,
    OutgoingProposal,
)

SCHEMA = "scheduler"
_INSERT_OUTBOX = (
    "INSERT INTO scheduler.proposals (proposal_id, debtor_id, event, campaign_id,"
    " campaign_version, step, attempt, channel, published_at)"
    " SELECT p.id, p.debtor_id, CAST(p.event AS json), $4, $5, $6, $7, $8, $9"
    " FROM unnest(CAST($1 AS uuid[]), CAST($2 AS text[]), CAST($3 AS text[]))"
    " AS p(id, debtor_id, event)"
    " ON CONFLICT (proposal_id) DO NOTHING RETURNING proposal_id"
)
# Decisions and delivery outcomes arrive in batches; each batch is one statement, its
# columns passed as arrays (the statement, and its prepared plan, is the same whatever
# the batch size). Decisions are stored once: the first one stored stays.
_INSERT_DECISIONS = (
    "INSERT INTO scheduler.decisions (proposal_id, debtor_id, verdict, rule_ids,"
    " defer_until, decided_at)"
    " SELECT d.id, d.debtor_id, d.verdict, CAST(d.rule_ids AS jsonb), d.defer_until, d.at"
    " FROM unnest(CAST($1 AS uuid[]), CAST($2 AS text[]), CAST($3 AS text[]),"
    " CAST($4 AS text[]), CAST($5 AS timestamptz[]), CAST($6 AS timestamptz[]))"
    " AS d(id, debtor_id, verdict, rule_ids, defer_until, at)"
    " ON CONFLICT (proposal_id) DO NOTHING RETURNING proposal_id"
)
# The newest outcome per proposal wins; a report no older than the stored one replaces it
# (as each report did one by one). The batch holds one report per proposal (see
# ``newest_per_proposal``): PostgreSQL refuses to update one row twice in one statement.
_UPSERT_DELIVERIES = (
    "INSERT INTO scheduler.deliveries AS stored (proposal_id, debtor_id, channel, status, at)"
    " SELECT * FROM unnest(CAST($1 AS uuid[]), CAST($2 AS text[]), CAST($3 AS text[]),"
    " CAST($4 AS text[]), CAST($5 AS timestamptz[]))"
    " ON CONFLICT (proposal_id) DO UPDATE SET status = excluded.status, at = excluded.at"
    " WHERE stored.at <= excluded.at RETURNING proposal_id"
)
metadata = MetaData(schema=SCHEMA)
_JSON = JSON().with_variant(JSONB(), "postgresql")

proposals = Table(
    "proposals",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("debtor_id", String(128), nullable=False, index=True),
    Column("campaign_id", String(64), nullable=False),
    Column("campaign_version", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("channel", String(16), nullable=False),
    # json, not jsonb: the exact text that was published (see migration 0003).
    Column("event", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
)

decisions = Table(
    "decisions",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("debtor_id", String(128), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("rule_ids", _JSON, nullable=False),
    Column("defer_until", DateTime(timezone=True)),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("reproposed_at", DateTime(timezone=True)),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

campaign_versions = Table(
    "campaign_versions",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("definition", _JSON, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

campaign_changes = Table(
    "campaign_changes",
    metadata,
    Column("change_id", BigInteger, Identity(), primary_key=True),
    Column("campaign_id", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("changes", _JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("debtor_id", String(128), primary_key=True),
    Column("data", _JSON, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("time_zone", String(64)),
    Column("country", String(2), nullable=False),
    Column("jurisdiction", String(16), nullable=False),
    Column("days_past_due", Integer),
    Column("balance", Numeric),
    Column("flags", ARRAY(Text), nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("has_phone", Boolean, nullable=False),
    Column("has_email", Boolean, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("debtor_id", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


def newest_per_proposal(reports: Sequence[DeliveryReported]) -> list[DeliveryReported]:
    """The newest report for each proposal in a batch; of two equally new ones, the later in
    the batch (one by one, it would have replaced the earlier)."""
    newest: dict[Any, DeliveryReported] = {}
    for report in reports:
        kept = newest.get(report.proposal_id)
        if kept is None or kept.occurred_at <= report.occurred_at:
            newest[report.proposal_id] = report
    return list(newest.values())


def _json_text_at(path: Sequence[str]) -> str:
    if not all(name.isidentifier() for name in path):
        raise ValueError(f"not a field path: {path!r}")
    return "CAST(a.data" + "".join(f"->'{name}'" for name in path) + " AS text)"


class CampaignNotFound(LookupError):
    pass


class CampaignExists(ValueError):
    pass


class NotAnEditor(PermissionError):
    pass


@dataclass(frozen=True)
class StoredCampaign:
    campaign: Campaign
    status: CampaignStatus
    started_at: datetime | None
    updated_at: datetime
    source: str


@dataclass(frozen=True)
class ImportCounts:
    inserted: int
    updated: int
    unchanged: int


class SchedulerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # Proposals: an outbox ------------------------------------------------------------------

    async def add_proposals(self, planned: Sequence[ReminderProposed]) -> int:
        """Insert proposals not seen before; returns how many were new."""
        if not planned:
            return 0
        async with self._engine.begin() as connection:
            return await self._insert_proposals(connection, planned)

    async def add_and_publish(
        self,
        planned: Sequence[OutgoingProposal],
        send: Callable[[Sequence[OutgoingProposal]], Awaitable[None]],
        at: datetime,
    ) -> int:
        """Store the proposals not seen before and publish exactly those, in one
        transaction: they are committed as published only once the broker acknowledged
        them. A second scheduler inserting the same ids waits for this commit and then
        finds them present, so it publishes none of them; a crash before the commit stores
        nothing, and the next tick plans and publishes them again under the same ids."""
        if not planned:
            return 0
        steps: dict[tuple[str, int, int, int, str], list[OutgoingProposal]] = {}
        for proposal in planned:
            step = (
                proposal.campaign_id,
                proposal.campaign_version,
                proposal.step,
                proposal.attempt,
                proposal.channel,
            )
            steps.setdefault(step, []).append(proposal)
        async with self._engine.begin() as connection:
            inserted: list[Any] = []
            # One statement per campaign step (a tick's batch is one), the varying columns as
            # arrays: the driver encodes them in bulk, where a row per parameter set costs
            # Python time per row.
            for step, rows in steps.items():
                result = await connection.exec_driver_sql(
                    _INSERT_OUTBOX,
                    (
                        [proposal.proposal_id for proposal in rows],
                        [proposal.debtor_id for proposal in rows],
                        [proposal.event_json for proposal in rows],
                        *step,
                        at,
                    ),
                )
                inserted.extend(result.scalars())
            if len(inserted) == len(planned):
                outgoing = planned
            else:
                new = {str(proposal_id) for proposal_id in inserted}
                outgoing = [proposal for proposal in planned if proposal.proposal_id in new]
            await send(outgoing)
        return len(outgoing)

    async def is_active(self, campaign_id: str) -> bool:
        async with self._engine.connect() as connection:
            status = (
                await connection.execute(
                    select(campaigns.c.status).where(campaigns.c.campaign_id == campaign_id)
                )
            ).scalar_one_or_none()
        return status == CampaignStatus.ACTIVE.value

    async def _insert_proposals(
        self, connection: AsyncConnection, planned: Sequence[ReminderProposed]
    ) -> int:
        rows = [
            {
                "proposal_id": proposal.proposal_id,
                "debtor_id": proposal.debtor_id,
                "campaign_id": proposal.campaign_id,
                "campaign_version": proposal.campaign_version,
                "step": proposal.step,
                "attempt": proposal.attempt,
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
        inserted = 0
        for start in range(0, len(rows), 1000):
            result = await connection.execute(statement, rows[start : start + 1000])
            inserted += len(result.fetchall())
        return inserted

    @staticmethod
    def _publishable() -> Any:
        # Proposals of a paused or archived campaign wait; campaigns the store does not know
        # (runs of the walking skeleton's one-shot endpoint) always go out.
        return (
            select(
                proposals.c.proposal_id,
                proposals.c.debtor_id,
                proposals.c.campaign_id,
                proposals.c.channel,
                proposals.c.attempt,
                proposals.c.campaign_version,
                proposals.c.step,
                cast(proposals.c.event, Text).label("event_json"),
            )
            .outerjoin(campaigns, campaigns.c.campaign_id == proposals.c.campaign_id)
            .where(
                proposals.c.published_at.is_(None),
                (campaigns.c.status.is_(None)) | (campaigns.c.status == CampaignStatus.ACTIVE),
            )
        )

    async def publish_pending_batch(
        self,
        send: Callable[[Sequence[OutgoingProposal]], Awaitable[None]],
        at: datetime,
        limit: int = 1000,
    ) -> int:
        """Lock up to ``limit`` unpublished proposals, hand them to ``send``, and mark them
        published in the same transaction. SKIP LOCKED lets two scheduler instances drain
        the outbox together without publishing one proposal twice; a crash before the
        commit leaves them unpublished, to be sent again with the same ids."""
        query = (
            self._publishable()
            .order_by(proposals.c.created_at, proposals.c.proposal_id)
            .limit(limit)
            .with_for_update(of=proposals, skip_locked=True)
        )
        async with self._engine.begin() as connection:
            rows = (await connection.execute(query)).all()
            if not rows:
                return 0
            await send(
                [
                    OutgoingProposal(
                        proposal_id=str(row.proposal_id),
                        debtor_id=row.debtor_id,
                        campaign_id=row.campaign_id,
                        channel=row.channel,
                        attempt=row.attempt,
                        event_json=row.event_json,
                        campaign_version=row.campaign_version,
                        step=row.step,
                    )
                    for row in rows
                ]
            )
            await connection.execute(
                update(proposals)
                .where(proposals.c.proposal_id.in_([row.proposal_id for row in rows]))
                .values(published_at=at)
            )
        return len(rows)

    # Decisions and deliveries --------------------------------------------------------------

    async def record_decisions(self, batch: Sequence[ContactDecision]) -> int:
        """Store each decision once, the whole batch in one statement; a redelivered
        decision changes nothing. Returns how many were new."""
        if not batch:
            return 0
        async with self._engine.begin() as connection:
            result = await connection.exec_driver_sql(
                _INSERT_DECISIONS,
                (
                    [d.proposal_id for d in batch],
                    [d.debtor_id for d in batch],
                    [d.verdict.value for d in batch],
                    [json.dumps([reason.rule_id for reason in d.reasons]) for d in batch],
                    [d.defer_until for d in batch],
                    [d.occurred_at for d in batch],
                ),
            )
        return len(result.all())

    async def record_deliveries(self, batch: Sequence[DeliveryReported]) -> int:
        """Keep the newest outcome per proposal, the whole batch in one statement: an older
        report arriving late changes nothing. Returns how many proposals' outcomes changed."""
        newest = newest_per_proposal(batch)
        if not newest:
            return 0
        async with self._engine.begin() as connection:
            result = await connection.exec_driver_sql(
                _UPSERT_DELIVERIES,
                (
                    [r.proposal_id for r in newest],
                    [r.debtor_id for r in newest],
                    [r.channel.value for r in newest],
                    [r.status.value for r in newest],
                    [r.occurred_at for r in newest],
                ),
            )
        return len(result.all())

    async def repropose_due(
        self,
        now: datetime,
        build: Callable[[ReminderProposed, datetime], ReminderProposed],
        limit: int = 1000,
    ) -> int:
        """Re-propose deferred proposals whose defer-until has come, each once: the new
        proposal and the marker on the old decision are written in one transaction, and the
        rows are locked so a second scheduler skips them."""
        query = (
            select(decisions.c.proposal_id, proposals.c.event)
            .join(proposals, proposals.c.proposal_id == decisions.c.proposal_id)
            .outerjoin(campaigns, campaigns.c.campaign_id == proposals.c.campaign_id)
            .where(
                decisions.c.verdict == "deferred",
                decisions.c.reproposed_at.is_(None),
                decisions.c.defer_until <= now,
                (campaigns.c.status.is_(None)) | (campaigns.c.status == CampaignStatus.ACTIVE),
            )
            .order_by(decisions.c.defer_until)
            .limit(limit)
            .with_for_update(of=decisions, skip_locked=True)
        )
        async with self._engine.begin() as connection:
            rows = (await connection.execute(query)).all()
            if not rows:
                return 0
            again = [build(ReminderProposed.model_validate(row.event), now) for row in rows]
            new = await self._insert_proposals(connection, again)
            await connection.execute(
                update(decisions)
                .where(decisions.c.proposal_id.in_([row.proposal_id for row in rows]))
                .values(reproposed_at=now)
            )
        return new

    # Campaigns -------------------------------------------------------------------------------

    async def create_campaign(
        self, campaign: Campaign, source: str, actor: str, now: datetime
    ) -> StoredCampaign:
        stored = campaign.model_copy(update={"version": 1})
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(campaigns)
                .values(
                    campaign_id=campaign.id,
                    version=1,
                    status=CampaignStatus.DRAFT.value,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["campaign_id"])
            )
            if not result.rowcount:
                raise CampaignExists(f"campaign {campaign.id} exists; change it with PUT")
            await self._add_version(connection, stored, source, actor, now)
            await self._record_change(
                connection, campaign.id, 1, Action.CREATE, actor, now, {"status": "draft"}
            )
        return StoredCampaign(stored, CampaignStatus.DRAFT, None, now, source)

    async def update_campaign(
        self, campaign: Campaign, source: str, actor: str, now: datetime
    ) -> StoredCampaign:
        async with self._engine.begin() as connection:
            current = await self._locked(connection, campaign.id)
            status_after(Action.UPDATE, current.status)
            if not current.campaign.may_be_changed_by(actor):
                raise NotAnEditor(f"{actor} is not among the editors of {campaign.id}")
            version = current.campaign.effective_version + 1
            stored = campaign.model_copy(update={"version": version})
            changes = definition_changes(
                current.campaign.model_dump(mode="json", exclude={"version"}),
                stored.model_dump(mode="json", exclude={"version"}),
            )
            if not changes:
                return current
            await self._add_version(connection, stored, source, actor, now)
            await connection.execute(
                update(campaigns)
                .where(campaigns.c.campaign_id == campaign.id)
                .values(version=version, updated_at=now)
            )
            await self._record_change(
                connection, campaign.id, version, Action.UPDATE, actor, now, {"fields": changes}
            )
        return StoredCampaign(stored, current.status, current.started_at, now, source)

    async def change_status(
        self, campaign_id: str, action: Action, actor: str, now: datetime
    ) -> StoredCampaign:
        async with self._engine.begin() as connection:
            current = await self._locked(connection, campaign_id)
            if not current.campaign.may_be_changed_by(actor):
                raise NotAnEditor(f"{actor} is not among the editors of {campaign_id}")
            status = status_after(action, current.status)
            started_at = current.started_at
            if action is Action.ACTIVATE and started_at is None:
                started_at = now
            await connection.execute(
                update(campaigns)
                .where(campaigns.c.campaign_id == campaign_id)
                .values(status=status.value, started_at=started_at, updated_at=now)
            )
            await self._record_change(
                connection,
                campaign_id,
                current.campaign.effective_version,
                action,
                actor,
                now,
                {"status": {"before": current.status.value, "after": status.value}},
            )
        return StoredCampaign(current.campaign, status, started_at, now, current.source)

    async def campaign(self, campaign_id: str) -> StoredCampaign:
        async with self._engine.connect() as connection:
            return await self._read(connection, campaign_id, lock=False)

    async def all_campaigns(self, status: CampaignStatus | None = None) -> list[StoredCampaign]:
        query = select(campaigns.c.campaign_id).order_by(campaigns.c.campaign_id)
        if status is not None:
            query = query.where(campaigns.c.status == status.value)
        async with self._engine.connect() as connection:
            ids = (await connection.execute(query)).scalars().all()
            return [await self._read(connection, campaign_id, lock=False) for campaign_id in ids]

    async def changes(self, campaign_id: str) -> list[dict[str, Any]]:
        query = (
            select(campaign_changes)
            .where(campaign_changes.c.campaign_id == campaign_id)
            .order_by(campaign_changes.c.change_id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [
            {key: row[key] for key in ("version", "action", "actor", "changes", "at")}
            for row in rows
        ]

    async def _locked(self, connection: AsyncConnection, campaign_id: str) -> StoredCampaign:
        return await self._read(connection, campaign_id, lock=True)

    async def _read(
        self, connection: AsyncConnection, campaign_id: str, *, lock: bool
    ) -> StoredCampaign:
        query = (
            select(campaigns, campaign_versions.c.definition, campaign_versions.c.source)
            .join(
                campaign_versions,
                (campaign_versions.c.campaign_id == campaigns.c.campaign_id)
                & (campaign_versions.c.version == campaigns.c.version),
            )
            .where(campaigns.c.campaign_id == campaign_id)
        )
        if lock:
            query = query.with_for_update(of=campaigns)
        row = (await connection.execute(query)).mappings().first()
        if row is None:
            raise CampaignNotFound(f"no campaign {campaign_id}")
        return StoredCampaign(
            campaign=Campaign.model_validate(row["definition"]),
            status=CampaignStatus(row["status"]),
            started_at=row["started_at"],
            updated_at=row["updated_at"],
            source=row["source"],
        )

    async def _add_version(
        self,
        connection: AsyncConnection,
        campaign: Campaign,
        source: str,
        actor: str,
        now: datetime,
    ) -> None:
        await connection.execute(
            insert(campaign_versions).values(
                campaign_id=campaign.id,
                version=campaign.effective_version,
                source=source,
                definition=campaign.model_dump(mode="json"),
                created_by=actor,
                created_at=now,
            )
        )

    async def _record_change(
        self,
        connection: AsyncConnection,
        campaign_id: str,
        version: int,
        action: Action,
        actor: str,
        now: datetime,
        changes: dict[str, Any],
    ) -> None:
        await connection.execute(
            insert(campaign_changes).values(
                campaign_id=campaign_id,
                version=version,
                action=action.value,
                actor=actor,
                changes=changes,
                at=now,
            )
        )

    # Accounts --------------------------------------------------------------------------------

    async def upsert_accounts(self, batch: Sequence[Account], now: datetime) -> ImportCounts:
        """Insert new accounts and update changed ones; an identical row writes nothing, so
        importing the same file twice changes nothing the second time."""
        if not batch:
            return ImportCounts(0, 0, 0)
        rows = [
            {
                "debtor_id": account.debtor_id,
                "data": account.model_dump(mode="json"),
                "fingerprint": account.fingerprint(),
                "time_zone": account.time_zone,
                "country": account.country,
                "jurisdiction": account.jurisdiction,
                "days_past_due": account.days_past_due,
                "balance": account.balance_amount,
                "flags": list(account.flags),
                "paid": account.paid,
                "has_phone": account.phone is not None,
                "has_email": account.email is not None,
                "imported_at": now,
                "updated_at": now,
            }
            for account in batch
        ]
        base = insert(accounts)
        kept = {"imported_at", "debtor_id"}
        statement = base.on_conflict_do_update(
            index_elements=["debtor_id"],
            set_={
                column.name: base.excluded[column.name]
                for column in accounts.columns
                if column.name not in kept
            },
            where=accounts.c.fingerprint != base.excluded.fingerprint,
        ).returning(text("(xmax = 0) AS inserted"))
        async with self._engine.begin() as connection:
            written = (await connection.execute(statement, rows)).all()
        inserted = sum(1 for row in written if row.inserted)
        return ImportCounts(inserted, len(written) - inserted, len(rows) - len(written))

    async def account(self, debtor_id: str) -> Account | None:
        async with self._engine.connect() as connection:
            data = (
                await connection.execute(
                    select(accounts.c.data).where(accounts.c.debtor_id == debtor_id)
                )
            ).scalar_one_or_none()
        return None if data is None else Account.model_validate(data)

    async def due_for_step(
        self,
        stored: StoredCampaign,
        step_index: int,
        now: datetime,
        paths: Sequence[tuple[str, ...]],
        batch_size: int = 5000,
    ) -> AsyncGenerator[list[Sequence[str | None]], None]:
        """Accounts for which one step is due now, streamed from a server-side cursor in
        batches (memory stays bounded however many accounts there are): per account its
        debtor id, then the stored account's value at each of ``paths`` as JSON text (None
        where it has no such field). Values come back exactly as they were stored, so nothing
        is decoded and encoded again. The rules are those of ``planning.due_steps``, in SQL."""
        campaign = stored.campaign
        step = campaign.steps[step_index]
        audience = campaign.audience
        zone = f"coalesce(a.time_zone, '{PLANNING_ZONE_FALLBACK}')"
        clauses = [
            f"(CAST(:now AS timestamptz) AT TIME ZONE {zone})::date >= "
            f"(greatest(CAST(:started AS timestamptz), a.imported_at) AT TIME ZONE {zone})::date"
            " + CAST(:offset AS integer)",
            "a.has_phone" if step.channel.value == "sms" else "a.has_email",
            "NOT EXISTS (SELECT 1 FROM scheduler.proposals p WHERE p.campaign_id = :cid"
            " AND p.step = :step AND p.debtor_id = a.debtor_id)",
        ]
        params: dict[str, Any] = {
            "now": now,
            "started": stored.started_at,
            "offset": step.day_offset,
            "cid": campaign.id,
            "step": step_index,
        }
        if audience.min_days_past_due is not None:
            clauses.append("a.days_past_due >= :min_dpd")
            params["min_dpd"] = audience.min_days_past_due
        if audience.max_days_past_due is not None:
            clauses.append("a.days_past_due <= :max_dpd")
            params["max_dpd"] = audience.max_days_past_due
        if audience.min_balance is not None:
            clauses.append("a.balance >= :min_balance")
            params["min_balance"] = audience.min_balance
        if audience.max_balance is not None:
            clauses.append("a.balance <= :max_balance")
            params["max_balance"] = audience.max_balance
        if audience.jurisdictions:
            clauses.append(
                "(a.country = ANY(CAST(:places AS text[])) "
                "OR a.jurisdiction = ANY(CAST(:places AS text[])))"
            )
            params["places"] = list(audience.jurisdictions)
        if audience.flags_required:
            clauses.append("a.flags @> CAST(:required AS text[])")
            params["required"] = list(audience.flags_required)
        if audience.flags_excluded:
            clauses.append("NOT a.flags && CAST(:excluded AS text[])")
            params["excluded"] = list(audience.flags_excluded)
        if StepCondition.SKIP_IF_PAID in step.conditions:
            clauses.append("NOT a.paid")
        if StepCondition.ONLY_IF_PREVIOUS_UNDELIVERED in step.conditions:
            clauses.append(
                "EXISTS (SELECT 1 FROM scheduler.proposals p JOIN scheduler.deliveries d"
                " ON d.proposal_id = p.proposal_id WHERE p.campaign_id = :cid"
                " AND p.step = :previous AND p.debtor_id = a.debtor_id"
                " AND d.status = ANY(CAST(:undelivered AS text[])))"
            )
            params["previous"] = step_index - 1
            params["undelivered"] = sorted(status.value for status in UNDELIVERED)
        # Every clause is a fixed string from this function, every path a field name
        # (checked); values travel as bound parameters.
        where = " AND ".join(clauses)
        columns = ", ".join(_json_text_at(path) for path in paths)
        query = text(
            f"SELECT a.debtor_id, {columns} FROM scheduler.accounts a"  # noqa: S608 - see above
            f" WHERE {where} ORDER BY a.debtor_id"
        )
        async with self._engine.connect() as connection:
            result = await connection.stream(query.execution_options(yield_per=batch_size), params)
            async for rows in result.partitions(batch_size):
                yield rows  # type: ignore[misc]

    # Enrollment state ------------------------------------------------------------------------

    async def debtor_history(self, debtor_id: str) -> list[dict[str, Any]]:
        """Every proposal for one debtor with its decision and delivery outcome, oldest first."""
        query = (
            select(
                proposals.c.proposal_id,
                proposals.c.campaign_id,
                proposals.c.campaign_version,
                proposals.c.step,
                proposals.c.attempt,
                proposals.c.channel,
                # The instant on the scheduler's clock (simulated in demos and tests).
                proposals.c.event["occurred_at"].as_string().label("proposed_at"),
                proposals.c.published_at,
                decisions.c.verdict,
                decisions.c.rule_ids,
                decisions.c.defer_until,
                decisions.c.decided_at,
                deliveries.c.status.label("delivery_status"),
                deliveries.c.at.label("delivery_at"),
            )
            .outerjoin(decisions, decisions.c.proposal_id == proposals.c.proposal_id)
            .outerjoin(deliveries, deliveries.c.proposal_id == proposals.c.proposal_id)
            .where(proposals.c.debtor_id == debtor_id)
            .order_by(proposals.c.created_at, proposals.c.step, proposals.c.attempt)
        )
        async with self._engine.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]


__all__ = [
    "CampaignExists",
    "CampaignNotFound",
    "ImportCounts",
    "LifecycleError",
    "NotAnEditor",
    "SchedulerStore",
    "StoredCampaign",
]
