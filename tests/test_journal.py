"""The JSON Lines journal and replay: record-for-record, byte-for-byte reproduction,
what-if runs with another policy, streaming reads and hash-seed independence."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from policy_engine import PortfolioController, load_policy, replay
from policy_engine.control.events import EventError, canonical
from policy_engine.control.journal import journal_schema, read_events
from policy_engine.control.replay import compare, compare_runs

from support.workload import drive, policy_versions

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"
EXAMPLE = ROOT / "examples" / "events.jsonl"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def policy_files(tmp_path: Path) -> list[Path]:
    return policy_versions(tmp_path)


def test_replay_reproduces_a_long_generated_journal_byte_for_byte(
    tmp_path: Path, policy_files: list[Path]
) -> None:
    """3,000 mixed events (with reloads, a refused reload, invalid intents, mode changes,
    expiries): replay yields the same decision and lifecycle records, byte for byte."""
    journal = tmp_path / "run.jsonl"
    records: list[dict[str, Any]] = []
    with PortfolioController(
        policy_files[0], equity=100_000, journal=journal, records=records
    ) as ctl:
        drive(ctl, 3_000, policy_files)
    # What was refused (invalid intents, no-op fills) was answered but never journaled:
    # its record has no sequence number, and replay does not produce it.
    refused = [r for r in records if r.get("seq", 0) is None]
    assert any(r.get("decision_code") == "rejected_invalid_intent" for r in refused)
    decisions = [canonical(r) for r in records if r["kind"] == "decision" and r["seq"] is not None]
    assert len(decisions) > 1_000
    codes = {json.loads(d)["decision_code"] for d in decisions}
    assert {"approved_full", "approved_clipped"} <= codes
    assert len(codes) >= 6
    replayed = [canonical(r) for r in replay(journal)]
    assert replayed == decisions
    # The lifecycle records too (a refused reload is not an input event: it has no seq).
    all_original = [canonical(r) for r in records if r.get("seq") is not None]
    all_replayed = [canonical(r) for r in replay(journal, lifecycle=True)]
    assert all_replayed == all_original
    kinds = {json.loads(r)["kind"] for r in all_original}
    assert {"decision", "fill", "close", "cancel", "expire", "equity", "mode", "reload"} <= kinds
    assert list(compare(journal)) == []


def test_journal_lines_follow_the_schema(tmp_path: Path, policy_files: list[Path]) -> None:
    """Every journal line validates against schemas/journal.schema.json (2020-12)."""
    journal = tmp_path / "run.jsonl"
    with PortfolioController(policy_files[0], equity=100_000, journal=journal) as ctl:
        drive(ctl, 600, policy_files)
    schema = journal_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    types = set()
    for event in read_events(journal):
        errors = list(validator.iter_errors(event))
        assert not errors, (event, errors[0].message)
        types.add(event["type"])
    assert types == {"policy", "intent", "fill", "cancel", "close", "equity", "mode", "tick"}
    for event in read_events(EXAMPLE):
        assert validator.is_valid(event), event
    bad = {"type": "equity", "equity": -5}
    assert not validator.is_valid(bad)


def test_in_memory_journal_equals_the_file_journal(
    tmp_path: Path, policy_files: list[Path]
) -> None:
    """`journal=[]` collects exactly the events a file journal would hold; journaling is
    off by default."""
    path = tmp_path / "run.jsonl"
    memory: list[dict[str, Any]] = []
    with PortfolioController(policy_files[0], equity=100_000, journal=path) as a:
        drive(a, 400, policy_files)
    with PortfolioController(policy_files[0], equity=100_000, journal=memory) as b:
        drive(b, 400, policy_files)
    assert list(read_events(path)) == memory
    assert [canonical(r) for r in replay(memory)] == [canonical(r) for r in replay(path)]
    assert PortfolioController(PORTFOLIO).journal is None


def test_replay_uses_the_journaled_policy_text_even_after_the_file_changed(
    tmp_path: Path,
) -> None:
    """The policy event carries the YAML and its hash, so editing the file afterwards
    does not change what replay decides; a tampered source is refused."""
    path = tmp_path / "limits.yaml"
    text = (ROOT / "policies" / "strategy_limits.yaml").read_text()
    path.write_text(text)
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = PortfolioController(path, equity=1_000, journal=journal, records=records)
    for k in range(4):
        ctl.request_allocation(
            {
                "intent_id": f"s{k}",
                "strategy": "SCALPER",
                "symbol": "BTC-USD",
                "side": "long",
                "requested_risk_abs": 1,
                "timestamp": T0.isoformat(),
            }
        )
    path.write_text(text.replace("SCALPER: {enabled: true", "SCALPER: {enabled: false"))
    decisions = [canonical(r) for r in records if r["kind"] == "decision"]
    assert len(decisions) == 4
    assert [canonical(r) for r in replay(journal)] == decisions
    tampered = [dict(journal[0], source=journal[0]["source"] + "\n# edited\n"), *journal[1:]]
    with pytest.raises(EventError, match="content hash"):
        list(replay(tampered))


def test_what_if_replay_reports_each_changed_decision() -> None:
    """Replaying the bundled stream under a stricter policy is a what-if: `compare`
    yields, per intent, the old and the new code, approved amount and rule."""
    base = load_policy(PORTFOLIO)
    stricter_text = PORTFOLIO.read_text().replace("cohort_cap: 2_500", "cohort_cap: 1_000")
    stricter_path = ROOT / "tests" / "policies" / "portfolio_strict_cohort.yaml"
    assert stricter_path.read_text() == stricter_text
    diffs = list(compare(EXAMPLE, stricter_path, base=base))
    assert diffs
    first = diffs[0]
    assert first["intent_id"] == "btc-mom-1"
    assert first["old"] == {
        "decision_code": "approved_full",
        "approved": True,
        "approved_risk_abs": 1200.0,
        "rule_id": None,
    }
    assert first["new"] == {
        "decision_code": "approved_clipped",
        "approved": True,
        "approved_risk_abs": 1000.0,
        "rule_id": "cohort-cap",
    }
    second = diffs[1]
    assert second["intent_id"] == "eth-brk-1"
    assert second["new"]["decision_code"] == "rejected_cohort_cap"
    assert second["new"]["approved_risk_abs"] == 0.0
    assert second["new_reasons"][0].startswith("cohort-cap: cohort L1 risk capped at 1000")
    # Same result from two explicit record streams.
    old = replay(EXAMPLE, base)
    new = replay(EXAMPLE, stricter_path)
    assert list(compare_runs(old, new)) == diffs
    assert list(compare(EXAMPLE, base, base=base)) == []


def test_read_events_streams_and_reports_bad_lines(tmp_path: Path) -> None:
    """`read_events` is a generator (constant memory), skips blank lines and names the
    line of malformed JSON; a journal without a policy event needs `policy=`."""
    assert inspect.isgeneratorfunction(read_events)
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "tick", "timestamp": "2026-01-01T00:00:00Z"}\n\n[1]\n')
    events = read_events(path)
    assert next(events)["type"] == "tick"
    with pytest.raises(EventError, match=r"events.jsonl:3: an event must be a JSON object"):
        next(events)
    path.write_text('{"type": "tick"\n')
    with pytest.raises(EventError, match=r":1: not valid JSON"):
        list(read_events(path))
    with pytest.raises(EventError, match="policy="):
        list(replay(EXAMPLE))


def _digest_script() -> str:
    return (
        "import hashlib, sys\n"
        "from policy_engine import PortfolioController, replay\n"
        "from policy_engine.control.events import canonical\n"
        "from policy_engine.control.journal import read_events\n"
        "recs = []\n"
        "journal = []\n"
        f"ctl = PortfolioController({str(PORTFOLIO)!r}, records=recs, journal=journal)\n"
        f"for e in read_events({str(EXAMPLE)!r}):\n"
        "    ctl.apply(e)\n"
        "h = hashlib.sha256()\n"
        "for r in recs:\n"
        "    h.update(canonical(r).encode())\n"
        "for r in replay(journal, lifecycle=True):\n"
        "    h.update(canonical(r).encode())\n"
        "print(h.hexdigest())\n"
    )


def test_decisions_do_not_depend_on_the_hash_seed() -> None:
    """The same events give the same records under different PYTHONHASHSEED values
    (separate interpreter processes), and the same as in this process."""
    digests = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _digest_script()],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    recs: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(PORTFOLIO, records=recs, journal=journal)
    for e in read_events(EXAMPLE):
        ctl.apply(e)
    h = hashlib.sha256()
    for r in recs:
        h.update(canonical(r).encode())
    for r in replay(journal, lifecycle=True):
        h.update(canonical(r).encode())
    assert digests == {h.hexdigest()}


def test_garbage_intents_are_refused_never_journaled_and_replay_stays_clean() -> None:
    """A caller's unserialisable bad intent is rejected but never journaled (refused input
    leaves the journal untouched, so it can never make it unreplayable); a policy without
    a TTL never expires reservations."""
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = PortfolioController(
        ROOT / "policies" / "strategy_limits.yaml",
        journal=journal,
        records=records,
        clock=None,  # a simulation: the year-long tick below is not refused as too far ahead
    )
    opening = len(journal)
    ctl.request_allocation({"intent_id": "g1", "strategy": {1, 2}, 3: "x"})  # type: ignore[dict-item]
    ctl.request_allocation({"intent_id": "g2", "strategy": object()})
    assert len(journal) == opening
    ok = {
        "intent_id": "ok",
        "strategy": "SCALPER",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": 5,
        "timestamp": T0,
    }
    assert ctl.request_allocation(ok).approved
    ctl.advance_time(T0 + timedelta(days=365))
    assert ctl.get_portfolio_state()["totals"]["reserved_risk"] == 5.0
    decisions = [r for r in records if r["kind"] == "decision"]
    assert [(d["decision_code"], d["seq"]) for d in decisions] == [
        ("rejected_invalid_intent", None),
        ("rejected_invalid_intent", None),
        ("approved_full", 2),
    ]
    replayed = [canonical(r) for r in replay(journal)]
    assert replayed == [canonical(decisions[2])]


def test_the_replay_step_equals_apply_for_dicts_typed_events_and_non_events() -> None:
    """`ControlCore.replayer` (the replay's and recovery's step, its options fixed once)
    takes what `apply` takes: an event dict, a typed event; anything else is refused."""
    from policy_engine.control.core import ControlCore

    events: list[dict[str, Any]] = [
        {"type": "equity", "equity": 100_000, "timestamp": T0.isoformat()},
        {
            "type": "intent",
            "intent_id": "a",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 300.0,
            "timestamp": T0.isoformat(),
        },
        {"type": "cancel", "intent_id": "a", "timestamp": T0.isoformat()},
    ]
    policy = load_policy(PORTFOLIO)
    applied, stepped, typed = ControlCore(policy), ControlCore(policy), ControlCore(policy)
    step, typed_step = stepped.replayer(), typed.replayer()
    for event in events:
        want = [canonical(r) for r in applied.apply(event).records]
        assert [canonical(r) for r in step(event).records] == want
        assert [canonical(r) for r in typed_step(typed.parse(event)).records] == want
    assert canonical(stepped.snapshot()) == canonical(applied.snapshot())
    with pytest.raises(EventError, match="not an event"):
        step(42)  # type: ignore[arg-type]
