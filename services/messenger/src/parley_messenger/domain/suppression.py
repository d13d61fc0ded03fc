"""Opt-outs as the messenger checks them at dispatch: a set of scopes, each on or off.

A scope is a debtor (every channel), a debtor's channel, or one address on one channel
(a STOP from a number stops texts to that number whoever they are for). The newest
change of a scope wins, so changes applied out of order settle the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from parley_shared.events import Channel, ConsentChanged, ConsentChangeKind


def normalise_address(channel: Channel, address: str) -> str:
    # Mailbox names are case-insensitive in practice; E.164 numbers have one spelling.
    return address.strip().lower() if channel is Channel.EMAIL else address.strip()


def address_scope(channel: Channel, address: str) -> str:
    return f"address:{channel.value}:{normalise_address(channel, address)}"


def debtor_scope(debtor_id: str, channel: Channel | None) -> str:
    return f"debtor:{debtor_id}:{channel.value if channel else '*'}"


def scopes_for_send(debtor_id: str, channel: Channel, address: str) -> tuple[str, ...]:
    """Every scope whose opt-out stops this send."""
    return (
        debtor_scope(debtor_id, None),
        debtor_scope(debtor_id, channel),
        address_scope(channel, address),
    )


@dataclass(frozen=True)
class SuppressionChange:
    scope: str
    suppressed: bool
    reason: str  # the ConsentChanged kind that set it: opt_out, address_invalid, opt_in
    source: str
    evidence: str
    changed_at: datetime


def _channel_of(change: ConsentChanged) -> Channel | None:
    if change.channel is not None or change.address is None:
        return change.channel
    return Channel.EMAIL if "@" in change.address else Channel.SMS


_SUPPRESSING = {ConsentChangeKind.OPT_OUT, ConsentChangeKind.ADDRESS_INVALID}


def suppression_change(change: ConsentChanged) -> SuppressionChange | None:
    """What a consent change does to the send-time check; None for kinds the consent
    service alone acts on (holds, preferences)."""
    if change.kind in _SUPPRESSING:
        suppressed = True
    elif change.kind is ConsentChangeKind.OPT_IN:
        suppressed = False
    else:
        return None
    channel = _channel_of(change)
    if change.address is not None and channel is not None:
        scope = address_scope(channel, change.address)
    else:
        scope = debtor_scope(change.debtor_id, channel)
    return SuppressionChange(
        scope=scope,
        suppressed=suppressed,
        reason=change.kind.value,
        source=change.source.value,
        evidence=change.evidence,
        changed_at=change.occurred_at,
    )
