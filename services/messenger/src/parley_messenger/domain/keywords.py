"""What an inbound SMS asks for: stop, start again, help, or nothing we act on.

Twilio acts only on a body that is exactly one keyword; consent can be revoked "by any
reasonable means" (47 CFR 64.1200(a)(10)), so free text is read here as well.
Ambiguous wording leans to stopping: a missed opt-out is the costlier mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from parley_shared.events import Channel

from parley_messenger.domain.wording import fold


class Intent(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


@dataclass(frozen=True)
class InboundIntent:
    intent: Intent
    channel: Channel  # the medium the request is about ("stop emailing me" by SMS: email)
    language: str  # "en" or "es": the language of the reply


# Whole-body keywords (Twilio's defaults plus common Spanish ones).
_OPT_OUT_KEYWORDS = {
    "stop",
    "stopall",
    "stop all",
    "unsubscribe",
    "end",
    "quit",
    "revoke",
    "optout",
    "opt out",
    "cancel",
    "alto",
    "para",
    "parar",
    "basta",
    "baja",
    "cancelar",
}
_OPT_IN_KEYWORDS = {"start", "yes", "unstop", "si", "comenzar", "alta"}
_HELP_KEYWORDS = {"help", "info", "ayuda"}
_SPANISH_KEYWORDS = {"alto", "para", "parar", "basta", "baja", "cancelar", "si", "comenzar"}
_SPANISH_KEYWORDS |= {"alta", "ayuda"}

# Phrases that revoke consent anywhere in a longer message.
_OPT_OUT_PHRASES = re.compile(
    r"\b(stop|stopall|unsubscribe|opt\s*(me\s*)?out|optout|revoke|remove me|take me off"
    r"|do\s*n[o']?t\s+(text|message|contact|email|call)|leave me alone|no more"
    r"|no mas|no me (escriba|envie|mande|contacte)\w*|dejen? de|basta|darme de baja"
    r"|de baja|cancelar)\b"
)
_SPANISH_HINTS = re.compile(r"\b(no mas|no me|dejen?|basta|baja|cancelar|por favor|mensajes)\b")
_EMAIL_WORDS = re.compile(r"\b(e-?mails?|e-?mailing|correos?|mails?)\b")
_TEXT_WORDS = re.compile(r"\b(texts?|texting|sms|messages?|mensajes?)\b")


def _normalise(body: str) -> str:
    words = re.sub(r"[^a-z0-9' ]+", " ", fold(body))
    return " ".join(words.split())


def read_inbound(body: str) -> InboundIntent:
    text = _normalise(body)
    if text in _OPT_OUT_KEYWORDS or text in _OPT_IN_KEYWORDS or text in _HELP_KEYWORDS:
        language = "es" if text in _SPANISH_KEYWORDS else "en"
        if text in _OPT_OUT_KEYWORDS:
            intent = Intent.OPT_OUT
        elif text in _OPT_IN_KEYWORDS:
            intent = Intent.OPT_IN
        else:
            intent = Intent.HELP
        return InboundIntent(intent, Channel.SMS, language)
    language = "es" if _SPANISH_HINTS.search(text) else "en"
    if _OPT_OUT_PHRASES.search(text):
        about_email = bool(_EMAIL_WORDS.search(text)) and not _TEXT_WORDS.search(text)
        channel = Channel.EMAIL if about_email else Channel.SMS
        return InboundIntent(Intent.OPT_OUT, channel, language)
    return InboundIntent(Intent.NONE, Channel.SMS, language)
