"""A journal written by an earlier release still replays, verifies and continues, byte for
byte: tests/fixtures/journals/chain-sha256.jsonl was written by the release before issue
18's journal work (70e890d, tests/fixtures/journals/write_journal.py) with its decision records
beside it. The chain format is SHA-256 (docs/operations.md says why it stayed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from policy_engine import PortfolioController, replay
from policy_engine.cli import cli
from policy_engine.control.chain import unseal
from policy_engine.control.events import IntentEvent, canonical
from policy_engine.control.fields import parse_intent
from policy_engine.control.journal import read_events
from policy_engine.control.lines import dumps_event, event_body
from policy_engine.control.verify import scan

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "journals"
JOURNAL = FIXTURES / "chain-sha256.jsonl"
RECORDS = FIXTURES / "chain-sha256.records.jsonl"


def _copy(tmp_path: Path) -> Path:
    path = tmp_path / "old.jsonl"
    shutil.copyfile(JOURNAL, path)
    return path


def test_an_earlier_releases_journal_replays_to_its_records_byte_for_byte() -> None:
    want = RECORDS.read_text().splitlines()
    assert len(want) > 40
    assert [canonical(r) for r in replay(JOURNAL)] == want


def test_an_earlier_releases_journal_verifies_with_its_checkpoints(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    result = CliRunner().invoke(cli, ["replay", str(path), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])["summary"]["journal"]
    assert summary["chained"] and summary["checkpoints"] >= 3
    assert scan(path).head == unseal(JOURNAL.read_bytes().splitlines(keepends=True)[-1])[1]


def test_a_tampered_line_of_an_earlier_releases_journal_is_caught(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    at = next(i for i, x in enumerate(lines) if b'"requested_risk_abs":' in x)
    lines[at] = lines[at].replace(b'"requested_risk_abs":', b'"requested_risk_abs":1', 1)
    path.write_bytes(b"".join(lines))
    result = CliRunner().invoke(cli, ["replay", str(path), "--verify"])
    assert result.exit_code == 1
    assert f"{path}:{at + 1}: the line does not match its chain value" in result.output


def test_an_earlier_releases_journal_is_continued_on_the_same_chain(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    with PortfolioController.recover(path, durability="off") as ctl:
        assert ctl.recovery is not None and ctl.recovery.checkpoint_line is not None
        last = json.loads(RECORDS.read_text().splitlines()[-1])
        decision = ctl.request_allocation(
            {
                "intent_id": "after-recovery",
                "strategy": "MOMENTUM",
                "symbol": "ETH-USD",
                "side": "long",
                "requested_risk_abs": 10,
                "timestamp": last["ts"],
            }
        )
        assert decision.intent_id == "after-recovery"
    assert scan(path).chained  # the old lines and the new ones: one unbroken chain
    replayed = [canonical(r) for r in replay(path)]
    assert replayed[:-1] == RECORDS.read_text().splitlines()
    assert json.loads(replayed[-1])["intent_id"] == "after-recovery"


def test_an_intent_line_is_written_as_the_earlier_release_wrote_it() -> None:
    """The intent's line now comes from its serializer straight to JSON: the same bytes."""
    bodies = [
        unseal(line)[0]
        for line in JOURNAL.read_bytes().splitlines(keepends=True)
        if line.startswith(b'{"type":"intent"')
    ]
    events = [e for e in read_events(JOURNAL) if e["type"] == "intent"]
    assert len(bodies) == len(events) > 40
    for body, event in zip(bodies, events, strict=True):
        typed = IntentEvent(parse_intent(event))
        assert event_body(typed) == dumps_event(typed.journal()) == body
