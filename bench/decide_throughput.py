"""Throughput of the pure ``decide`` in one process: decisions per second on one core.

Run: ``uv run --no-sync python bench/decide_throughput.py [--seconds 10]``

The proposals vary the way real traffic does: several time zones, ZIP and phone evidence
that disagree, unknown locations, state layers with caps, past contacts, holds,
preferences, opt-outs, and instants spread over a year (so DST and the window edges are
all met). Inputs are built before timing starts; only ``decide`` is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from parley_consent.domain import (
    ConsentRecord,
    ConsentState,
    DebtorState,
    Hold,
    PastContact,
    decide,
    default_rule_set,
)
from parley_shared.events import (
    AddressFacts,
    AddressProvenance,
    Channel,
    ConsentChangeKind,
    ContactPreferences,
    HoldKind,
    ReminderProposed,
)

PLACES: list[dict[str, Any]] = [
    {"time_zone": "America/New_York"},
    {"time_zone": "America/Chicago", "region": "IL"},
    {"time_zone": "America/Los_Angeles", "region": "WA"},
    {"time_zone": None, "postal_code": "90001"},
    {"time_zone": None, "postal_code": "02108"},
    {"time_zone": None, "region": "NY", "city": "Brooklyn", "postal_code": "11201"},
    {"time_zone": None},
    {"time_zone": "Europe/London", "country": "GB"},
]


def _case(
    rng: random.Random, index: int
) -> tuple[ReminderProposed, DebtorState, list[PastContact], datetime]:
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(365 * 24 * 60))
    place = dict(rng.choice(PLACES))
    channel = rng.choice([Channel.SMS, Channel.EMAIL])
    number = f"+1{rng.choice(['212', '617', '206', '312', '907'])}555{index % 10000:04d}"
    if place.get("country") == "GB":
        number = f"+44770090{index % 10000:04d}"
    proposal = ReminderProposed(
        debtor_id=f"d-{index}",
        proposal_id=uuid.uuid4(),
        campaign_id="bench",
        campaign_version=1,
        step=rng.randrange(4),
        channel=channel,
        address=number if channel is Channel.SMS else f"debtor{index}@example.com",
        template="reminder-1",
        location_phones=(number,) if rng.random() < 0.5 else (),
        address_facts=AddressFacts(
            provenance=AddressProvenance.CONSUMER_CONSENTED,
            consent_evidence="form",
            confirmed_at=now - timedelta(days=rng.randrange(1, 70)),
        ),
        **place,
    )
    records = (
        (
            ConsentRecord(
                proposal.debtor_id,
                ConsentChangeKind.OPT_OUT,
                Channel.EMAIL,
                None,
                now - timedelta(days=3),
            ),
        )
        if rng.random() < 0.1
        else ()
    )
    holds = (
        (
            Hold(
                HoldKind.HARDSHIP,
                now - timedelta(days=2),
                now + timedelta(days=rng.randrange(1, 30)),
            ),
        )
        if rng.random() < 0.1
        else ()
    )
    preferences = ContactPreferences(weekdays=(1, 2, 3, 4, 5)) if rng.random() < 0.2 else None
    history = [
        PastContact(
            uuid.uuid4(),
            rng.choice([Channel.SMS, Channel.EMAIL]),
            now - timedelta(hours=rng.randrange(1, 240)),
        )
        for _ in range(rng.randrange(4))
    ]
    return proposal, DebtorState(ConsentState(records), holds, preferences), history, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--cases", type=int, default=20000, help="distinct inputs to cycle over")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rng = random.Random(7)
    rules = default_rule_set()
    cases = [_case(rng, index) for index in range(args.cases)]
    for case in cases[:2000]:  # warm the zone and ZIP look-ups once, as a running service would
        decide(*case, rules)
    verdicts: dict[str, int] = {}
    done = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    while time.perf_counter() < deadline:
        for proposal, debtor, history, now in cases[done % len(cases) :][:1000]:
            decision = decide(proposal, debtor, history, now, rules)
            verdicts[decision.verdict.value] = verdicts.get(decision.verdict.value, 0) + 1
        done += 1000
    elapsed = time.perf_counter() - started
    print(f"{done} decisions in {elapsed:.2f} s on one core: {done / elapsed:,.0f} decisions/s")
    print("verdicts:", ", ".join(f"{name} {count}" for name, count in sorted(verdicts.items())))
    if args.json:
        summary = {"decisions": done, "seconds": elapsed, "per_second": done / elapsed}
        args.json.write_text(json.dumps({"summary": summary, "verdicts": verdicts}, indent=2))


if __name__ == "__main__":
    main()
