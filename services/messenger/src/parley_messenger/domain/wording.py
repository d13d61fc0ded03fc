"""Wording a collection message must never use, found in a template's source at campaign
load: threats the collector cannot or does not intend to carry out (15 USC 1692e(4),
(5); Reg F 1006.18), threats of suit (unlawful on time-barred debt, US-F-TIMEBAR) and
false urgency. Each rule names why, so the author knows what to change."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class WordingRule:
    pattern: re.Pattern[str]
    reason: str


@dataclass(frozen=True)
class WordingProblem:
    line: int
    reason: str


def _rule(pattern: str, reason: str) -> WordingRule:
    return WordingRule(re.compile(pattern, re.IGNORECASE), reason)


# Matched against text folded to lower-case ASCII, so "cárcel" and "carcel" both match.
RULES: tuple[WordingRule, ...] = (
    _rule(
        r"\b(arrest(ed|s)?|warrant|arresto|detenid[oa]|detencion)\b",
        "threatens arrest: a debt collector cannot have anyone arrested (15 USC 1692e(4))",
    ),
    _rule(
        r"\b(jail|prison|carcel|prision|criminal)\b",
        "threatens jail or criminal charges over a debt (15 USC 1692e(4), (7))",
    ),
    _rule(
        r"\b(legal action|lawsuit|sue|sued|suing|take you to court|court action"
        r"|accion legal|acciones legales|demanda(r|remos)?|tribunal)\b",
        "threatens suit: unlawful on time-barred debt (US-F-TIMEBAR, 1006.26(b)) and "
        "misleading unless suit is intended and lawful (15 USC 1692e(5))",
    ),
    _rule(
        r"\b(garnish(ed|ment)?|seize|seizure|repossess|embargo|embargar)\b",
        "threatens garnishment or seizure the message cannot promise (15 USC 1692e(4))",
    ),
    _rule(
        r"\b(final notice|last chance|act now|immediately|urgent|today only"
        r"|within 24 hours|expires today|ultimo aviso|ultima oportunidad|urgente"
        r"|inmediatamente|de inmediato|solo hoy)\b",
        "false urgency: pressure for a quick payment misleads (1006.18; CONC 7.3.10R)",
    ),
)


def fold(text: str) -> str:
    """Lower-case ASCII: accents removed, so rules need one spelling per word."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def wording_problems(source: str) -> list[WordingProblem]:
    """Every line of ``source`` (a template's text, 1-based lines) that breaks a rule."""
    problems: list[WordingProblem] = []
    for number, line in enumerate(source.splitlines(), start=1):
        folded = fold(line)
        problems.extend(
            WordingProblem(number, rule.reason) for rule in RULES if rule.pattern.search(folded)
        )
    return problems
