"""Renders the Jinja2 template files in ``parley_messenger/templates``.

Templates are text edited by operations, so they run in Jinja's sandbox, and a missing
variable is an error rather than a silently blank field in a message to a debtor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
)
from jinja2.sandbox import SandboxedEnvironment
from parley_shared.events import Channel

from parley_messenger.domain.rendering import (
    RenderedContent,
    RenderError,
    sms_footer,
    template_candidates,
    with_footer,
)
from parley_messenger.domain.segments import count_segments
from parley_messenger.domain.wording import wording_problems

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class TemplateRenderer:
    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._environment = SandboxedEnvironment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            # Plain text (SMS body, text/plain email): HTML escaping would corrupt it.
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @property
    def environment(self) -> SandboxedEnvironment:
        return self._environment

    def render(
        self, template: str, channel: Channel, locale: str, variables: Mapping[str, str]
    ) -> RenderedContent:
        candidates = template_candidates(template, channel, locale)
        try:
            chosen = self._environment.select_template(candidates)
            if channel is Channel.SMS:
                return RenderedContent(body=chosen.render(variables).strip())
            # Email templates hold two blocks: the subject line and the text body.
            context = chosen.new_context(dict(variables))
            if "subject" not in chosen.blocks or "body" not in chosen.blocks:
                raise RenderError(f"{chosen.name} must define the blocks subject and body")
            subject = "".join(chosen.blocks["subject"](context))
            body = "".join(chosen.blocks["body"](context))
        except TemplateNotFound as error:
            raise RenderError(f"no template for {template!r} ({channel.value})") from error
        except TemplateError as error:
            # Jinja names the variable or construct at fault, not the values passed in.
            raise RenderError(f"template {template!r} failed: {error.message}") from error
        # One line only: a newline in a subject would start a new mail header.
        return RenderedContent(body=body.strip(), subject=" ".join(subject.split()))


# Sample values for the length check: long but ordinary, and all GSM-7, so a template is
# judged by its own characters. A variable not listed here gets a 20-character sample.
SAMPLE_VALUES = {
    "name": "Alexandra Montgomery-Smith",
    "first_name": "Alexandra",
    "balance": "$12,345.67",
    "amount": "$12,345.67",
    "creditor": "First National Consumer Bank",
    "reference": "ACCT-0000-1234-5678",
    "due_date": "December 31, 2026",
    "phone": "+1 (800) 555-0100",
    "link": "https://parley.example/p/abcdefghij",
}
GENERIC_SAMPLE = "x" * 20


@dataclass(frozen=True)
class TemplateProblem:
    line: int | None
    reason: str


class TemplateChecker:
    """What the messenger would object to in a template, found when a campaign is loaded
    rather than when a debtor's message is rendered."""

    def __init__(self, directory: Path = TEMPLATES_DIR, *, max_sms_segments: int) -> None:
        self._renderer = TemplateRenderer(directory)
        self._environment = self._renderer.environment
        self._max_sms_segments = max_sms_segments

    def check(
        self, template: str, locale: str, channel: Channel, variables: Sequence[str]
    ) -> list[TemplateProblem]:
        try:
            candidates = template_candidates(template, channel, locale)
        except RenderError as error:
            return [TemplateProblem(None, str(error))]
        # The default locale is a fallback for messages, not an answer to "is there a
        # de template": only files in the language the campaign asked for count.
        language = locale.strip().lower().replace("_", "-").split("-")[0]
        wanted = [c for c in candidates if c.split(".")[-2].split("-")[0] == language]
        name = next((c for c in wanted if c in self._environment.list_templates()), None)
        if name is None:
            return [
                TemplateProblem(
                    None, f"no {channel.value} template {template!r} for locale {locale!r}"
                )
            ]
        loader = self._environment.loader
        assert loader is not None
        source, _, _ = loader.get_source(self._environment, name)
        try:
            parsed = self._environment.parse(source)
        except TemplateSyntaxError as error:
            return [TemplateProblem(error.lineno, f"template syntax: {error.message}")]
        problems = [TemplateProblem(p.line, p.reason) for p in wording_problems(_text_of(source))]
        used = meta.find_undeclared_variables(parsed)
        declared = set(variables)
        for variable in sorted(used - declared):
            problems.append(
                TemplateProblem(
                    _line_using(source, variable),
                    f"the template uses {variable!r}, which the campaign does not supply",
                )
            )
        if channel is Channel.EMAIL:
            blocks = {"subject", "body"} - set(self._environment.from_string(source).blocks)
            problems.extend(
                TemplateProblem(None, f"an email template needs a {block!r} block")
                for block in sorted(blocks)
            )
        elif not used - declared:
            problems.extend(self._length_problems(template, locale, declared))
        return problems

    def _length_problems(
        self, template: str, locale: str, variables: set[str]
    ) -> list[TemplateProblem]:
        samples = {name: SAMPLE_VALUES.get(name, GENERIC_SAMPLE) for name in variables}
        try:
            content = self._renderer.render(template, Channel.SMS, locale, samples)
        except RenderError as error:
            return [TemplateProblem(None, str(error))]
        body = with_footer(content.body, sms_footer(locale))
        count = count_segments(body)
        if count.segments <= self._max_sms_segments:
            return []
        return [
            TemplateProblem(
                None,
                f"with sample values and the footer the SMS takes {count.segments} "
                f"{count.encoding} segments, over the limit of {self._max_sms_segments}",
            )
        ]


_EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def _text_of(source: str) -> str:
    """The template's own words: Jinja tags blanked out, line breaks kept for numbering."""
    return _EXPRESSION.sub(lambda match: "\n" * match.group(0).count("\n"), source)


def _line_using(source: str, variable: str) -> int | None:
    pattern = re.compile(rf"(\{{\{{|\{{%)[^}}]*\b{re.escape(variable)}\b")
    for number, line in enumerate(source.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None
