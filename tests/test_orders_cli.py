"""Issue 23's events through the commands (items 1, 2, 5): `policy run` shows group
members, cancel and modify requests and balances in order and counts them; `policy report`
(with a what-if) builds its page from the same events. tests/data/orders_events.jsonl is
schema-checked with the other shipped events files (tests/test_events_schema.py)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import cli

DATA = Path(__file__).resolve().parent / "data"
POLICY, EVENTS = DATA / "orders_policy.yaml", DATA / "orders_events.jsonl"


def test_policy_run_shows_groups_requests_and_balances() -> None:
    out = CliRunner().invoke(cli, ["run", str(POLICY), str(EVENTS)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "#2 balance USD RECORDED free 1000000 locked 0" in lines
    assert "#4 group b1 APPROVED" in lines
    assert "#5 group b2 REJECTED by free-balance (member b2-entry)" in lines
    assert "#8 request_modify a REJECTED by modify-rate" in lines
    assert "#9 request_cancel b1-entry REJECTED by keep-btc" in lines
    assert "#11 cancel b1-entry CANCELLED released 200" in lines
    assert lines[-5:] == [
        "1 cancel: 1 cancelled",
        "2 cancel requests: 1 cancelled, 1 rejected",
        "3 modify requests: 2 modified, 1 rejected",
        "1 balance: 1 recorded",
        "2 order groups: 1 approved, 1 rejected",
    ]


def test_policy_report_builds_its_page_from_them(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    what_if = tmp_path / "looser.yaml"
    what_if.write_text(
        POLICY.read_text().replace("version: 1", "version: 2").split("  - id: keep-btc")[0]
    )
    args = ["report", str(POLICY), str(EVENTS), "-o", str(page), "--policy", str(what_if)]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert page.read_text().startswith("<!DOCTYPE html>")
