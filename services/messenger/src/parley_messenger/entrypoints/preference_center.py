"""The debtor preference page: reached by a signed, expiring link in each message.

Every choice is one small form (no JavaScript needed) that becomes one consent change,
recorded by the consent service before the page says it is saved; a stop is also
written to the messenger's own suppressions first thing after, so the send-time check
sees it at once. A GET never changes anything.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from parley_shared.clock import Clock
from parley_shared.events import Channel, ConsentChanged

from parley_messenger.adapters.consent_client import ConsentUnavailable
from parley_messenger.adapters.preference_links import LinkExpired, LinkInvalid, PreferenceLinks
from parley_messenger.adapters.preference_pages import PreferencePages
from parley_messenger.domain.model import SendRecord
from parley_messenger.domain.preference_choices import (
    LANGUAGES,
    Choice,
    InvalidChoice,
    consent_change_for,
    page_language,
    preferences_from_form,
)
from parley_messenger.domain.preference_limits import SlidingWindowLimit
from parley_messenger.domain.preference_wording import WORDING, long_date
from parley_messenger.handlers import Suppressions, apply_consent_change

log = logging.getLogger(__name__)

HOURS = tuple(f"{hour:02d}:00" for hour in range(8, 22))
_STOPS = {Choice.STOP_TEXTS, Choice.STOP_EMAILS, Choice.STOP_ALL}
# The link token is in the URL: keep it out of caches, referrers and other sites' frames.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


class ConsentGateway(Protocol):
    async def record(self, change: ConsentChanged) -> ConsentChanged: ...

    async def debtor(self, debtor_id: str) -> dict[str, Any] | None: ...

    async def proposal(self, proposal_id: uuid.UUID) -> dict[str, Any] | None: ...


class LatestSends(Protocol):
    async def latest_of(self, debtor_id: str) -> SendRecord | None: ...


@dataclass(frozen=True)
class PreferenceDeps:
    links: PreferenceLinks
    consent: ConsentGateway
    sends: LatestSends
    suppressions: Suppressions
    clock: Clock
    limit: SlidingWindowLimit
    contact_email: str
    pages: PreferencePages = field(default_factory=PreferencePages)
    monotonic: Callable[[], float] = time.monotonic


def build_preference_router(deps: PreferenceDeps) -> APIRouter:
    router = APIRouter(tags=["preference center"])

    def page(name: str, lang: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(
            deps.pages.render(name, lang, **context), status_code=status_code, headers=_HEADERS
        )

    def refused(request: Request, lang: str) -> HTMLResponse | None:
        client = request.client.host if request.client else "unknown"
        if deps.limit.allow(client, deps.monotonic()):
            return None
        response = page("problem", lang, 429, message=WORDING[lang]["too_many"], base_path="")
        response.headers["Retry-After"] = "60"
        return response

    def unusable(error: Exception, lang: str) -> HTMLResponse:
        t = WORDING[lang]
        expired = isinstance(error, LinkExpired)
        return page(
            "invalid",
            lang,
            410 if expired else 403,
            reason=t["expired"] if expired else t["forged"],
            contact=t["contact"].format(sender=deps.contact_email),
        )

    @router.get("/p/{token}", response_model=None)
    async def landing(token: str, request: Request, lang: str | None = None) -> HTMLResponse:
        asked = page_language(lang)
        if (limited := refused(request, asked)) is not None:
            return limited
        try:
            debtor_id = deps.links.debtor_of(token)
        except (LinkExpired, LinkInvalid) as error:
            log.info("preference page refused a link: %s", type(error).__name__)
            return unusable(error, asked)
        overview = await deps.consent.debtor(debtor_id)
        proposal = await _latest_proposal(debtor_id, deps)
        saved = (overview or {}).get("preferences") or {}
        language = page_language(lang, saved.get("locale"), (proposal or {}).get("locale"))
        submission = uuid.uuid4()
        return page(
            "landing",
            language,
            base_path=f"/p/{token}",
            other_lang="es" if language == "en" else "en",
            languages=LANGUAGES,
            submission=submission,
            csrf=deps.links.csrf_token(token, submission),
            account=_account(proposal),
            status=_status_lines(overview, language),
            prefs=_form_defaults(saved),
            hours=HOURS,
        )

    @router.post("/p/{token}/{choice}", response_model=None)
    async def choose(token: str, choice: str, request: Request) -> HTMLResponse:
        form = await request.form()
        lang = page_language(_text(form.get("lang")))
        if (limited := refused(request, lang)) is not None:
            return limited
        try:
            debtor_id = deps.links.debtor_of(token)
        except (LinkExpired, LinkInvalid) as error:
            log.info("preference form refused a link: %s", type(error).__name__)
            return unusable(error, lang)
        t = WORDING[lang]
        base_path = f"/p/{token}"
        try:
            chosen = Choice(choice)
        except ValueError:
            return page(
                "problem",
                lang,
                404,
                message=t["error_form"].format(detail="choice"),
                base_path=base_path,
            )
        try:
            submission = uuid.UUID(_text(form.get("submission")))
        except ValueError:
            submission = None
        if submission is None or not deps.links.csrf_valid(
            token, submission, _text(form.get("csrf"))
        ):
            log.info("preference form for debtor %s refused: bad CSRF token", debtor_id)
            return page("problem", lang, 403, message=t["error_csrf"], base_path=base_path)
        try:
            preferences = (
                preferences_from_form(
                    _text(form.get("channel")),
                    [_text(day) for day in form.getlist("weekdays")],
                    _text(form.get("earliest")),
                    _text(form.get("latest")),
                    _text(form.get("lang")),
                )
                if chosen is Choice.PREFERENCES
                else None
            )
            change = consent_change_for(
                chosen, debtor_id, submission, deps.clock.now(), preferences
            )
        except InvalidChoice as error:
            return page(
                "problem",
                lang,
                400,
                message=t["error_form"].format(detail=error),
                base_path=base_path,
            )
        try:
            recorded = await deps.consent.record(change)
        except ConsentUnavailable as error:
            log.warning(
                "preference choice %s for debtor %s not saved: %s", chosen, debtor_id, error
            )
            return page("problem", lang, 503, message=t["error_unavailable"], base_path=base_path)
        if chosen in _STOPS:
            # The recorded change (the first one, for a repeat) keeps its own time, so a
            # second submit stores nothing new here either.
            await apply_consent_change(recorded, deps.suppressions)
        log.info("preference choice %s saved for debtor %s", chosen, debtor_id)
        message = t[f"done_{chosen.value}"]
        if recorded.ends_at is not None:
            message = message.format(until=_date(lang, recorded.ends_at))
        return page("done", lang, message=message, base_path=base_path)

    return router


async def _latest_proposal(debtor_id: str, deps: PreferenceDeps) -> dict[str, Any] | None:
    latest = await deps.sends.latest_of(debtor_id)
    return None if latest is None else await deps.consent.proposal(latest.proposal_id)


def _account(proposal: dict[str, Any] | None) -> dict[str, str] | None:
    variables = (proposal or {}).get("variables") or {}
    shown = {
        key: str(variables[key])
        for key in ("creditor", "reference", "balance")
        if variables.get(key)
    }
    return shown or None


def _date(lang: str, moment: datetime) -> str:
    return long_date(lang, moment.year, moment.month, moment.day)


def _status_lines(overview: dict[str, Any] | None, lang: str) -> list[str] | None:
    """What is in force, in words; None when consent could not be asked."""
    if overview is None:
        return None
    t = WORDING[lang]
    lines: list[str] = []
    channels = {o.get("channel") for o in overview.get("opt_outs", [])}
    if None in channels:
        lines.append(t["status_all_stopped"])
    else:
        if Channel.SMS.value in channels:
            lines.append(t["status_texts_stopped"])
        if Channel.EMAIL.value in channels:
            lines.append(t["status_emails_stopped"])
    for hold in overview.get("holds", []):
        if not hold.get("active"):
            continue
        if hold.get("kind") == "hardship" and hold.get("ends_at"):
            until = datetime.fromisoformat(hold["ends_at"])
            lines.append(t["status_hardship"].format(until=_date(lang, until)))
        elif hold.get("kind") == "dispute":
            lines.append(t["status_dispute"])
    return lines


def _form_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    def hour(value: Any) -> str:
        return str(value)[:5] if value else ""

    return {
        "channel": saved.get("preferred_channel") or "",
        "weekdays": tuple(saved.get("weekdays") or ()),
        "earliest": hour(saved.get("earliest")),
        "latest": hour(saved.get("latest")),
    }


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
