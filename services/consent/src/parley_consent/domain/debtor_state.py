"""Everything recorded about a debtor that a decision needs: opt-outs, holds, preferences,
addresses known to be invalid, and the contacts already made.

Built either from the stored consent changes (the service) or from a case's JSON (the
evaluate interface); ``decide`` sees only this, never storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ContactPreferences,
    HoldKind,
    MessageKind,
)
from pydantic import model_validator

from parley_consent.domain.consent_state import ConsentState, address_key


@dataclass(frozen=True)
class Hold:
    """A hold in force from ``starts_at`` (None: always was) until ``ends_at`` (None: no end)."""

    kind: HoldKind
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def active_at(self, instant: datetime) -> bool:
        started = self.starts_at is None or self.starts_at <= instant
        return started and (self.ends_at is None or instant < self.ends_at)


@dataclass(frozen=True)
class PastContact:
    """A message that left (sent or later), once per proposal."""

    proposal_id: uuid.UUID
    channel: Channel
    sent_at: datetime
    message_kind: MessageKind | None = None


@dataclass(frozen=True)
class DebtorState:
    consent: ConsentState = field(default_factory=ConsentState)
    holds: tuple[Hold, ...] = ()
    preferences: ContactPreferences | None = None
    invalid_address_keys: frozenset[str] = frozenset()

    def has_invalid(self, address: str) -> bool:
        return address_key(address) in self.invalid_address_keys

    @classmethod
    def from_events(cls, debtor_id: str, events: Iterable[ConsentChanged]) -> DebtorState:
        """Fold consent changes in the order they happened; a release ends the open hold of
        its kind, and the latest preference replaces earlier ones.

        ``events`` may include other debtors' changes of a shared address: their opt-outs
        and invalid addresses count here, their holds and preferences do not.
        """
        ordered = sorted(events, key=lambda event: event.occurred_at)
        own = [event for event in ordered if event.debtor_id == debtor_id]
        holds: list[Hold] = []
        preferences: ContactPreferences | None = None
        invalid = {
            address_key(event.address)
            for event in ordered
            if event.kind is ConsentChangeKind.ADDRESS_INVALID and event.address
        }
        for event in own:
            if event.kind is ConsentChangeKind.HOLD and event.hold_kind is not None:
                holds.append(
                    Hold(
                        kind=event.hold_kind,
                        starts_at=event.starts_at or event.occurred_at,
                        ends_at=event.ends_at,
                    )
                )
            elif event.kind is ConsentChangeKind.HOLD_RELEASED and event.hold_kind is not None:
                holds = [_released(hold, event) for hold in holds]
            elif event.kind is ConsentChangeKind.PREFERENCE and event.preferences is not None:
                preferences = event.preferences
        return cls(
            consent=ConsentState.from_events(
                event
                for event in ordered
                if event.kind in (ConsentChangeKind.OPT_OUT, ConsentChangeKind.OPT_IN)
            ),
            holds=tuple(holds),
            preferences=preferences,
            invalid_address_keys=frozenset(invalid),
        )


def _released(hold: Hold, release: ConsentChanged) -> Hold:
    if hold.kind is not release.hold_kind:
        return hold
    released_at = release.ends_at or release.occurred_at
    if hold.ends_at is not None and hold.ends_at <= released_at:
        return hold
    return Hold(kind=hold.kind, starts_at=hold.starts_at, ends_at=released_at)


class CheckedConsentChange(ConsentChanged):
    """A consent change as the consent service accepts it: a hold names its kind, a
    preference carries preferences, and a hold ends after it starts. The wire format is
    the shared event's; only the checks are added."""

    @model_validator(mode="after")
    def _complete_for_its_kind(self) -> CheckedConsentChange:
        holds = (ConsentChangeKind.HOLD, ConsentChangeKind.HOLD_RELEASED)
        if self.kind in holds and self.hold_kind is None:
            raise ValueError(f"hold_kind is required for a {self.kind.value} change")
        if self.kind is ConsentChangeKind.PREFERENCE and self.preferences is None:
            raise ValueError("preferences are required for a preference change")
        if self.kind is ConsentChangeKind.ADDRESS_INVALID and not self.address:
            raise ValueError("address is required for an address_invalid change")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be later than starts_at")
        return self
