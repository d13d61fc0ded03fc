"""Rendering rules: which template file serves a (template, channel, locale), and the
footer the system adds to every message whatever the template says."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from parley_shared.events import Channel, ContactDecision

from parley_messenger.domain.dispatch import validity_period_seconds
from parley_messenger.domain.model import OutboundMessage
from parley_messenger.domain.segments import count_segments

DEFAULT_LOCALE = "en"
_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


class RenderError(Exception):
    """A message could not be rendered. The text names the template or variable, never a
    variable's value."""


@dataclass(frozen=True)
class RenderedContent:
    body: str
    subject: str | None = None


def template_candidates(template: str, channel: Channel, locale: str) -> tuple[str, ...]:
    """Template files to try, most specific first: ``first-notice/sms.es-mx.j2``, then
    ``first-notice/sms.es.j2``, then the default locale."""
    if not _TEMPLATE_NAME.match(template):
        # Also keeps a crafted name from walking out of the templates directory.
        raise RenderError(f"invalid template name {template!r}")
    normalised = locale.strip().lower().replace("_", "-")
    locales: list[str] = []
    if _LOCALE.match(normalised):
        parts = normalised.split("-")
        locales.extend("-".join(parts[:n]) for n in range(len(parts), 0, -1))
    locales.append(DEFAULT_LOCALE)
    unique = dict.fromkeys(locales)
    return tuple(f"{template}/{channel.value}.{loc}.j2" for loc in unique)


# Added by the system, never left to template authors: the full statement Reg F asks of a
# first communication (1006.18(e)), which also satisfies every later one.
_DISCLOSURE = {
    "en": "We are a debt collector attempting to collect a debt; any information obtained "
    "will be used for that purpose.",
    "es": "Somos un cobrador de deudas que intenta cobrar una deuda; cualquier información "
    "obtenida se usará con ese fin.",
}
_SMS_OPT_OUT = {
    "en": "Reply STOP to stop texts to this number.",
    # STOP stays in English: it is the keyword carriers and Twilio act on.
    "es": "Responda STOP para dejar de recibir mensajes de texto en este número.",
}
_PREFERENCES = {
    "en": "Your choices: {url}",
    "es": "Sus opciones: {url}",
}
_EMAIL_PREFERENCES = {
    "en": "To choose how and when we contact you, pause for hardship or dispute this debt: {url}",
    "es": "Para elegir cómo y cuándo le contactamos, pausar por dificultades o disputar esta "
    "deuda: {url}",
}
_EMAIL_OPT_OUT = {
    "en": "To stop emails from us, unsubscribe here: {url}",
    "es": "Para dejar de recibir nuestros correos electrónicos, cancele su suscripción aquí: {url}",
}


def _language(locale: str) -> str:
    language = locale.strip().lower().replace("_", "-").split("-")[0]
    return language if language in _DISCLOSURE else DEFAULT_LOCALE


def sms_footer(locale: str, preferences_link: str | None = None) -> str:
    language = _language(locale)
    footer = f"{_DISCLOSURE[language]} {_SMS_OPT_OUT[language]}"
    if preferences_link:
        footer = f"{footer} {_PREFERENCES[language].format(url=preferences_link)}"
    return footer


def email_footer(locale: str, unsubscribe_link: str, preferences_link: str | None = None) -> str:
    language = _language(locale)
    footer = f"{_DISCLOSURE[language]}\n{_EMAIL_OPT_OUT[language].format(url=unsubscribe_link)}"
    if preferences_link:
        footer = f"{footer}\n{_EMAIL_PREFERENCES[language].format(url=preferences_link)}"
    return footer


def with_footer(body: str, footer: str) -> str:
    return f"{body.strip()}\n\n{footer}"


def unsubscribe_url(public_base_url: str, proposal_id: uuid.UUID, token: str) -> str:
    """The one-click link of one message. The random proposal id names the debtor and
    address to the endpoint without putting either in the URL; the token (a signature
    over the id) proves the link is one the messenger wrote."""
    return f"{public_base_url.rstrip('/')}/unsubscribe/{proposal_id}?token={token}"


def preferences_url(public_base_url: str, token: str) -> str:
    """The debtor's preference page; the token names the debtor and expires."""
    return f"{public_base_url.rstrip('/')}/p/{token}"


def status_callback_url(public_base_url: str, proposal_id: uuid.UUID) -> str:
    """Where Twilio reports what became of one SMS. The proposal id in the query lets a
    callback that beats our own bookkeeping still find its send."""
    return f"{public_base_url.rstrip('/')}/webhooks/twilio/status?proposal_id={proposal_id}"


@dataclass(frozen=True)
class MessageLinks:
    unsubscribe: str
    status_callback: str
    preferences: str | None = None


def list_unsubscribe_headers(link: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers, so mail clients offer one-click unsubscribe."""
    return {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def compose(
    decision: ContactDecision,
    content: RenderedContent,
    *,
    now: datetime,
    links: MessageLinks,
    max_sms_segments: int,
) -> OutboundMessage:
    """The message as it leaves: rendered content, the system footer and provider fields."""
    proposal = decision.proposal
    if proposal.channel is Channel.SMS:
        if decision.lawful_until is None:
            raise ValueError("an SMS needs lawful_until to set its ValidityPeriod")
        body = with_footer(content.body, sms_footer(proposal.locale, links.preferences))
        if count_segments(body).segments > max_sms_segments:
            # The preference link goes only where it fits: a text at the limit keeps the
            # disclosure and STOP, and its debtor reaches the page from any email.
            body = with_footer(content.body, sms_footer(proposal.locale))
        count = count_segments(body)
        if count.segments > max_sms_segments:
            raise RenderError(
                f"the SMS of {proposal.template!r} takes {count.segments} {count.encoding} "
                f"segments, over the limit of {max_sms_segments}"
            )
        return OutboundMessage(
            proposal_id=proposal.proposal_id,
            debtor_id=proposal.debtor_id,
            channel=proposal.channel,
            to=proposal.address,
            body=body,
            validity_period=validity_period_seconds(now, decision.lawful_until),
            status_callback=links.status_callback,
        )
    if not content.subject:
        raise RenderError(f"email template {proposal.template!r} rendered no subject")
    return OutboundMessage(
        proposal_id=proposal.proposal_id,
        debtor_id=proposal.debtor_id,
        channel=proposal.channel,
        to=proposal.address,
        subject=content.subject,
        body=with_footer(
            content.body, email_footer(proposal.locale, links.unsubscribe, links.preferences)
        ),
        headers=list_unsubscribe_headers(links.unsubscribe),
        # Echoed back in SendGrid's event webhook, so receipts find their proposal.
        custom_args={"proposal_id": str(proposal.proposal_id), "debtor_id": proposal.debtor_id},
    )
