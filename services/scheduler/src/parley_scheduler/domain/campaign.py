"""Campaign definitions as operations teams write them (YAML, or JSON, which is YAML too),
validated with errors that name the line and the field."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any, Self

import yaml
from parley_shared.events import Channel, MessageKind, SendWindow
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

_IDENTIFIER = r"^[a-z0-9][a-z0-9._-]*$"
_LOCALE = r"^[a-z]{2}(-[A-Z]{2})?$"


class CampaignError(ValueError):
    """A campaign definition that cannot be used; ``problems`` name each field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid campaign: " + "; ".join(problems))
        self.problems = problems


class Audience(BaseModel):
    """Which accounts the campaign contacts; every filter given must hold (AND)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_days_past_due: int | None = Field(default=None, ge=0)
    max_days_past_due: int | None = Field(default=None, ge=0)
    min_balance: Decimal | None = Field(default=None, ge=0)
    max_balance: Decimal | None = Field(default=None, ge=0)
    jurisdictions: tuple[str, ...] = Field(
        default=(),
        description="Country codes (US, GB) or US state codes as US-NY; empty means all.",
    )
    flags_required: tuple[str, ...] = ()
    flags_excluded: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if (
            self.min_days_past_due is not None
            and self.max_days_past_due is not None
            and self.min_days_past_due > self.max_days_past_due
        ):
            raise ValueError("min_days_past_due is above max_days_past_due")
        if (
            self.min_balance is not None
            and self.max_balance is not None
            and self.min_balance > self.max_balance
        ):
            raise ValueError("min_balance is above max_balance")
        return self


class StepCondition(StrEnum):
    SKIP_IF_PAID = "skip_if_paid"
    ONLY_IF_PREVIOUS_UNDELIVERED = "only_if_previous_undelivered"


class CampaignStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    day_offset: int = Field(ge=0, le=365)
    channel: Channel
    template: str = Field(pattern=_IDENTIFIER)
    message_kind: MessageKind = MessageKind.COLLECTION
    conditions: tuple[StepCondition, ...] = ()


class Window(BaseModel):
    """The campaign's own local-time window; the consent rules only ever narrow it further."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    earliest: time = time(8, 0)
    latest: time = time(21, 0)
    weekdays: tuple[int, ...] = Field(default=(1, 2, 3, 4, 5, 6, 7), min_length=1)

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.earliest >= self.latest:
            raise ValueError("earliest must be before latest")
        if any(day < 1 or day > 7 for day in self.weekdays):
            raise ValueError("weekdays are ISO weekdays, 1 (Monday) to 7 (Sunday)")
        return self

    def as_event(self) -> SendWindow:
        return _send_window(self.earliest, self.latest, self.weekdays)


@cache
def _send_window(earliest: time, latest: time, weekdays: tuple[int, ...]) -> SendWindow:
    # One immutable event part per window, not one per proposal of a million-account tick.
    return SendWindow(earliest=earliest, latest=latest, weekdays=weekdays)


class Locales(BaseModel):
    """Which template locales the campaign ships; other debtors get the fallback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    supported: tuple[str, ...] = Field(default=("en",), min_length=1)
    fallback: str = Field(default="en", pattern=_LOCALE)

    @model_validator(mode="after")
    def _fallback_supported(self) -> Self:
        if self.fallback not in self.supported:
            raise ValueError("fallback must be one of the supported locales")
        return self

    def for_debtor(self, locale: str) -> str:
        if locale in self.supported:
            return locale
        language = locale.split("-")[0]
        return language if language in self.supported else self.fallback


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_IDENTIFIER, max_length=64)
    version: int | None = Field(
        default=None, ge=1, description="Assigned by the scheduler when stored; optional here."
    )
    name: str = Field(min_length=1)
    description: str = ""
    audience: Audience = Audience()
    steps: list[CampaignStep] = Field(min_length=1)
    send_window: Window = Window()
    locales: Locales | None = Field(
        default=None,
        description="Absent: each debtor's own locale is passed on and the messenger falls back.",
    )
    editors: tuple[str, ...] = Field(
        default=(),
        description="Names of the operator API keys allowed to change it; empty: any operator.",
    )

    @field_validator("steps")
    @classmethod
    def _steps_in_order(cls, steps: list[CampaignStep]) -> list[CampaignStep]:
        offsets = [step.day_offset for step in steps]
        if offsets != sorted(offsets):
            raise ValueError("steps must be in day_offset order")
        if StepCondition.ONLY_IF_PREVIOUS_UNDELIVERED in steps[0].conditions:
            raise ValueError("the first step has no previous step to fall back from")
        return steps

    @property
    def effective_version(self) -> int:
        return self.version or 1

    def locale_for(self, debtor_locale: str) -> str:
        return debtor_locale if self.locales is None else self.locales.for_debtor(debtor_locale)

    @property
    def checked_locales(self) -> tuple[str, ...]:
        return ("en",) if self.locales is None else self.locales.supported

    def may_be_changed_by(self, operator: str) -> bool:
        return not self.editors or operator in self.editors


def parse_campaign(text: str) -> Campaign:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CampaignError(
            [f"{where}not valid YAML ({getattr(error, 'problem', error)})"]
        ) from None
    if not isinstance(raw, dict):
        raise CampaignError(["the campaign must be a YAML mapping with id, name, steps"])
    try:
        return Campaign.model_validate(raw)
    except ValidationError as error:
        raise CampaignError([_problem(item, text) for item in error.errors()]) from None


def _problem(item: Any, text: str) -> str:
    path = ".".join(str(part) for part in item["loc"])
    line = _line_of(yaml.compose(text), item["loc"])
    where = f"line {line}, " if line else ""
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{where}{path or '(campaign)'}: {message}"


def _line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """The line of the deepest YAML node the error's path reaches."""
    line = node.start_mark.line + 1 if node is not None and location else None
    for part in location:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next(((key, value) for key, value in node.value if key.value == part), None)
            node = match[1] if match else None
            if match is not None:
                line = match[0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
            if node is not None:
                line = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return line
