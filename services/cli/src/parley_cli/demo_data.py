"""Synthetic debtors for the demo: deterministic, across US and UK time zones."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

from parley_shared.events import Channel

# (zone, country, dialling prefix, share of debtors)
ZONES = (
    ("America/New_York", "US", "+1212555", 0.30),
    ("America/Chicago", "US", "+1312555", 0.20),
    ("America/Denver", "US", "+1303555", 0.10),
    ("America/Los_Angeles", "US", "+1213555", 0.20),
    ("Europe/London", "GB", "+4479111", 0.20),
)
FIRST_NAMES = ("Alex", "Sam", "Jordan", "Maria", "Wei", "Fatima", "Olu", "Priya", "Tom", "Ana")

SMS_CAMPAIGN = """\
id: demo-first-notice-sms
version: 1
name: First notice by text
steps:
  - day_offset: 0
    channel: sms
    template: first-notice
"""

EMAIL_CAMPAIGN = """\
id: demo-first-notice-email
version: 1
name: First notice by email
steps:
  - day_offset: 0
    channel: email
    template: first-notice
"""


@dataclass(frozen=True)
class DemoDebtor:
    debtor_id: str
    name: str
    channel: Channel
    address: str
    time_zone: str
    country: str
    locale: str
    balance: str
    opted_out: bool


def synthetic_debtors(count: int, seed: int = 7, opt_out_every: int = 20) -> list[DemoDebtor]:
    rng = random.Random(seed)
    debtors = []
    weights = [share for *_, share in ZONES]
    for index in range(count):
        zone, country, prefix, _ = rng.choices(ZONES, weights=weights)[0]
        channel = Channel.EMAIL if index % 4 == 3 else Channel.SMS
        debtor_id = f"demo-{index:06d}"
        digits = 12 - len(prefix) if country == "US" else 13 - len(prefix)
        if channel is Channel.SMS:
            address = f"{prefix}{index % 10**digits:0{digits}d}"
        else:
            address = f"{debtor_id}@example.com"
        debtors.append(
            DemoDebtor(
                debtor_id=debtor_id,
                name=rng.choice(FIRST_NAMES),
                channel=channel,
                address=address,
                time_zone=zone,
                country=country,
                locale="es" if country == "US" and rng.random() < 0.15 else "en",
                balance=f"{rng.uniform(40, 2400):.2f}",
                opted_out=index % opt_out_every == 5,
            )
        )
    return debtors


def accounts_csv(debtors: list[DemoDebtor]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "debtor_id",
            "name",
            "phone",
            "email",
            "time_zone",
            "country",
            "locale",
            "balance",
            "creditor",
            "reference",
        ]
    )
    for debtor in debtors:
        writer.writerow(
            [
                debtor.debtor_id,
                debtor.name,
                debtor.address if debtor.channel is Channel.SMS else "",
                debtor.address if debtor.channel is Channel.EMAIL else "",
                debtor.time_zone,
                debtor.country,
                debtor.locale,
                debtor.balance,
                "Northwind Utilities",
                f"NW-{debtor.debtor_id[-6:]}",
            ]
        )
    return out.getvalue()
