"""Synthetic debtors for load and fault runs: every debtor has an address of its own, so a
stand-in's records count sends per reminder, and every one is approvable on a weekday
afternoon (UTC) in New York, Chicago and London."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

# Consent dated well before the runs' simulated clocks: a recent confirmation for texts.
CONSENTED_AT = "2026-03-02T15:00:00+00:00"
CONFIRMED_AT = "2026-11-02T15:00:00+00:00"
# (zone, country, region, number prefix, first subscriber number)
PLACES = (
    ("America/New_York", "US", "NY", "+1212", 2_000_000),
    ("America/Chicago", "US", "IL", "+1312", 2_000_000),
    ("Europe/London", "GB", "", "+447911", 200_000),
)
EMAIL_EVERY = 4  # every fourth debtor is reached by email, the others by text
COLUMNS = (
    "debtor_id",
    "name",
    "phone",
    "email",
    "time_zone",
    "country",
    "region",
    "locale",
    "balance",
    "creditor",
    "reference",
    "days_past_due",
    "sms_consent_evidence",
    "sms_consented_at",
    "phone_confirmed_at",
    "email_provenance",
)


@dataclass(frozen=True)
class Debtor:
    debtor_id: str
    channel: str
    address: str
    zone: str
    country: str
    region: str


def make_debtors(count: int, prefix: str, first: int = 0) -> list[Debtor]:
    """``first`` shifts the numbering, so two sets of debtors share no address."""
    made = []
    for index in range(first, first + count):
        zone, country, region, dialling, lowest = PLACES[index % len(PLACES)]
        debtor_id = f"{prefix}-{index:07d}"
        if index % EMAIL_EVERY == EMAIL_EVERY - 1:
            channel, address = "email", f"{debtor_id}@example.com"
        else:
            channel, address = "sms", f"{dialling}{lowest + index // len(PLACES)}"
        made.append(Debtor(debtor_id, channel, address, zone, country, region))
    return made


def accounts_csv(rows: list[Debtor]) -> str:
    """The debtors as an account import file for the scheduler."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for debtor in rows:
        sms = debtor.channel == "sms"
        writer.writerow(
            [
                debtor.debtor_id,
                "Alex",
                debtor.address if sms else "",
                "" if sms else debtor.address,
                debtor.zone,
                debtor.country,
                debtor.region,
                "en",
                "123.45",
                "Northwind Utilities",
                f"NW-{debtor.debtor_id[-7:]}",
                "45",
                f"form-{debtor.debtor_id}" if sms else "",
                CONSENTED_AT if sms else "",
                CONFIRMED_AT if sms else "",
                "" if sms else "consumer_used",
            ]
        )
    return out.getvalue()
