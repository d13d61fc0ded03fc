"""Synthetic debtors for the demo: deterministic, across US and UK time zones, with the
consent facts an import would carry: most may be contacted, a few lack what the law needs."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

from parley_shared.events import Channel

# (zone, country, region, dialling prefix, share of debtors)
ZONES = (
    ("America/New_York", "US", "NY", "+1212555", 0.30),
    ("America/Chicago", "US", "IL", "+1312555", 0.20),
    ("America/Denver", "US", "CO", "+1303555", 0.10),
    ("America/Los_Angeles", "US", "CA", "+1213555", 0.20),
    ("Europe/London", "GB", "", "+4479111", 0.20),
)
# Consent facts are dated a few weeks before the demo's simulated start (2026-11-24), so a
# texting consent counts as recently confirmed.
CONSENTED_AT = "2026-03-02T15:00:00+00:00"
CONFIRMED_AT = "2026-11-02T15:00:00+00:00"
# Every Nth debtor of a channel lacks what that channel needs, so the consent rules veto them.
NO_SMS_CONSENT_EVERY = 25
EMPLOYER_EMAIL_EVERY = 30
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
    region: str = ""
    days_past_due: int = 30
    sms_consent_evidence: str = ""
    email_provenance: str = "consumer_used"
    email_employer_provided: bool = False


def synthetic_debtors(count: int, seed: int = 7, opt_out_every: int = 20) -> list[DemoDebtor]:
    rng = random.Random(seed)
    debtors = []
    weights = [share for *_, share in ZONES]
    for index in range(count):
        zone, country, region, prefix, _ = rng.choices(ZONES, weights=weights)[0]
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
                region=region,
                days_past_due=rng.randint(10, 180),
                sms_consent_evidence=""
                if index % NO_SMS_CONSENT_EVERY == 2
                else f"consent-form-{index:06d}",
                email_employer_provided=index % EMPLOYER_EMAIL_EVERY == 7,
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
            "region",
            "days_past_due",
            "sms_consent_evidence",
            "sms_consented_at",
            "phone_confirmed_at",
            "email_provenance",
            "email_employer_provided",
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
                debtor.region,
                debtor.days_past_due,
                debtor.sms_consent_evidence,
                CONSENTED_AT if debtor.sms_consent_evidence else "",
                CONFIRMED_AT if debtor.sms_consent_evidence else "",
                debtor.email_provenance,
                "true" if debtor.email_employer_provided else "false",
            ]
        )
    return out.getvalue()
