"""A debtor's recorded wishes, and which opt-outs still stand for one proposed contact.

Scopes: an opt-out with neither channel nor address covers all of the debtor's contact;
a channel alone covers that medium; an address covers that one number or mailbox for
every debtor who uses it (the person behind the address asked, not the debt).

An opt-in lifts an earlier opt-out for a contact when the opt-in concerns that contact
too: after "stop all contact", opting in to SMS allows SMS again and email stays stopped.
An opt-out of an address is lifted only by an opt-in for that address or by the debtor
who made it: one debtor's preference page never lifts a stop sent from a shared number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from parley_shared.events import Channel, ConsentChanged, ConsentChangeKind

_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")


def address_key(address: str) -> str:
    """The form of an address used to match opt-outs: mailboxes case-insensitively,
    phone numbers without punctuation."""
    stripped = address.strip()
    if "@" in stripped:
        return stripped.lower()
    return _PHONE_PUNCTUATION.sub("", stripped)


@dataclass(frozen=True)
class ConsentRecord:
    debtor_id: str
    kind: ConsentChangeKind
    channel: Channel | None
    address_key: str | None
    occurred_at: datetime

    @classmethod
    def from_event(cls, event: ConsentChanged) -> ConsentRecord:
        return cls(
            debtor_id=event.debtor_id,
            kind=event.kind,
            channel=event.channel,
            address_key=address_key(event.address) if event.address else None,
            occurred_at=event.occurred_at,
        )

    @property
    def is_debtor_wide(self) -> bool:
        return self.channel is None and self.address_key is None

    def applies_to(self, debtor_id: str, channel: Channel, address: str) -> bool:
        """Whether this change's scope includes a contact with ``debtor_id`` at ``address``."""
        if self.address_key is not None:
            return self.address_key == address_key(address) and self.channel in (None, channel)
        if self.debtor_id != debtor_id:
            return False
        return self.channel in (None, channel)

    def lifts(self, opt_out: ConsentRecord) -> bool:
        """Whether this opt-in, already known to concern the contact, lifts ``opt_out`` for it."""
        # Strictly later: an opt-in at the very same instant leaves the opt-out standing.
        if self.occurred_at <= opt_out.occurred_at:
            return False
        if opt_out.address_key is None:
            return True
        return self.address_key == opt_out.address_key or self.debtor_id == opt_out.debtor_id


@dataclass(frozen=True)
class ConsentState:
    """The consent changes that may concern one proposed contact: the debtor's own, plus
    any made for the address by anyone. Order of ``records`` does not matter."""

    records: tuple[ConsentRecord, ...] = ()

    @classmethod
    def from_events(cls, events: Iterable[ConsentChanged]) -> ConsentState:
        return cls(tuple(ConsentRecord.from_event(event) for event in events))

    def standing_opt_outs(
        self, debtor_id: str, channel: Channel, address: str
    ) -> tuple[ConsentRecord, ...]:
        """Opt-outs covering this contact that no later opt-in has lifted."""
        if not self.records:
            return ()
        concerning = sorted(
            (record for record in self.records if record.applies_to(debtor_id, channel, address)),
            key=lambda record: record.occurred_at,
        )
        opt_ins = [record for record in concerning if record.kind is ConsentChangeKind.OPT_IN]
        return tuple(
            opt_out
            for opt_out in concerning
            if opt_out.kind is ConsentChangeKind.OPT_OUT
            and not any(opt_in.lifts(opt_out) for opt_in in opt_ins)
        )

    def standing(self) -> tuple[ConsentRecord, ...]:
        """Every opt-out that no later opt-in of a covering scope has lifted, for display."""
        opt_ins = [record for record in self.records if record.kind is ConsentChangeKind.OPT_IN]
        return tuple(
            opt_out
            for opt_out in sorted(self.records, key=lambda record: record.occurred_at)
            if opt_out.kind is ConsentChangeKind.OPT_OUT
            and not any(
                opt_in.channel in (None, opt_out.channel)
                and opt_in.address_key in (None, opt_out.address_key)
                and opt_in.lifts(opt_out)
                for opt_in in opt_ins
            )
        )
