"""Renders the Jinja2 template files in ``parley_messenger/templates``.

Templates are text edited by operations, so they run in Jinja's sandbox, and a missing
variable is an error rather than a silently blank field in a message to a debtor.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment
from parley_shared.events import Channel

from parley_messenger.domain.rendering import RenderedContent, RenderError, template_candidates

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
