"""Accounts to contact, from CSV, with a row-by-row report of what could not be used."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from pydantic import BaseModel, ConfigDict, EmailStr, Field, TypeAdapter, ValidationError

REQUIRED_COLUMNS = ("debtor_id",)
_email = TypeAdapter(EmailStr)


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    debtor_id: str = Field(min_length=1, max_length=128)
    name: str = ""
    phone: str | None = None
    email: str | None = None
    time_zone: str | None = None
    country: str = "US"
    locale: str = "en"
    balance: str = ""
    creditor: str = ""
    reference: str = ""


@dataclass(frozen=True)
class RejectedRow:
    row: int
    field: str
    reason: str


@dataclass(frozen=True)
class AccountsFile:
    accounts: tuple[Account, ...]
    rejected: tuple[RejectedRow, ...]


def parse_accounts(text: str) -> AccountsFile:
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        return AccountsFile((), (RejectedRow(1, ",".join(missing), "missing column"),))
    accounts: list[Account] = []
    rejected: list[RejectedRow] = []
    seen: set[str] = set()
    # Row numbers count the header as row 1, as a spreadsheet shows them.
    for row_number, row in enumerate(reader, start=2):
        problem = _check_row(row, seen)
        if problem is not None:
            rejected.append(RejectedRow(row_number, *problem))
            continue
        account = _account_from(row)
        seen.add(account.debtor_id)
        accounts.append(account)
    return AccountsFile(tuple(accounts), tuple(rejected))


def _clean(row: dict[str, str | None], key: str) -> str:
    return (row.get(key) or "").strip()


def _check_row(row: dict[str, str | None], seen: set[str]) -> tuple[str, str] | None:
    debtor_id = _clean(row, "debtor_id")
    if not debtor_id:
        return ("debtor_id", "empty")
    if debtor_id in seen:
        return ("debtor_id", "appears twice in the file")
    country = _clean(row, "country").upper() or "US"
    if len(country) != 2:
        return ("country", "must be a two-letter ISO country code")
    phone = _clean(row, "phone")
    if phone and _normalise_phone(phone, country) is None:
        return ("phone", "not a valid phone number")
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
    return None


def _account_from(row: dict[str, str | None]) -> Account:
    country = _clean(row, "country").upper() or "US"
    phone = _clean(row, "phone")
    return Account(
        debtor_id=_clean(row, "debtor_id"),
        name=_clean(row, "name"),
        phone=_normalise_phone(phone, country) if phone else None,
        email=_clean(row, "email") or None,
        time_zone=_clean(row, "time_zone") or None,
        country=country,
        locale=_clean(row, "locale") or "en",
        balance=_clean(row, "balance"),
        creditor=_clean(row, "creditor"),
        reference=_clean(row, "reference"),
    )


def _normalise_phone(raw: str, country: str) -> str | None:
    region = "GB" if country == "GB" else country
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _known_zone(name: str) -> bool:
    if name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return False
    return True
