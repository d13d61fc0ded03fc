"""``parley consent``: ask the consent service whether, why and when a debtor may be contacted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

DEFAULT_CONSENT_URL = "http://127.0.0.1:8102"

consent_app = typer.Typer(
    help="Ask the consent service: could we contact this debtor now, and if not, why and when?",
    no_args_is_help=True,
)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)

ConsentUrl = Annotated[
    str,
    typer.Option("--url", envvar="PARLEY_CONSENT_URL", help="Base URL of the consent service."),
]


def _fail(message: str, code: int) -> typer.Exit:
    _err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    return typer.Exit(code=code)


def _read_case(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise _fail(f"cannot read {source}: {error.strerror}", 2) from None
    try:
        case = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(f"{source} is not JSON: {error}", 2) from None
    if not isinstance(case, dict):
        raise _fail("case: a case must be a JSON object", 2)
    return case


def _evaluate_locally(case: dict[str, Any]) -> dict[str, Any]:
    # Imported here: only --local needs the consent service's package.
    try:
        from parley_consent.domain.evaluation import InvalidCase, evaluate_case
    except ImportError:
        raise _fail("--local needs the parley-consent package installed", 1) from None
    try:
        return evaluate_case(case)
    except InvalidCase as error:
        raise _fail(f"invalid case: {error}", 2) from None


def _evaluate_remotely(case: dict[str, Any], url: str) -> dict[str, Any]:
    try:
        response = httpx.post(f"{url.rstrip('/')}/v1/evaluate", json=case, timeout=30.0)
    except httpx.HTTPError as error:
        raise _fail(f"cannot reach the consent service at {url}: {error}", 1) from None
    if response.status_code == 422:
        raise _fail(f"invalid case: {response.json().get('detail')}", 2)
    if response.status_code != 200:
        raise _fail(f"the consent service answered {response.status_code}", 1)
    result: dict[str, Any] = response.json()
    return result


@consent_app.command()
def evaluate(
    case_file: Annotated[
        str, typer.Argument(metavar="CASE.json", help="The case as JSON; - reads standard input.")
    ],
    url: ConsentUrl = DEFAULT_CONSENT_URL,
    local: Annotated[
        bool,
        typer.Option(
            "--local", help="Decide in this process with the packaged rules; no service needed."
        ),
    ] = False,
) -> None:
    """Decide on one case (proposal, debtor state, history, now) and print the decision JSON."""
    case = _read_case(case_file)
    decision = _evaluate_locally(case) if local else _evaluate_remotely(case, url)
    print(json.dumps(decision, indent=2))


@consent_app.command()
def explain(
    debtor_id: Annotated[str, typer.Argument(help="The debtor to explain.")],
    url: ConsentUrl = DEFAULT_CONSENT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON instead.")] = False,
) -> None:
    """Show a debtor's opt-outs, holds, preferences and recent decisions with their reasons."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/v1/debtors/{debtor_id}", timeout=30.0)
    except httpx.HTTPError as error:
        raise _fail(f"cannot reach the consent service at {url}: {error}", 1) from None
    if response.status_code != 200:
        raise _fail(f"the consent service answered {response.status_code}", 1)
    overview: dict[str, Any] = response.json()
    if as_json:
        print(json.dumps(overview, indent=2))
        return
    _print_overview(overview)


def _print_overview(overview: dict[str, Any]) -> None:
    _out.print(f"[bold]Debtor {overview['debtor_id']}[/bold]", highlight=False)
    opt_outs = overview["opt_outs"]
    if opt_outs:
        for opt_out in opt_outs:
            scope = opt_out["address"] or "all addresses"
            medium = opt_out["channel"] or "every channel"
            _out.print(
                f"  opted out: {medium}, {scope}, since {opt_out['occurred_at']}", highlight=False
            )
    else:
        _out.print("  opted out: nothing")
    if overview["holds"]:
        for hold in overview["holds"]:
            state = "in force" if hold["active"] else "scheduled"
            until = hold["ends_at"] or "no end date"
            _out.print(f"  hold: {hold['kind']} ({state}) until {until}", highlight=False)
    else:
        _out.print("  holds: none")
    preferences = overview.get("preferences")
    if preferences:
        shown = ", ".join(f"{key} {value}" for key, value in preferences.items() if value)
        _out.print(f"  preferences: {shown or 'none'}", highlight=False)
    table = Table("decided at", "verdict", "rules and reasons", "defer until", "rules version")
    for decision in overview["decisions"]:
        reasons = "\n".join(
            f"{reason['rule_id']}: {reason['explanation']}" for reason in decision["reasons"]
        )
        table.add_row(
            decision["decided_at"],
            decision["verdict"],
            reasons,
            decision["defer_until"] or "",
            decision["rule_set_version"],
        )
    if overview["decisions"]:
        _out.print(table)
    else:
        _out.print("  decisions: none yet")
