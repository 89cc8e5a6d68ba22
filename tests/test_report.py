"""`policy report`: what the day report counts agrees with `policy run` and `policy replay`,
reserved risk reconciles exactly, the page is deterministic, and the command fails clearly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from policy_engine import load_policy, load_policy_text
from policy_engine.cli import main
from policy_engine.control.replay import compare
from policy_engine.report import INSTALL_HINT, build_report
from policy_engine.report import charts as report_charts
from policy_engine.report.timeline import MAX_COHORTS, OTHER, Timeline, hottest, simulate

from support.hostile import DAY_POLICY, distinct_symbols
from support.report_content import content

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"
PROPOSED = ROOT / "examples" / "portfolio-v2.yaml"
EVENTS = ROOT / "examples" / "events.jsonl"


def events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EVENTS.read_text().splitlines() if line.strip()]


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def day() -> Timeline:
    policy = load_policy(PORTFOLIO)
    return simulate(policy, events(), cohorts=hottest(policy, events()))


def test_the_day_is_sampled_with_its_modes_and_caps(day: Timeline) -> None:
    assert day.events == 46 and len(day.decisions) == 22
    assert [s.mode for s in day.samples if s.mode != "normal"][:1] == ["defensive"]
    modes = [s.mode for s in day.samples]
    assert "risk_off" in modes and modes[-1] == "normal"
    # The cap follows equity and the mode: 6% of 100,000, then 6% x 0.5 of 94,000, then 0.
    caps = [dict(s.caps)["portfolio-heat"] for s in day.samples]
    assert caps[0] == pytest.approx(6000) and pytest.approx(2820) in caps and 0.0 in caps
    l1 = [dict((n, c) for n, _h, c in s.cohorts).get("L1") for s in day.samples]
    assert {c for c in l1 if c is not None} == {2500.0, 1250.0, 0.0}
    times = [s.at for s in day.samples]
    assert times == sorted(times)


def test_binding_rules_agree_with_policy_run(
    day: Timeline, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("run", str(PORTFOLIO), str(EVENTS), "--json") == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["summary"]
    clips = {rule: r.clips for rule, r in day.rules.items() if r.clips}
    rejects = {rule: r.rejects for rule, r in day.rules.items() if r.rejects}
    # `policy run` counts the clips of clipped approvals; the report counts every clip a rule
    # made, also one before a later rule rejected (btc-scalp-1: symbol-cap 600 -> 300, then
    # the cohort cap rejected it).
    assert clips == {**summary["clipped_by_rule"], "symbol-cap": 1}
    # Refusals before any rule ran are a row of their own, named by their code (`policy run`
    # counts them apart, as refused_by_code).
    assert rejects == {**summary["rejected_by_rule"], **summary["refused_by_code"]}
    assert day.rules["cohort-cap"].clipped == (500 + 350) * 10**6  # exact micro-units


def test_reserved_risk_reconciles_exactly(day: Timeline) -> None:
    totals = day.totals()
    assert totals["balance"] == 0
    assert totals["reserved"] == 10_680 * 10**6
    assert totals["late"] == 300 * 10**6  # sol-brk-1 filled after its reservation expired
    assert day.trades["sol-brk-1"].late == 300 * 10**6
    assert day.trades["avax-brk-2"].cancelled == 400 * 10**6
    assert totals["expired"] == (300 + 300 + 250 + 500 + 1500 + 530) * 10**6
    assert Counter(t.ended for t in day.trades.values())["cancelled"] == 1


def test_the_what_if_lists_what_policy_replay_lists(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    assert cli("run", str(PORTFOLIO), str(EVENTS), "--journal", str(journal)) == 0
    expected = [(d["intent_id"], d["new"]["decision_code"]) for d in compare(journal, PROPOSED)]
    assert len(expected) == 5
    html = build_report(load_policy(PORTFOLIO), events, what_if=load_policy(PROPOSED))
    assert "5 of 22 decisions would change" in html
    for intent_id, code in expected:
        assert f'<td class="l">{intent_id}</td>' in html
        assert code in html


def test_the_page_is_deterministic_and_escapes_names() -> None:
    odd = [*events(), {**events()[1], "intent_id": "<b>x</b>", "timestamp": "2026-03-02T14:45:00Z"}]
    one = build_report(load_policy(PORTFOLIO), lambda: odd)
    two = build_report(load_policy(PORTFOLIO), lambda: odd)
    assert one == two
    assert "<b>x</b>" not in one


def test_the_sample_day_says_what_it_said_before_the_charts_were_made_lean() -> None:
    """The example day with its what-if: the page apart from its charts, and every word and
    number each chart writes (titles, legend entries, tick labels, bar labels), are those
    of the report drawn before the charts were made cheaper (tests/fixtures/report/)."""
    expected = json.loads((ROOT / "tests" / "fixtures" / "report" / "day.content.json").read_text())
    html = build_report(
        load_policy(PORTFOLIO),
        events,
        what_if=load_policy(PROPOSED),
        sources="events.jsonl",
    )
    assert content(html) == expected


def test_a_long_day_is_thinned_to_its_peaks() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    n = report_charts.MAX_POINTS * 4 + 3
    times = [t0 + timedelta(seconds=i) for i in range(n)]
    values = [float(i % 97) for i in range(n)]
    values[1234] = 10_000.0  # a spike
    t, v = report_charts.thin(times, values)
    assert len(t) <= report_charts.MAX_POINTS and max(v) == 10_000.0


def test_policy_report_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert cli("report", str(PORTFOLIO), str(EVENTS), "-o", str(out)) == 0
    assert capsys.readouterr().out.startswith(f"report written to {out}")
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 4


def test_policy_report_refuses_a_broken_events_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "intent"\n')
    assert cli("report", str(PORTFOLIO), str(bad), "-o", str(tmp_path / "r.html")) == 2
    assert not (tmp_path / "r.html").exists()


def test_policy_report_without_matplotlib_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    assert cli("report", str(PORTFOLIO), str(EVENTS), "-o", str(tmp_path / "r.html")) == 2
    assert INSTALL_HINT in capsys.readouterr().err


def test_a_day_of_two_thousand_cohorts_is_drawn_in_bounded_work_per_event() -> None:
    """2,000 cohorts holding risk at once: each sample holds the MAX_COHORTS hottest and one
    sum of the rest (before: every cohort after every event, quadratic: 24 s, 389 MB), the
    sum is exact, and the page says what it summed."""
    policy = load_policy_text(DAY_POLICY)
    events = distinct_symbols(0, None, live=2_000)
    drawn = hottest(policy, events)
    assert drawn.seen == 2_000 and len(drawn.names) == MAX_COHORTS
    day = simulate(policy, events, cohorts=drawn)
    assert len(day.samples) >= 2_000
    assert all(len(s.cohorts) == MAX_COHORTS + 1 for s in day.samples)
    last = dict((n, h) for n, h, _c in day.samples[-1].cohorts)
    assert last[OTHER] == 1_992 * 10**6  # 1 of risk in each of the other cohorts, exact
    html = build_report(policy, lambda: events)
    assert "the other 1,992 of the 2,000 cohorts that held risk are summed" in html
