"""The template files, rendered the way the messenger renders them."""

from __future__ import annotations

from pathlib import Path

import pytest
from parley_messenger.adapters.templates import TemplateRenderer
from parley_messenger.domain.rendering import RenderError, sms_footer, with_footer
from parley_shared.events import Channel

from tests.messenger.factories import VARIABLES


@pytest.mark.parametrize("locale", ["en", "es", "es-MX", "en-GB", "de"])
@pytest.mark.parametrize("channel", [Channel.SMS, Channel.EMAIL])
def test_first_notice_renders_in_every_locale(channel: Channel, locale: str) -> None:
    content = TemplateRenderer().render("first-notice", channel, locale, VARIABLES)
    assert "Ada Lovelace" in content.body
    assert "$1,234.56" in content.body
    assert "{{" not in content.body
    if channel is Channel.EMAIL:
        assert content.subject is not None
        assert "AB-1234" in content.subject
        assert "\n" not in content.subject
    else:
        assert content.subject is None


def test_spanish_uses_the_spanish_file() -> None:
    sms = TemplateRenderer().render("first-notice", Channel.SMS, "es-MX", VARIABLES)
    assert sms.body.startswith("Hola Ada Lovelace")
    email = TemplateRenderer().render("first-notice", Channel.EMAIL, "es", VARIABLES)
    assert email.subject == "Sobre su cuenta AB-1234 con Analytical Bank"


@pytest.mark.parametrize(
    ("locale", "statement"),
    [
        ("en", "debt collector attempting to collect a debt"),
        ("es", "cobrador de deudas que intenta cobrar una deuda"),
    ],
)
def test_the_first_notice_carries_the_mini_miranda_once(locale: str, statement: str) -> None:
    """The system adds the disclosure, not the template author: it is there exactly once."""
    sms = TemplateRenderer().render("first-notice", Channel.SMS, locale, VARIABLES)
    assert statement not in sms.body
    sent = with_footer(sms.body, sms_footer(locale))
    assert sent.count(statement) == 1


def test_a_missing_variable_is_an_error_naming_it_not_a_blank() -> None:
    variables = {key: value for key, value in VARIABLES.items() if key != "balance"}
    with pytest.raises(RenderError, match="balance") as raised:
        TemplateRenderer().render("first-notice", Channel.SMS, "en", variables)
    assert "Ada" not in str(raised.value)


def test_an_unknown_template_is_an_error() -> None:
    with pytest.raises(RenderError, match="no template"):
        TemplateRenderer().render("no-such-template", Channel.SMS, "en", VARIABLES)


def test_templates_run_in_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "sms.en.j2").write_text("{{ name.__class__.__mro__ }}")
    with pytest.raises(RenderError):
        TemplateRenderer(tmp_path).render("evil", Channel.SMS, "en", VARIABLES)


def test_an_email_template_needs_subject_and_body_blocks(tmp_path: Path) -> None:
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "email.en.j2").write_text("Just text")
    with pytest.raises(RenderError, match="blocks"):
        TemplateRenderer(tmp_path).render("bare", Channel.EMAIL, "en", VARIABLES)
