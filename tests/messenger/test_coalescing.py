"""Concurrent sends sharing their database statements: still at most one send per
proposal, and an opt-out check never answered from before it was asked."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from parley_messenger.adapters.coalescing import CoalescedSendLedger, CoalescedSuppressions
from parley_messenger.adapters.database import SendStore, SuppressionStore
from parley_messenger.bootstrap import MIGRATIONS_DIR
from parley_messenger.domain.model import SendRecord, SendStatus
from parley_messenger.domain.suppression import SuppressionChange, address_scope
from parley_shared.database import create_engine, upgrade_to_head
from parley_shared.events import Channel

from tests.messenger.factories import NOW, a_decision


def a_claim(debtor_id: str | None = None) -> SendRecord:
    proposal = a_decision(debtor_id=debtor_id).proposal
    return SendRecord(
        proposal_id=proposal.proposal_id,
        debtor_id=proposal.debtor_id,
        channel=proposal.channel,
        status=SendStatus.CLAIMED,
        provider="twilio",
        claimed_at=NOW,
        address=proposal.address,
    )


class HeldChecks:
    """A suppression store whose checks wait until the test lets each one finish, and
    which records the scopes each statement asked about."""

    def __init__(self) -> None:
        self.suppressed: set[str] = set()
        self.statements: list[list[tuple[str, ...]]] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def first_suppressing_many(self, groups: list[tuple[str, ...]]) -> list[str | None]:
        # The answer reflects the store as it was when the statement started.
        seen = set(self.suppressed)
        self.statements.append(groups)
        self.started.set()
        await self.release.wait()
        return [next((s for s in scopes if s in seen), None) for scopes in groups]


async def test_a_check_asked_after_an_opt_out_sees_it_though_a_batch_was_running() -> None:
    store = HeldChecks()
    checks = CoalescedSuppressions(store)  # type: ignore[arg-type]
    scope = address_scope(Channel.SMS, "+14155550100")

    early = asyncio.create_task(checks.first_suppressing((scope,)))
    await store.started.wait()  # the first statement runs, and waits
    store.suppressed.add(scope)  # the opt-out is stored (and acknowledged) meanwhile
    late = asyncio.gather(*(checks.first_suppressing((scope,)) for _ in range(3)))
    for _ in range(5):  # let the three checks be asked for while the first still runs
        await asyncio.sleep(0)
    assert len(store.statements) == 1
    store.release.set()

    assert await early is None  # asked before the opt-out: nothing to see yet
    assert await late == [scope, scope, scope]  # asked after: never the earlier answer
    assert [len(groups) for groups in store.statements] == [1, 3]  # three checks, one query


async def test_concurrent_claims_of_one_proposal_let_exactly_one_send(database_url: str) -> None:
    await upgrade_to_head(MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        ledger = CoalescedSendLedger(SendStore(engine))
        claim = a_claim()
        others = [a_claim() for _ in range(5)]
        # The same proposal five times (a redelivery racing the first delivery) among
        # others, all gathered into the same statements.
        answers = await asyncio.gather(
            *(ledger.claim(claim) for _ in range(5)), *(ledger.claim(o) for o in others)
        )
        mine, theirs = answers[:5], answers[5:]
        assert sum(answer is None for answer in mine) == 1
        assert all(a is not None and a.proposal_id == claim.proposal_id for a in mine if a)
        assert theirs == [None] * 5

        # The outcomes of several sends stored together, each one only once.
        sent = replace(claim, status=SendStatus.SENT, finished_at=NOW + timedelta(seconds=1))
        stored = await asyncio.gather(
            ledger.finish(sent),
            *(
                ledger.finish(replace(o, status=SendStatus.FAILED, error_code="21211"))
                for o in others
            ),
        )
        assert stored == [True] * 6
        rows = SendStore(engine)
        assert (await rows.get(claim.proposal_id)).status is SendStatus.SENT  # type: ignore[union-attr]
        assert {(await rows.get(o.proposal_id)).error_code for o in others} == {"21211"}  # type: ignore[union-attr]
        # A later claim of a finished proposal gets its outcome back: nothing to send.
        again = await ledger.claim(claim)
        assert again is not None and again.status is SendStatus.SENT
    finally:
        await engine.dispose()


async def test_a_batched_check_answers_each_send_for_its_own_scopes(database_url: str) -> None:
    await upgrade_to_head(MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        store = SuppressionStore(engine)
        stopped = address_scope(Channel.SMS, "+14155550101")
        await store.apply(
            [
                SuppressionChange(
                    scope=stopped,
                    suppressed=True,
                    reason="opt_out",
                    source="sms_reply",
                    evidence="STOP",
                    changed_at=NOW,
                )
            ]
        )
        checks = CoalescedSuppressions(store)
        free = address_scope(Channel.SMS, "+14155550102")
        answers = await asyncio.gather(
            checks.first_suppressing((free,)),
            checks.first_suppressing((free, stopped)),
            checks.first_suppressing(()),
        )
        assert list(answers) == [None, "opt_out (sms_reply)", None]
    finally:
        await engine.dispose()
