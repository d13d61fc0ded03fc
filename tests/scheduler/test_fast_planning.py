"""The fast path a large tick takes (accounts read from PostgreSQL as JSON text, events put
together without models) writes exactly the bytes the validated path writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from parley_scheduler.adapters.database import SchedulerStore
from parley_scheduler.bootstrap import MIGRATIONS
from parley_scheduler.domain.accounts import Account
from parley_scheduler.domain.campaign import parse_campaign
from parley_scheduler.domain.lifecycle import Action
from parley_scheduler.domain.planning import (
    OutgoingProposal,
    StepEncoder,
    Unreachable,
    _uuid5,
    build_proposal,
)
from parley_shared.database import create_engine, upgrade_to_head
from parley_shared.events import AddressFacts, AddressProvenance, ReminderProposed

NOW = datetime(2026, 11, 24, 13, 30, 15, 123456, tzinfo=UTC)
CAMPAIGN = """\
id: fast-path
name: Fast path
locales:
  supported: [en, es]
  fallback: en
send_window:
  earliest: "09:00"
  latest: "20:00"
  weekdays: [1, 2, 3, 4, 5]
steps:
  - day_offset: 0
    channel: sms
    template: first-notice
  - day_offset: 0
    channel: email
    template: second-notice
"""
FACTS = AddressFacts(
    provenance=AddressProvenance.CONSUMER_CONSENTED,
    employer_provided=True,
    consent_evidence='form "7" \\ signed',
    consented_at=datetime(2026, 3, 2, 9, 15, 30, 250000, tzinfo=UTC),
)
ACCOUNTS = [
    Account(
        debtor_id="d-plain",
        name="Ann Example",
        phone="+12125550101",
        email="ann@example.com",
        time_zone="America/New_York",
        region="NY",
        city="New York",
        postal_code="10001",
        balance="120.00",
        creditor="Northwind",
        reference="R1",
        sms_facts=FACTS,
        email_facts=AddressFacts(provenance=AddressProvenance.CONSUMER_USED),
    ),
    # Quotes, backslashes, control characters and non-ASCII text in every copied field.
    Account(
        debtor_id='d-"odd"\\1',
        name='Zoë "Zee" O\'Brien\n\t\x01\x1f\u2028 ✓ 🙂',
        phone="+34600000001",
        other_phones=("+34600000002", "+34600000001", "+34600000003"),
        email="zoe@example.es",
        time_zone="Europe/Madrid",
        country="ES",
        locale="es-MX",
        balance="1.234,50 €",
        creditor="Crédito </script>",
        reference="ref/\\x",
        sms_facts=AddressFacts(),
    ),
    # Nothing optional: no zone, no facts, an unsupported locale.
    Account(debtor_id="d-bare", phone="+447911123456", email="b@example.co.uk", locale="fr"),
    # No phone: unreachable by text, reachable by email.
    Account(debtor_id="d-mail-only", email="m@example.com", locale="es"),
]


def test_hand_made_uuid5_matches_the_standard_library() -> None:
    namespace = uuid.uuid4()
    for name in ("", "a", "fast-path/1/0/d-1", "ünï/cödé", "x" * 300):
        assert _uuid5(namespace.bytes, name) == str(uuid.uuid5(namespace, name))


@pytest.mark.parametrize("step", [0, 1])
async def test_events_read_from_the_store_equal_the_validated_path(
    database_url: str, step: int
) -> None:
    await upgrade_to_head(MIGRATIONS, database_url)
    engine = create_engine(database_url)
    store = SchedulerStore(engine)
    campaign = parse_campaign(CAMPAIGN)
    try:
        await store.upsert_accounts(ACCOUNTS, NOW)
        await store.create_campaign(campaign, CAMPAIGN, "ops", NOW)
        stored = await store.change_status(campaign.id, Action.ACTIVATE, "ops", NOW)
        encoder = StepEncoder(stored.campaign, step, NOW)
        rows = [
            row
            async for batch in store.due_for_step(stored, step, NOW, encoder.paths, 2)
            for row in batch
        ]
    finally:
        await engine.dispose()

    by_debtor = {account.debtor_id: account for account in ACCOUNTS}
    # The store only reads accounts with an address for the step's channel.
    expected_debtors = {a.debtor_id for a in ACCOUNTS if (a.phone if step == 0 else a.email)}
    assert {row[0] for row in rows} == expected_debtors
    for row in rows:
        fast = encoder.encode(row)
        slow = build_proposal(stored.campaign, step, by_debtor[str(row[0])], NOW)
        assert isinstance(fast, OutgoingProposal) and isinstance(slow, ReminderProposed)
        assert fast.event_json == slow.model_dump_json()
        assert ReminderProposed.model_validate_json(fast.event_json) == slow
        assert (fast.proposal_id, fast.debtor_id, fast.channel) == (
            str(slow.proposal_id),
            slow.debtor_id,
            slow.channel.value,
        )


def test_a_stored_account_missing_fields_reads_as_their_defaults() -> None:
    """An account stored before a field existed: validation would fill the default."""
    campaign = parse_campaign(CAMPAIGN)
    encoder = StepEncoder(campaign, 0, NOW)
    stored = {("phone",): '"+12125550101"'}
    fast = encoder.encode(["d-old", *(stored.get(path) for path in encoder.paths)])
    slow = build_proposal(campaign, 0, Account(debtor_id="d-old", phone="+12125550101"), NOW)
    assert isinstance(fast, OutgoingProposal) and isinstance(slow, ReminderProposed)
    assert fast.event_json == slow.model_dump_json()
    unreachable = encoder.encode(["d-none", *([None] * len(encoder.paths))])
    assert unreachable == Unreachable("d-none", "no sms address")


def test_the_publishers_key_hash_matches_the_kafka_clients() -> None:
    """Proposals are packed per partition by the publisher itself; a debtor must land where
    the client's default partitioner (and every other Parley producer) puts them."""
    from aiokafka.partitioner import DefaultPartitioner
    from aiokafka.partitioner import murmur2 as client_murmur2
    from parley_scheduler.adapters.publisher import murmur2

    partitions = list(range(6))
    keys = [f"debtor-{n}".encode() for n in range(500)] + [b"", b"a", b"ab", b"abc", "ü".encode()]
    for key in keys:
        assert murmur2(key) == client_murmur2(key)
        expected = DefaultPartitioner()(key, partitions, partitions)
        assert partitions[(murmur2(key) & 0x7FFFFFFF) % 6] == expected
