"""``parley campaign ...`` (preview, account import) and ``parley journey``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from parley_consent.domain.evaluation import evaluate_case
from parley_scheduler.domain.campaign import CampaignError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from parley_cli.preview.report import html_report, render_samples, terminal_table
from parley_cli.preview.simulate import simulate

campaign_app = typer.Typer(help="Campaigns: preview before launch, import accounts.")
console = Console()
error_console = Console(stderr=True)

SchedulerUrl = Annotated[
    str, typer.Option(envvar="PARLEY_SCHEDULER_URL", help="The scheduler's base URL.")
]
ApiKeyOption = Annotated[
    str | None, typer.Option(envvar="PARLEY_API_KEY", help="Your scheduler API key.")
]


def _next_hour() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


@campaign_app.command()
def preview(
    campaign: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Campaign YAML.")],
    accounts: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Accounts CSV to run it against.")
    ],
    days: Annotated[int, typer.Option(min=1, max=90, help="How many days to simulate.")] = 14,
    start: Annotated[
        datetime | None,
        typer.Option(help="Simulated start (ISO, UTC if no offset); default: the next hour."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Where to write the HTML report; default: next to FILE.")
    ] = None,
    samples: Annotated[int, typer.Option(min=0, max=20, help="Sample messages to show.")] = 3,
) -> None:
    """Run CAMPAIGN against the real consent rules on a simulated clock, without sending:
    per day, proposals, approvals, vetoes by rule, deferrals and sends per channel."""
    begin = _next_hour() if start is None else start
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=UTC)
    try:
        result = simulate(
            campaign.read_text(encoding="utf-8"),
            accounts.read_text(encoding="utf-8"),
            days=days,
            start=begin.astimezone(UTC),
            evaluate=evaluate_case,
            sample_count=samples,
        )
    except CampaignError as error:
        for message in error.problems:
            error_console.print(f"[red]{campaign}:[/red] {message}")
        raise typer.Exit(code=2) from None
    console.print(terminal_table(result))
    rendered = render_samples(result)
    for sample in rendered:
        heading = f"{sample.sample.debtor_id}, step {sample.sample.step} by {sample.sample.channel}"
        console.print(f"[bold]{heading}[/bold]")
        if sample.subject:
            console.print(f"Subject: {sample.subject}")
        console.print(sample.body, markup=False, highlight=False)
    for problem in [*result.rejected_rows, *result.warnings]:
        console.print(f"[yellow]{accounts}: row {problem.row}, {problem.field}: {problem.reason}")
    target = html or campaign.with_name(f"{campaign.stem}-preview.html")
    target.write_text(html_report(result, rendered), encoding="utf-8")
    console.print(f"HTML report: {target}")


def _parts(path: Path, rows_per_part: int) -> Iterator[tuple[int, str, int]]:
    """The file as CSV parts that each repeat the header: (first row number, text, bytes)."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        row_number = 2
        while True:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(header)
            first = row_number
            for record in reader:
                writer.writerow(record)
                row_number += 1
                if row_number - first >= rows_per_part:
                    break
            if row_number == first:
                return
            text = out.getvalue()
            yield first, text, len(text.encode())


@campaign_app.command("import-accounts")
def import_accounts(
    accounts: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Accounts CSV.")],
    scheduler_url: SchedulerUrl = "http://127.0.0.1:8101",
    api_key: ApiKeyOption = None,
    rows_per_part: Annotated[int, typer.Option(min=100, help="Rows sent per request.")] = 5000,
) -> None:
    """Import accounts, streamed in parts, with a report of every rejected row.
    Importing the same file again changes nothing."""
    totals = {"rows": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    problems: list[dict[str, Any]] = []
    headers = {"Content-Type": "text/csv", **({"X-API-Key": api_key} if api_key else {})}
    with (
        httpx.Client(base_url=scheduler_url.rstrip("/"), timeout=300.0, headers=headers) as client,
        Progress(
            TextColumn("importing {task.fields[name]}"),
            BarColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("import", total=accounts.stat().st_size, name=accounts.name)
        for first_row, text, size in _parts(accounts, rows_per_part):
            response = client.post(
                "/v1/accounts/imports", params={"first_row": first_row}, content=text
            )
            if response.is_error:
                error_console.print(
                    f"[red]scheduler answered {response.status_code}:[/red] {response.text[:500]}"
                )
                raise typer.Exit(code=1)
            report = response.json()
            for key in totals:
                totals[key] += report[key]
            problems += [{**p, "kind": "rejected"} for p in report["rejected"]]
            problems += [{**p, "kind": "warning"} for p in report["warnings"]]
            progress.advance(task, size)
    console.print(
        f"{totals['rows']} rows: {totals['inserted']} new, {totals['updated']} changed, "
        f"{totals['unchanged']} unchanged, "
        f"{sum(p['kind'] == 'rejected' for p in problems)} rejected"
    )
    for problem in problems:
        colour = "red" if problem["kind"] == "rejected" else "yellow"
        console.print(
            f"[{colour}]{accounts}: row {problem['row']}, {problem['field']}: "
            f"{problem['reason']}[/{colour}]"
        )


def journey_timeline(
    debtor_id: str,
    enrollments: dict[str, Any],
    consent: dict[str, Any],
    deliveries: dict[str, Any],
) -> list[dict[str, str]]:
    """One time-ordered list from the three services' answers; trace ids tie them together."""
    trace_of = {d["proposal_id"]: d.get("trace_id") or "" for d in consent.get("decisions", [])}
    for delivery in deliveries.get("deliveries", []):
        trace_of.setdefault(delivery["proposal_id"], delivery.get("trace_id") or "")
    entries: list[dict[str, str]] = []
    for p in enrollments.get("proposals", []):
        entries.append(
            {
                "at": p["proposed_at"],
                "service": "scheduler",
                "what": f"proposed {p['campaign_id']} v{p['campaign_version']} step {p['step']}"
                f" by {p['channel']}" + (f" (attempt {p['attempt']})" if p["attempt"] else ""),
                "why": "",
                "proposal": p["proposal_id"],
                "trace": trace_of.get(p["proposal_id"], ""),
            }
        )
    for d in consent.get("decisions", []):
        reasons = "; ".join(f"{r['rule_id']}: {r['explanation']}" for r in d.get("reasons", []))
        until = f" until {d['defer_until']}" if d.get("defer_until") else ""
        entries.append(
            {
                "at": d["decided_at"],
                "service": "consent",
                "what": f"{d['verdict']}{until} (rules {d.get('rule_set_version', '')})",
                "why": reasons,
                "proposal": d["proposal_id"],
                "trace": d.get("trace_id") or "",
            }
        )
    for c in consent.get("consent_changes", []):
        entries.append(
            {
                "at": c["occurred_at"],
                "service": "consent",
                "what": f"consent change: {c['kind']}"
                + (f" ({c['channel']})" if c.get("channel") else ""),
                "why": f"source {c.get('source', '')}",
                "proposal": "",
                "trace": c.get("trace_id") or "",
            }
        )
    for m in deliveries.get("deliveries", []):
        error = f" error {m['error_code']}" if m.get("error_code") else ""
        entries.append(
            {
                "at": m["at"],
                "service": "messenger",
                "what": f"{m['status']} by {m['channel']} via {m['provider']}{error}",
                "why": "",
                "proposal": m["proposal_id"],
                "trace": m.get("trace_id") or "",
            }
        )
    return sorted(entries, key=lambda e: datetime.fromisoformat(e["at"].replace("Z", "+00:00")))


def journey(
    debtor_id: Annotated[str, typer.Argument(help="The debtor to follow.")],
    scheduler_url: SchedulerUrl = "http://127.0.0.1:8101",
    consent_url: Annotated[
        str, typer.Option(envvar="PARLEY_CONSENT_URL", help="The consent service's base URL.")
    ] = "http://127.0.0.1:8102",
    messenger_url: Annotated[
        str, typer.Option(envvar="PARLEY_MESSENGER_URL", help="The messenger's base URL.")
    ] = "http://127.0.0.1:8103",
    api_key: ApiKeyOption = None,
) -> None:
    """One timeline for a debtor across the three services: proposals, decisions with their
    reasons, sends and delivery receipts, consent changes, each with its trace id."""
    headers = {"X-API-Key": api_key} if api_key else {}
    answers: list[dict[str, Any]] = []
    for name, url in (
        ("scheduler", f"{scheduler_url.rstrip('/')}/v1/debtors/{debtor_id}/enrollments"),
        ("consent", f"{consent_url.rstrip('/')}/v1/debtors/{debtor_id}"),
        ("messenger", f"{messenger_url.rstrip('/')}/v1/debtors/{debtor_id}/deliveries"),
    ):
        try:
            response = httpx.get(url, headers=headers if name == "scheduler" else {}, timeout=30)
        except httpx.HTTPError as error:
            error_console.print(f"[red]{name} unreachable at {url}:[/red] {type(error).__name__}")
            raise typer.Exit(code=1) from None
        if response.status_code == 404:
            answers.append({})
            continue
        if response.is_error:
            error_console.print(f"[red]{name} answered {response.status_code}[/red] at {url}")
            raise typer.Exit(code=1)
        answers.append(response.json())
    timeline = journey_timeline(debtor_id, *answers)
    table = Table(title=f"Journey of {debtor_id}")
    for column in ("when (UTC)", "service", "what", "why", "proposal", "trace id"):
        table.add_column(column, overflow="fold")
    for entry in timeline:
        table.add_row(
            entry["at"],
            entry["service"],
            entry["what"],
            entry["why"],
            entry["proposal"][:8],
            entry["trace"],
        )
    console.print(table if timeline else f"nothing recorded for {debtor_id}")
