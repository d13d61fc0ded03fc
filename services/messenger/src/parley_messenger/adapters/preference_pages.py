"""Renders the preference page's HTML from the Jinja2 templates in
``templates/preference_center``, autoescaped: account details and form values come
from elsewhere and are never trusted as markup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from parley_messenger.domain.preference_wording import WORDING

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class PreferencePages:
    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._environment = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, page: str, lang: str, **context: Any) -> str:
        template = self._environment.get_template(f"preference_center/{page}.html.j2")
        return template.render(lang=lang, t=WORDING[lang], **context)
