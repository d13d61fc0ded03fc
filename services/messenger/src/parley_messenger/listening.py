"""The messenger's listening use cases: what providers and debtors tell it.

Each one makes its effect durable (receipts, suppressions, the reply chosen) and then
publishes the events it stands for, before the endpoint answers 2xx. Effects and event
ids are idempotent, so a provider's retry repeats the publishing and nothing else.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from opentelemetry.trace import Tracer
from parley_shared.clock import Clock
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    DeliveryReported,
    DeliveryStatus,
)
from parley_shared.telemetry import span_in_stored_trace
from twilio.twiml.messaging_response import MessagingResponse

from parley_messenger.adapters.database import DeliveryRow, Receipt
from parley_messenger.domain.keywords import Intent, read_inbound
from parley_messenger.domain.model import REPORT_NAMESPACE, SendRecord
from parley_messenger.domain.suppression import (
    SuppressionChange,
    address_scope,
    debtor_scope,
)
from parley_messenger.handlers import CONSENT_NAMESPACE

log = logging.getLogger(__name__)


class SendLookup(Protocol):
    async def get(self, proposal_id: uuid.UUID) -> SendRecord | None: ...

    async def by_provider_message_id(self, provider_message_id: str) -> SendRecord | None: ...

    async def debtors_reached_at(self, channel: Channel, address: str) -> list[str]: ...

    async def latest_of(self, debtor_id: str) -> SendRecord | None: ...

    async def unknown_outcomes(self, limit: int = 200) -> list[SendRecord]: ...


class SuppressionWriter(Protocol):
    async def apply(self, changes: list[SuppressionChange]) -> bool: ...

    async def answer_inbound_once(
        self,
        message_sid: str,
        intent: str,
        changes: list[SuppressionChange],
        reply_if_newly_suppressed: str,
        reply_otherwise: str,
        received_at: datetime,
    ) -> str: ...


class ReceiptWriter(Protocol):
    async def record(self, receipt: Receipt, changes: list[SuppressionChange]) -> bool: ...

    async def deliveries(self, debtor_id: str, limit: int = 200) -> list[DeliveryRow]: ...


@dataclass(frozen=True)
class ListeningDeps:
    sends: SendLookup
    suppressions: SuppressionWriter
    receipts: ReceiptWriter
    publish_delivery: Callable[[DeliveryReported], Awaitable[None]]
    publish_consent: Callable[[ConsentChanged], Awaitable[None]]
    clock: Clock
    sender_name: str = "Parley Collections"
    # Receipts continue the trace their send was made in; None in unit tests.
    tracer: Tracer | None = None


# --- replies to inbound SMS -----------------------------------------------------------

_OPT_OUT_CONFIRMATION = {
    "en": "{sender}: you will get no more texts from us at this number. Reply START to "
    "opt back in.",
    "es": "{sender}: no recibirá más mensajes de texto nuestros en este número. Responda "
    "START para volver a recibirlos.",
}
_EMAIL_OPT_OUT_CONFIRMATION = {
    "en": "{sender}: we will stop emailing you. Texts are not affected; reply STOP to stop them.",
    "es": "{sender}: dejaremos de enviarle correos. Los mensajes de texto siguen; responda "
    "STOP para detenerlos.",
}
_OPT_IN_CONFIRMATION = {
    "en": "{sender}: you can get texts from us again. Reply STOP to stop them.",
    "es": "{sender}: puede volver a recibir nuestros mensajes. Responda STOP para detenerlos.",
}
_HELP = {
    "en": "{sender}: messages about your account from a debt collector. Reply STOP to stop "
    "texts, START to get them again.",
    "es": "{sender}: mensajes sobre su cuenta de un cobrador de deudas. Responda STOP para "
    "detenerlos, START para recibirlos de nuevo.",
}


def twiml(text: str | None) -> str:
    """The TwiML answer to an inbound SMS: one reply message, or none."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


async def answer_twilio_inbound(form: Mapping[str, str], deps: ListeningDeps) -> str:
    """Read an inbound SMS; an opt-out or opt-in is stored and announced, and the TwiML
    reply (a confirmation the first time only, help text) is returned. A reply continues
    the trace of the latest text sent to that number, so "why did they say STOP" leads
    back to the reminder that prompted it."""
    sender = form.get("From", "")
    if deps.tracer is None or not sender:
        return await _answer_inbound(form, deps)
    debtors = await deps.sends.debtors_reached_at(Channel.SMS, sender)
    latest = await deps.sends.latest_of(debtors[0]) if debtors else None
    with span_in_stored_trace(
        deps.tracer,
        "twilio inbound sms",
        latest.trace_id if latest else None,
        latest.span_id if latest else None,
    ):
        return await _answer_inbound(form, deps)


async def _answer_inbound(form: Mapping[str, str], deps: ListeningDeps) -> str:
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    sender = form.get("From", "")
    if not sid or not sender:
        raise ValueError("MessageSid and From are required")
    reading = read_inbound(form.get("Body", ""))
    language = reading.language
    now = deps.clock.now()
    debtors = await deps.sends.debtors_reached_at(Channel.SMS, sender)
    evidence = f"twilio inbound message {sid}"
    changes: list[SuppressionChange] = []
    kind: ConsentChangeKind | None = None
    reply_new = reply_again = ""
    if reading.intent is Intent.OPT_OUT and reading.channel is Channel.SMS:
        kind = ConsentChangeKind.OPT_OUT
        changes = [_change(address_scope(Channel.SMS, sender), True, kind, evidence, now)]
        reply_new = _OPT_OUT_CONFIRMATION[language]
    elif reading.intent is Intent.OPT_OUT:
        kind = ConsentChangeKind.OPT_OUT
        changes = [
            _change(debtor_scope(debtor, Channel.EMAIL), True, kind, evidence, now)
            for debtor in debtors
        ]
        reply_new = _EMAIL_OPT_OUT_CONFIRMATION[language]
    elif reading.intent is Intent.OPT_IN:
        kind = ConsentChangeKind.OPT_IN
        changes = [_change(address_scope(Channel.SMS, sender), False, kind, evidence, now)]
        reply_new = reply_again = _OPT_IN_CONFIRMATION[language]
    elif reading.intent is Intent.HELP:
        reply_new = reply_again = _HELP[language]
    reply = await deps.suppressions.answer_inbound_once(
        sid,
        reading.intent.value,
        changes,
        reply_new.format(sender=deps.sender_name),
        reply_again.format(sender=deps.sender_name),
        now,
    )
    if kind is not None:
        if not debtors:
            log.info("inbound %s: %s from a number we never texted", sid, kind.value)
        for debtor in debtors:
            await deps.publish_consent(
                ConsentChanged(
                    event_id=uuid.uuid5(CONSENT_NAMESPACE, f"{evidence}/{debtor}"),
                    occurred_at=now,
                    debtor_id=debtor,
                    kind=kind,
                    channel=reading.channel,
                    # "Stop emailing me" concerns the debtor's email, not this number.
                    address=sender if reading.channel is Channel.SMS else None,
                    source=ConsentSource.SMS_REPLY,
                    evidence=evidence,
                )
            )
    log.info("inbound %s read as %s (%s)", sid, reading.intent.value, reading.channel.value)
    return twiml(reply)


def _change(
    scope: str, suppressed: bool, kind: ConsentChangeKind, evidence: str, at: datetime
) -> SuppressionChange:
    source = ConsentSource.SMS_REPLY.value
    return SuppressionChange(scope, suppressed, kind.value, source, evidence, at)


# --- delivery receipts ------------------------------------------------------------------

_TWILIO_FINAL = {
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
}
# Error codes in a status callback that are facts about the number, not the message.
_TWILIO_ADDRESS_ERRORS = {
    "21610": ConsentChangeKind.OPT_OUT,
    "21211": ConsentChangeKind.ADDRESS_INVALID,
    "21614": ConsentChangeKind.ADDRESS_INVALID,
    "30005": ConsentChangeKind.ADDRESS_INVALID,  # unknown destination handset
    "30006": ConsentChangeKind.ADDRESS_INVALID,  # landline or unreachable carrier
}


async def record_twilio_status(
    form: Mapping[str, str], proposal_id: uuid.UUID | None, deps: ListeningDeps
) -> DeliveryReported | None:
    """A Twilio status callback. Interim statuses (queued, sent ...) change nothing."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = _TWILIO_FINAL.get(form.get("MessageStatus") or form.get("SmsStatus") or "")
    if not sid:
        raise ValueError("MessageSid is required")
    if status is None:
        return None
    send = await deps.sends.get(proposal_id) if proposal_id else None
    send = send or await deps.sends.by_provider_message_id(sid)
    if send is None:
        log.warning("status callback for message %s matches no send; ignored", sid)
        return None
    error_code = form.get("ErrorCode") or None
    now = deps.clock.now()
    kind = _TWILIO_ADDRESS_ERRORS.get(error_code or "")
    return await _record_receipt(
        Receipt(
            receipt_id=f"twilio:{sid}:{status.value}",
            proposal_id=send.proposal_id,
            debtor_id=send.debtor_id,
            channel=send.channel,
            provider="twilio",
            provider_message_id=sid,
            status=status.value,
            error_code=error_code,
            occurred_at=now,
            trace_id=send.trace_id,
        ),
        send,
        kind,
        ConsentSource.PROVIDER,
        f"twilio status {status.value} {error_code or ''} of {sid}".strip(),
        deps,
    )


async def _record_receipt(
    receipt: Receipt,
    send: SendRecord,
    kind: ConsentChangeKind | None,
    source: ConsentSource,
    evidence: str,
    deps: ListeningDeps,
) -> DeliveryReported:
    if deps.tracer is None:
        return await _apply_receipt(receipt, send, kind, source, evidence, deps)
    with span_in_stored_trace(
        deps.tracer, f"{receipt.provider} receipt {receipt.status}", send.trace_id, send.span_id
    ):
        return await _apply_receipt(receipt, send, kind, source, evidence, deps)


async def _apply_receipt(
    receipt: Receipt,
    send: SendRecord,
    kind: ConsentChangeKind | None,
    source: ConsentSource,
    evidence: str,
    deps: ListeningDeps,
) -> DeliveryReported:
    consent = _consent_event(send, kind, source, evidence, receipt.occurred_at)
    changes = [c for c in [_as_suppression(consent, send)] if c is not None]
    await deps.receipts.record(receipt, changes)
    report = DeliveryReported(
        event_id=uuid.uuid5(REPORT_NAMESPACE, f"{receipt.proposal_id}/{receipt.status}"),
        occurred_at=receipt.occurred_at,
        debtor_id=receipt.debtor_id,
        proposal_id=receipt.proposal_id,
        channel=receipt.channel,
        status=DeliveryStatus(receipt.status),
        provider="twilio" if receipt.provider == "twilio" else "sendgrid",
        provider_message_id=receipt.provider_message_id,
        error_code=receipt.error_code,
    )
    await deps.publish_delivery(report)
    if consent is not None:
        await deps.publish_consent(consent)
    return report


def _consent_event(
    send: SendRecord,
    kind: ConsentChangeKind | None,
    source: ConsentSource,
    evidence: str,
    at: datetime,
) -> ConsentChanged | None:
    if kind is None or send.address is None:
        return None
    return ConsentChanged(
        event_id=uuid.uuid5(CONSENT_NAMESPACE, evidence),
        occurred_at=at,
        debtor_id=send.debtor_id,
        kind=kind,
        channel=send.channel,
        address=send.address,
        source=source,
        evidence=evidence,
    )


def _as_suppression(consent: ConsentChanged | None, send: SendRecord) -> SuppressionChange | None:
    if consent is None or send.address is None:
        return None
    return SuppressionChange(
        scope=address_scope(send.channel, send.address),
        suppressed=True,
        reason=consent.kind.value,
        source=consent.source.value,
        evidence=consent.evidence,
        changed_at=consent.occurred_at,
    )


_SENDGRID_STATUS = {
    "delivered": DeliveryStatus.DELIVERED,
    "bounce": DeliveryStatus.FAILED,
    "dropped": DeliveryStatus.FAILED,
}
_SENDGRID_OPT_OUTS = {"spamreport", "unsubscribe", "group_unsubscribe"}


async def record_sendgrid_events(events: Sequence[Any], deps: ListeningDeps) -> int:
    """A signed Event Webhook post. Returns how many events concerned one of our sends."""
    matched = 0
    for event in events:
        if not isinstance(event, dict):
            raise ValueError("each event must be an object")
        send = await _sendgrid_send(event, deps)
        kind_of_event = str(event.get("event", ""))
        if send is None:
            continue
        matched += 1
        await _record_sendgrid_event(event, kind_of_event, send, deps)
    return matched


async def _sendgrid_send(event: Mapping[str, Any], deps: ListeningDeps) -> SendRecord | None:
    message_id = str(event.get("sg_message_id") or "")
    if message_id:
        # Events carry the X-Message-Id plus a ".filter…" suffix.
        send = await deps.sends.by_provider_message_id(message_id.split(".", 1)[0])
        if send is not None:
            return send
    try:
        proposal_id = uuid.UUID(str(event.get("proposal_id")))
    except ValueError:
        return None
    return await deps.sends.get(proposal_id)


async def _record_sendgrid_event(
    event: Mapping[str, Any], kind_of_event: str, send: SendRecord, deps: ListeningDeps
) -> None:
    event_id = str(event.get("sg_event_id") or f"{send.proposal_id}:{kind_of_event}")
    evidence = f"sendgrid {kind_of_event} event {event_id}"
    now = deps.clock.now()
    if kind_of_event in _SENDGRID_OPT_OUTS:
        consent = _consent_event(
            send, ConsentChangeKind.OPT_OUT, ConsentSource.EMAIL_UNSUBSCRIBE, evidence, now
        )
        suppression = _as_suppression(consent, send)
        if consent is None or suppression is None:
            return
        await deps.suppressions.apply([suppression])
        await deps.publish_consent(consent)
        return
    status = _SENDGRID_STATUS.get(kind_of_event)
    if status is None:
        return  # processed, deferred, open, click: nothing to act on
    bounce_type = str(event.get("type", "bounce"))
    drop_reason = str(event.get("reason", "")).lower()
    kind: ConsentChangeKind | None = None
    if kind_of_event == "bounce" and bounce_type == "blocked":
        status = DeliveryStatus.UNDELIVERED  # the receiving server refused for now
    elif kind_of_event == "bounce":
        kind = ConsentChangeKind.ADDRESS_INVALID  # a hard bounce: the mailbox is gone
    elif kind_of_event == "dropped" and "bounced" in drop_reason:
        kind = ConsentChangeKind.ADDRESS_INVALID  # SendGrid knows the mailbox bounced
    elif kind_of_event == "dropped" and ("unsubscribed" in drop_reason or "spam" in drop_reason):
        kind = ConsentChangeKind.OPT_OUT  # on SendGrid's own suppression list
    error_code = kind_of_event if kind_of_event != "delivered" else None
    await _record_receipt(
        Receipt(
            receipt_id=f"sendgrid:{event_id}",
            proposal_id=send.proposal_id,
            debtor_id=send.debtor_id,
            channel=send.channel,
            provider="sendgrid",
            provider_message_id=send.provider_message_id,
            status=status.value,
            error_code=error_code,
            occurred_at=now,
            trace_id=send.trace_id,
        ),
        send,
        kind,
        ConsentSource.PROVIDER,
        evidence,
        deps,
    )


async def unsubscribe_by_link(proposal_id: uuid.UUID, deps: ListeningDeps) -> bool:
    """RFC 8058 one-click: stop email to the address this proposal went to. False when
    no email was sent for this proposal."""
    send = await deps.sends.get(proposal_id)
    if send is None or send.channel is not Channel.EMAIL or send.address is None:
        return False
    evidence = f"one-click unsubscribe of proposal {proposal_id}"
    consent = _consent_event(
        send,
        ConsentChangeKind.OPT_OUT,
        ConsentSource.EMAIL_UNSUBSCRIBE,
        evidence,
        deps.clock.now(),
    )
    suppression = _as_suppression(consent, send)
    if consent is None or suppression is None:
        return False
    await deps.suppressions.apply([suppression])
    await deps.publish_consent(consent)
    return True


async def deliveries_of(debtor_id: str, deps: ListeningDeps) -> list[dict[str, Any]]:
    rows = await deps.receipts.deliveries(debtor_id)
    return [
        {
            "proposal_id": str(row.proposal_id),
            "channel": row.channel,
            "status": row.status,
            "provider": row.provider,
            "provider_message_id": row.provider_message_id,
            "error_code": row.error_code,
            "at": row.at.isoformat(),
            "trace_id": row.trace_id,
        }
        for row in rows
    ]


async def unknown_outcomes(deps: ListeningDeps) -> list[dict[str, Any]]:
    return [
        {
            "proposal_id": str(record.proposal_id),
            "debtor_id": record.debtor_id,
            "channel": record.channel.value,
            "provider": record.provider,
            "claimed_at": record.claimed_at.isoformat(),
            "detail": record.detail,
            "trace_id": record.trace_id,
        }
        for record in await deps.sends.unknown_outcomes()
    ]
