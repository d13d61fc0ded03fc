"""Accounts to contact, from CSV, with a row-by-row report of what could not be used.

Rows are read one at a time (``read_accounts`` takes any iterable of lines), so a large file
never has to be in memory at once. A row with a problem that makes it unusable is rejected;
a row that is usable but lacks something a channel needs is imported with a warning. Either
way the report names the row, the field and the reason: nothing is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from parley_shared.events import AddressFacts, AddressProvenance
from pydantic import BaseModel, ConfigDict, EmailStr, Field, TypeAdapter, ValidationError

REQUIRED_COLUMNS = ("debtor_id",)
_email = TypeAdapter(EmailStr)
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"", "0", "false", "no", "n", "f"}


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    debtor_id: str = Field(min_length=1, max_length=128)
    name: str = ""
    phone: str | None = None
    email: str | None = None
    time_zone: str | None = None
    country: str = "US"
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    locale: str = "en"
    balance: str = ""
    days_past_due: int | None = None
    flags: tuple[str, ...] = ()
    paid: bool = False
    creditor: str = ""
    reference: str = ""
    other_phones: tuple[str, ...] = ()
    sms_facts: AddressFacts | None = None
    email_facts: AddressFacts | None = None

    @property
    def balance_amount(self) -> Decimal | None:
        try:
            return Decimal(self.balance) if self.balance else None
        except InvalidOperation:
            return None

    @property
    def jurisdiction(self) -> str:
        """US-NY for a US state, else the country code."""
        return f"{self.country}-{self.region}" if self.region else self.country

    def fingerprint(self) -> str:
        """Changes exactly when the stored account would change: re-importing the same
        row compares equal and writes nothing."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str
    reason: str


# Kept under its old name: the walking skeleton's callers speak of rejected rows.
RejectedRow = RowProblem


@dataclass(frozen=True)
class AccountsFile:
    accounts: tuple[Account, ...]
    rejected: tuple[RowProblem, ...]
    warnings: tuple[RowProblem, ...] = ()


@dataclass(frozen=True)
class ReadRow:
    """One row's outcome: an account (maybe with warnings) or the reason it was rejected."""

    row: int
    account: Account | None
    problems: tuple[RowProblem, ...]


def parse_accounts(text: str) -> AccountsFile:
    accounts: list[Account] = []
    rejected: list[RowProblem] = []
    warnings: list[RowProblem] = []
    for item in read_accounts(io.StringIO(text)):
        if item.account is None:
            rejected.extend(item.problems)
        else:
            accounts.append(item.account)
            warnings.extend(item.problems)
    return AccountsFile(tuple(accounts), tuple(rejected), tuple(warnings))


def read_accounts(lines: Iterable[str], first_row: int = 2) -> Iterator[ReadRow]:
    """Validate rows as they are read. Row numbers count the header as row 1, as a
    spreadsheet shows them; ``first_row`` lets a file sent in chunks keep its numbering."""
    reader = csv.DictReader(lines)
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        yield ReadRow(1, None, (RowProblem(1, ",".join(missing), "missing column"),))
        return
    seen: set[str] = set()
    for row_number, row in enumerate(reader, start=first_row):
        problem = _check_row(row, seen)
        if problem is not None:
            yield ReadRow(row_number, None, (RowProblem(row_number, *problem),))
            continue
        account = _account_from(row)
        seen.add(account.debtor_id)
        warnings = tuple(RowProblem(row_number, *w) for w in _warnings(account))
        yield ReadRow(row_number, account, warnings)


def _clean(row: dict[str, str | None], key: str) -> str:
    return (row.get(key) or "").strip()


def _check_row(row: dict[str, str | None], seen: set[str]) -> tuple[str, str] | None:
    debtor_id = _clean(row, "debtor_id")
    if not debtor_id:
        return ("debtor_id", "empty")
    if len(debtor_id) > 128:
        return ("debtor_id", "longer than 128 characters")
    if debtor_id in seen:
        return ("debtor_id", "appears twice in the file")
    country = _clean(row, "country").upper() or "US"
    if len(country) != 2 or not country.isalpha():
        return ("country", "must be a two-letter ISO country code")
    phone = _clean(row, "phone")
    if phone and _normalise_phone(phone, country) is None:
        return ("phone", "not a valid phone number")
    for other in _split(_clean(row, "other_phones")):
        if _normalise_phone(other, country) is None:
            return ("other_phones", "not a valid phone number")
    email = _clean(row, "email")
    if email:
        try:
            _email.validate_python(email)
        except ValidationError:
            return ("email", "not a valid email address")
    zone = _clean(row, "time_zone")
    if zone and not _known_zone(zone):
        return ("time_zone", "unknown IANA time zone")
    if not phone and not email:
        return ("phone", "neither a phone number nor an email address")
    for column in ("days_past_due",):
        value = _clean(row, column)
        if value and (not value.isdigit()):
            return (column, "must be a whole number of days, 0 or more")
    balance = _clean(row, "balance")
    if balance:
        try:
            Decimal(balance)
        except InvalidOperation:
            return ("balance", "not a number")
    for column in ("paid", "email_employer_provided"):
        if _clean(row, column).lower() not in _TRUE | _FALSE:
            return (column, "must be true or false")
    for column in ("sms_consented_at", "phone_confirmed_at"):
        value = _clean(row, column)
        if value and _parse_instant(value) is None:
            return (column, "not an ISO-8601 date or instant")
    provenance = _clean(row, "email_provenance")
    if provenance and provenance not in AddressProvenance.__members__.values():
        allowed = ", ".join(p.value for p in AddressProvenance)
        return ("email_provenance", f"must be one of {allowed}")
    return None


def _warnings(account: Account) -> list[tuple[str, str]]:
    found = []
    if account.phone and (account.sms_facts is None or not account.sms_facts.consent_evidence):
        found.append(
            (
                "sms_consent_evidence",
                "missing consent evidence: the consent rules will veto texts to this number",
            )
        )
    if account.email and (
        account.email_facts is None or account.email_facts.provenance is AddressProvenance.UNKNOWN
    ):
        found.append(
            ("email_provenance", "missing: the consent rules will veto emails to this address")
        )
    return found


def _account_from(row: dict[str, str | None]) -> Account:
    country = _clean(row, "country").upper() or "US"
    phone = _clean(row, "phone")
    email = _clean(row, "email")
    days = _clean(row, "days_past_due")
    normalised_phone = _normalise_phone(phone, country) if phone else None
    others = tuple(
        number
        for number in (_normalise_phone(p, country) for p in _split(_clean(row, "other_phones")))
        if number is not None
    )
    sms_facts = None
    if phone:
        evidence = _clean(row, "sms_consent_evidence") or None
        sms_facts = AddressFacts(
            provenance=AddressProvenance.CONSUMER_CONSENTED
            if evidence
            else AddressProvenance.UNKNOWN,
            consent_evidence=evidence,
            consented_at=_parse_instant(_clean(row, "sms_consented_at")),
            confirmed_at=_parse_instant(_clean(row, "phone_confirmed_at")),
        )
    email_facts = None
    if email:
        email_facts = AddressFacts(
            provenance=AddressProvenance(_clean(row, "email_provenance") or "unknown"),
            employer_provided=_clean(row, "email_employer_provided").lower() in _TRUE,
            consent_evidence=_clean(row, "email_consent_evidence") or None,
        )
    return Account(
        debtor_id=_clean(row, "debtor_id"),
        name=_clean(row, "name"),
        phone=normalised_phone,
        email=email or None,
        time_zone=_clean(row, "time_zone") or None,
        country=country,
        region=_clean(row, "region").upper() or None,
        city=_clean(row, "city") or None,
        postal_code=_clean(row, "postal_code") or None,
        locale=_clean(row, "locale") or "en",
        balance=_clean(row, "balance"),
        days_past_due=int(days) if days else None,
        flags=tuple(sorted(set(_split(_clean(row, "flags"))))),
        paid=_clean(row, "paid").lower() in _TRUE,
        creditor=_clean(row, "creditor"),
        reference=_clean(row, "reference"),
        other_phones=others,
        sms_facts=sms_facts,
        email_facts=email_facts,
    )


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace(";", "|").split("|") if part.strip()]


def _parse_instant(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A bare date or a time without offset is read as UTC: consent dates are day-precise.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _normalise_phone(raw: str, country: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@cache
def _known_zone(name: str) -> bool:
    if name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return False
    return True
