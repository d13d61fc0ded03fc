"""``parley``: the operator's front door."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parley_cli.campaign_commands import campaign_app, journey
from parley_cli.consent_commands import consent_app
from parley_cli.demo import DEMO_START, DemoSummary, run_demo_sync
from parley_cli.demo_data import synthetic_debtors
from parley_cli.local.broker import LocalServiceError
from parley_cli.local.stack import LocalStack

app = typer.Typer(
    help="Parley: respectful outreach for debt collection.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(consent_app, name="consent")
app.add_typer(campaign_app, name="campaign")
app.command()(journey)
console = Console()
error_console = Console(stderr=True)


def _say(message: str) -> None:
    console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {message}")


def _workdir(base: Path, kind: str) -> Path:
    return base / f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@app.command()
def demo(
    debtors: Annotated[int, typer.Option(min=10, help="How many synthetic debtors.")] = 1000,
    workdir: Annotated[Path, typer.Option(help="Where logs and data of the run go.")] = Path(
        ".parley"
    ),
) -> None:
    """Run a sample campaign through the whole stack (broker and database from wheels),
    print what happened, stop everything and exit."""
    run_dir = _workdir(workdir, "demo")
    stack = LocalStack(run_dir, simulated_start=DEMO_START, progress=_say)
    _say(f"demo run: {debtors} debtors; logs in {run_dir / 'logs'}")
    _say(f"services run on a simulated clock starting {DEMO_START:%Y-%m-%d %H:%M} UTC")
    population = synthetic_debtors(debtors)
    ok = False
    try:
        stack.start()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            decided = progress.add_task("decisions", total=None)
            delivered = progress.add_task("deliveries", total=None)

            def watch(summary: DemoSummary) -> None:
                progress.update(decided, completed=summary.decided, total=summary.proposed)
                progress.update(delivered, completed=summary.delivered, total=summary.approved)

            summary = run_demo_sync(stack, population, watch)
        console.print(summary_table(summary))
        ok = summary.delivered == summary.approved and summary.decided == summary.proposed
    except LocalServiceError as error:
        error_console.print(f"[bold red]demo failed:[/bold red] {error}")
    finally:
        stack.stop(remove_data=ok)
    if not ok:
        raise typer.Exit(code=1)
    _say(f"[green]demo finished[/green] in {summary.seconds:.1f} s of pipeline time")
    if summary.dashboard is not None:
        _say(f"dashboard picture of the run: {summary.dashboard}")


def summary_table(summary: DemoSummary) -> Table:
    table = Table(title=f"Parley demo: {summary.debtors} debtors", show_lines=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    table.add_row("opt-outs recorded before the run", str(summary.opted_out))
    table.add_row("proposed", str(summary.proposed))
    table.add_row("approved", str(summary.approved))
    for rule, count in sorted(summary.vetoed_by_rule.items()):
        table.add_row(f"vetoed by {rule}", str(count))
    table.add_row("deferred", str(summary.deferred))
    for rule, count in sorted(summary.deferred_by_rule.items()):
        table.add_row(f"  deferred by {rule}", str(count))
    for (channel, status), count in sorted(summary.outcomes_by_channel.items()):
        table.add_row(f"{status} by {channel}", str(count))
    for provider, count in sorted(summary.at_stand_ins.items()):
        table.add_row(f"received by the {provider} stand-in", str(count))
    return table


@app.command()
def up(
    workdir: Annotated[Path, typer.Option(help="Where logs and data go.")] = Path(".parley"),
) -> None:
    """Start the whole stack on the real clock and keep it running until Ctrl-C."""
    run_dir = _workdir(workdir, "up")
    stack = LocalStack(run_dir, progress=_say)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        table = Table(title="Parley is running (Ctrl-C stops it)")
        table.add_column("part")
        table.add_column("address")
        table.add_row("Kafka broker", stack.broker.bootstrap_servers)
        table.add_row("PostgreSQL", stack.postgres.url())
        for service in stack.services:
            table.add_row(service.name, service.url)
        table.add_row("logs", str(stack.logs))
        console.print(table)
        while not stopping.wait(0.5):
            for service in stack.services:
                if service.exited():
                    raise LocalServiceError(
                        f"{service.name} stopped; see its log at {service.log_path}"
                    )
    except KeyboardInterrupt:
        _say("Ctrl-C: stopping")
    except LocalServiceError as error:
        error_console.print(f"[bold red]parley up failed:[/bold red] {error}")
        raise typer.Exit(code=1) from None
    finally:
        stack.stop()


@app.command()
def propose(
    campaign: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Campaign YAML.")],
    accounts: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Accounts CSV.")],
    scheduler_url: Annotated[
        str, typer.Option(envvar="PARLEY_SCHEDULER_URL", help="The scheduler's base URL.")
    ] = "http://127.0.0.1:8101",
) -> None:
    """Propose a campaign's first step for every account in the file (safe to repeat)."""
    response = httpx.post(
        scheduler_url.rstrip("/") + "/v1/campaign-runs",
        json={
            "campaign_yaml": campaign.read_text(encoding="utf-8"),
            "accounts_csv": accounts.read_text(encoding="utf-8"),
        },
        timeout=300.0,
    )
    if response.status_code == 422:
        for problem in response.json().get("detail", []):
            error_console.print(f"[red]{campaign}:[/red] {problem}")
        raise typer.Exit(code=2)
    response.raise_for_status()
    report = response.json()
    console.print(
        f"{report['campaign_id']} v{report['campaign_version']}: {report['planned']} planned, "
        f"{report['new']} new, {report['published']} published"
    )
    for row in report["rejected_rows"]:
        console.print(
            f"[yellow]{accounts}: row {row['row']}, {row['field']}: {row['reason']}[/yellow]"
        )
    for item in report["unreachable"]:
        console.print(f"[yellow]{item['debtor_id']}: {item['reason']}[/yellow]")
