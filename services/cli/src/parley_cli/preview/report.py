"""The preview as a terminal table and as one self-contained HTML file with a chart."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # No display: the chart is drawn straight into the HTML file.
import matplotlib.pyplot as plt
from jinja2 import Environment, select_autoescape
from parley_messenger.adapters.templates import TemplateRenderer
from parley_messenger.domain.rendering import RenderError
from parley_shared.events import Channel
from rich.table import Table

from parley_cli.preview.simulate import PreviewResult, Sample


@dataclass(frozen=True)
class RenderedSample:
    sample: Sample
    subject: str | None
    body: str


def render_samples(result: PreviewResult) -> list[RenderedSample]:
    renderer = TemplateRenderer()
    rendered = []
    for sample in result.samples:
        try:
            content = renderer.render(
                sample.template, Channel(sample.channel), sample.locale, sample.variables
            )
        except RenderError as error:
            rendered.append(RenderedSample(sample, None, f"(cannot be rendered: {error})"))
            continue
        rendered.append(RenderedSample(sample, content.subject, content.body))
    return rendered


def _rules(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule} {count}" for rule, count in sorted(counts.items())) or "-"


def terminal_table(result: PreviewResult) -> Table:
    campaign = result.campaign
    table = Table(
        title=f"Preview of {campaign.id} ({campaign.name}) from {result.start:%Y-%m-%d %H:%M} UTC",
        caption=(
            f"{result.in_audience} of {result.accounts} accounts in the audience; "
            f"{len(result.rejected_rows)} rows rejected, {len(result.warnings)} warnings; "
            f"rules {result.rule_set_version or '(none asked)'}"
        ),
    )
    for column in ("day (UTC)", "proposals", "approved", "deferred", "vetoed", "sms", "email"):
        table.add_column(column, justify="left" if column.startswith("day") else "right")
    table.add_column("vetoes by rule")
    table.add_column("deferrals by rule")
    for day in [*result.days, None]:
        tally = result.totals() if day is None else day
        table.add_row(
            "total" if day is None else f"{tally.day:%a %Y-%m-%d}",
            str(tally.proposals),
            str(tally.approved),
            str(tally.deferred),
            str(tally.vetoed),
            str(tally.sends_by_channel["sms"]),
            str(tally.sends_by_channel["email"]),
            _rules(tally.vetoes_by_rule),
            _rules(tally.deferrals_by_rule),
            end_section=day is result.days[-1] if result.days else False,
        )
    return table


def _chart(result: PreviewResult) -> str:
    """A stacked bar chart of outcomes per day, as an inline PNG data URL."""
    labels = [f"{day.day:%m-%d}" for day in result.days]
    figure, axis = plt.subplots(figsize=(9, 3.2), dpi=110)
    bottom = [0] * len(result.days)
    for name, values, colour in (
        ("approved", [d.approved for d in result.days], "#2e7d32"),
        ("deferred", [d.deferred for d in result.days], "#f9a825"),
        ("vetoed", [d.vetoed for d in result.days], "#c62828"),
    ):
        axis.bar(labels, values, bottom=bottom, label=name, color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylabel("decisions")
    axis.set_title("Consent decisions per day")
    axis.legend(loc="upper right", frameon=False)
    axis.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Preview of {{ c.id }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; max-width: 70rem; }
 table { border-collapse: collapse; margin: 1rem 0; }
 th, td { border-bottom: 1px solid #ddd; padding: .3rem .7rem; text-align: right; }
 th:first-child, td:first-child, td.rules { text-align: left; }
 tr.total td { font-weight: bold; border-top: 2px solid #555; }
 pre { background: #f5f5f5; padding: .8rem; white-space: pre-wrap; }
 .note { color: #555; }
</style></head><body>
<h1>Preview of {{ c.name }} <small>({{ c.id }})</small></h1>
<p>Simulated from {{ r.start.strftime("%Y-%m-%d %H:%M") }} UTC for {{ r.days|length }} days
against the consent rules {{ r.rule_set_version or "(none asked)" }}. Nothing was sent.</p>
<p>{{ r.in_audience }} of {{ r.accounts }} imported accounts are in the audience;
{{ r.rejected_rows|length }} rows were rejected and {{ r.warnings|length }} carry warnings.</p>
<img alt="Approved, deferred and vetoed proposals per day" src="{{ chart }}">
<table>
<thead><tr><th>day (UTC)</th><th>proposals</th><th>approved</th><th>deferred</th>
<th>vetoed</th><th>sms</th><th>email</th><th>vetoes by rule</th><th>deferrals by rule</th>
</tr></thead>
<tbody>
{% for d in rows %}
<tr{% if loop.last %} class="total"{% endif %}>
<td>{{ "total" if loop.last else d.day.strftime("%a %Y-%m-%d") }}</td><td>{{ d.proposals }}</td>
<td>{{ d.approved }}</td><td>{{ d.deferred }}</td><td>{{ d.vetoed }}</td>
<td>{{ d.sends_by_channel["sms"] }}</td><td>{{ d.sends_by_channel["email"] }}</td>
<td class="rules">{{ rules(d.vetoes_by_rule) }}</td>
<td class="rules">{{ rules(d.deferrals_by_rule) }}</td>
</tr>
{% endfor %}
</tbody></table>
<h2>Sample messages</h2>
{% for s in samples %}
<h3>{{ s.sample.debtor_id }}: step {{ s.sample.step }} by {{ s.sample.channel }}
({{ s.sample.locale }})</h3>
{% if s.subject %}<p><strong>Subject:</strong> {{ s.subject }}</p>{% endif %}
<pre>{{ s.body }}</pre>
{% else %}<p>No message would be approved.</p>{% endfor %}
{% if problems %}<h2>Account rows to fix</h2><table><thead><tr><th>row</th><th>field</th>
<th>reason</th></tr></thead><tbody>{% for p in problems %}<tr><td>{{ p.row }}</td>
<td class="rules">{{ p.field }}</td><td class="rules">{{ p.reason }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
<p class="note">The preview assumes each approved message is sent when approved and
delivered, so steps that run only after an undelivered message are not predicted.</p>
</body></html>
"""


def html_report(result: PreviewResult, samples: list[RenderedSample]) -> str:
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = environment.from_string(_PAGE)
    return template.render(
        c=result.campaign,
        r=result,
        rows=[*result.days, result.totals()],
        chart=_chart(result),
        rules=_rules,
        samples=samples,
        problems=[*result.rejected_rows, *result.warnings],
    )
