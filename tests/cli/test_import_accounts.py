"""``parley campaign import-accounts``: a file sent in parts keeps its row numbers, every bad
row is reported, and importing the same file again changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from parley_cli.main import app
from parley_scheduler.bootstrap import create_app
from parley_shared.settings import KafkaSettings
from typer.testing import CliRunner

from tests.scheduler.conftest import OPERATOR_KEY, ManualClock, settings_for
from tests.scheduler.samples import HEADER
from tests.support.apps import serve_http


def _accounts(path: Path, count: int, bad_row: int) -> None:
    lines = [HEADER]
    for index in range(count):
        phone = "12" if index + 2 == bad_row else f"+1212555{index:04d}"
        lines.append(
            f"acct-{index},Name {index},{phone},,America/New_York,US,NY,en,10.00,40,false,"
            f"form-{index},2026-01-05,2026-11-20,,Northwind,R{index}\n"
        )
    # A quoted field with a comma and a line break must not split a record across parts.
    lines.append(
        'acct-quoted,"Example, ""Jo""\nSecond line",+12125559999,,America/New_York,US,NY,en,'
        "1.00,40,false,form-q,2026-01-05,2026-11-20,,Northwind,RQ\n"
    )
    path.write_text("".join(lines))


async def test_a_large_file_is_imported_in_parts_with_exact_row_numbers_and_idempotently(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.csv"
    _accounts(accounts, count=250, bad_row=180)
    app_under_test = create_app(settings_for(kafka_settings, database_url), clock=ManualClock())
    async with serve_http(app_under_test) as url:
        arguments = [
            "campaign",
            "import-accounts",
            str(accounts),
            "--scheduler-url",
            url,
            "--api-key",
            OPERATOR_KEY,
            "--rows-per-part",
            "100",
        ]
        runner = CliRunner()
        first = await asyncio.to_thread(runner.invoke, app, arguments, env={"COLUMNS": "200"})
        again = await asyncio.to_thread(runner.invoke, app, arguments, env={"COLUMNS": "200"})
        denied = await asyncio.to_thread(
            runner.invoke, app, [*arguments[:-4], "--api-key", "wrong"], env={"COLUMNS": "200"}
        )
    assert first.exit_code == 0, first.output
    assert "251 rows: 250 new, 0 changed, 0 unchanged, 1 rejected" in first.output
    assert "row 180, phone: not a valid phone number" in first.output
    assert "251 rows: 0 new, 0 changed, 250 unchanged, 1 rejected" in again.output
    assert denied.exit_code == 1 and "401" in denied.output
