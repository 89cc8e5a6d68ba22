"""Recovery: a controller killed mid-stream (SIGKILL) is rebuilt from its journal with
exactly the state it had, continues the same journal, and the whole journal then replays
cleanly across the crash; checkpoints are used, and checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine import PortfolioController, replay
from policy_engine.cli import cli
from policy_engine.control import snapshot as snapshots
from policy_engine.control.chain import GENESIS, seal, unseal
from policy_engine.control.events import EventError, canonical
from policy_engine.control.journal import read_events
from policy_engine.control.verify import JournalIntegrityError, repair, scan

from support.workload import drive, policy_versions

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
STEPS = 2_500


class _Enough(Exception):
    pass


def reference(files: list[Path], events: int) -> tuple[PortfolioController, list[Any], int]:
    """A live controller driven through the same workload until its journal holds
    ``events`` events: (controller, its records, the last step it took)."""
    memory: list[dict[str, Any]] = []
    records: list[Any] = []
    ctl = PortfolioController(files[0], equity=100_000, journal=memory, records=records)
    last = [-1]

    def after(k: int) -> None:
        last[0] = k
        if len(memory) >= events:
            raise _Enough

    if len(memory) < events:
        with pytest.raises(_Enough):
            drive(ctl, STEPS, files, after=after)
    assert len(memory) == events
    return ctl, records, last[0]


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support.workload import drive, policy_versions
    from policy_engine import PortfolioController
    files = policy_versions(Path(sys.argv[1]))
    ctl = PortfolioController(files[0], equity=100_000, journal=sys.argv[2],
                              checkpoint_every=int(sys.argv[3]), durability=sys.argv[4])
    drive(ctl, {steps}, files, after=lambda k: print(k, flush=True))
    print("done", flush=True)
    """
)


def crash(tmp_path: Path, at_step: int, every: int, durability: str = "event") -> Path:
    """Run the workload in a child process and SIGKILL it once it passed ``at_step``."""
    journal = tmp_path / "journal.jsonl"
    script = CHILD.format(tests=str(TESTS), steps=STEPS)
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path), str(journal), str(every), durability],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == "done" or int(line) >= at_step:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return journal


@pytest.mark.parametrize("durability", ["event", "off"])
def test_recover_after_sigkill_equals_the_state_before_the_crash_and_continues(
    tmp_path: Path, durability: str
) -> None:
    files = policy_versions(tmp_path)
    journal = crash(tmp_path, 1_200, 300, durability)
    if scan(journal).torn:  # a kill in the middle of a write: dropped explicitly
        repair(journal)
    found = scan(journal)
    assert found.events > 600 and len(found.checkpoints) >= 2

    ctl = PortfolioController.recover(journal)
    report = ctl.recovery
    assert report is not None and report.events == found.events
    assert report.checkpoint_line == found.checkpoints[-1].line
    assert report.replayed == found.events - found.checkpoints[-1].events <= 300

    ref, ref_records, last = reference(files, found.events)
    assert canonical(ctl.core.snapshot()) == canonical(ref.core.snapshot())
    assert ctl.get_portfolio_state() == ref.get_portfolio_state()

    # A recovered controller closes like any other (a final checkpoint): recovering again
    # replays nothing. Then both continue with the rest of the workload, side by side.
    ctl.close()
    continued: list[Any] = []
    ctl = PortfolioController.recover(journal, records=continued)
    assert ctl.recovery is not None and ctl.recovery.replayed == 0
    mark = len(ref_records)
    drive(ctl, STEPS, files, skip=last + 1)
    ctl.close()
    drive(ref, STEPS, files, skip=last + 1)
    assert len(continued) > 300
    assert [canonical(r) for r in continued] == [canonical(r) for r in ref_records[mark:]]

    # The whole journal, across the crash, replays to the reference's records, and verifies.
    everything = [canonical(r) for r in ref_records if r.get("seq") is not None]
    assert [canonical(r) for r in replay(journal, lifecycle=True)] == everything
    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 0, result.output
    assert "chain verified" in result.output


def closed_journal(tmp_path: Path, steps: int = 900, every: int = 200) -> tuple[Path, list[Path]]:
    files = policy_versions(tmp_path)
    journal = tmp_path / "journal.jsonl"
    with PortfolioController(
        files[0], equity=100_000, journal=journal, durability="off", checkpoint_every=every
    ) as ctl:
        drive(ctl, steps, files)
    return journal, files


def reseal(lines: list[bytes], start: int) -> list[bytes]:
    """Recompute the chain from line ``start`` on (what a forger with the file would do)."""
    out = lines[:start]
    prev = unseal(lines[start - 1])[1] if start else GENESIS
    for line in lines[start:]:
        body = unseal(line)[0]
        assert prev is not None
        sealed, prev = seal(body, prev)
        out.append(sealed)
    return out


def test_a_tampered_checkpoint_is_refused(tmp_path: Path) -> None:
    """Recovery restores the last checkpoint only if the chain covers it and it sits where
    its event count says; `replay --verify` also re-derives it from the events, which
    catches a checkpoint rewritten with a recomputed chain."""
    journal, _files = closed_journal(tmp_path)
    lines = journal.read_bytes().splitlines(keepends=True)
    found = scan(journal)
    cp = found.checkpoints[-2]  # not the closing one: recovery must use the last one
    held = json.loads(unseal(lines[cp.line - 1])[0])
    snap = held["snapshot"]
    assert snap["trades"], "the workload leaves live trades at this checkpoint"
    snap["trades"][0][4] += 1_000_000  # one more unit of approved risk on a live trade
    snap["trades"][0][5] += 1_000_000
    side = 4 if snap["trades"][0][14] == "long" else 5  # the side's heat moves with it
    snap["portfolio"][1] += 1_000_000
    snap["portfolio"][side] += 1_000_000
    for section, name in (("strategies", 1), ("symbols", 2), ("cohorts", 3)):
        for row in snap[section]:
            if row[0] == snap["trades"][0][name]:
                row[2] += 1_000_000
                row[1 + side] += 1_000_000
    body = json.dumps(held, separators=(",", ":"), ensure_ascii=False).encode()
    # Keep the old chain value: the chain breaks at the checkpoint.
    old_chain = unseal(lines[cp.line - 1])[1]
    edited = [*lines]
    edited[cp.line - 1] = body[:-1] + b',"chain":"' + str(old_chain).encode() + b'"}\n'
    # ... and drop the closing checkpoint so the tampered one is the last.
    journal.write_bytes(b"".join(edited[:-1]))
    with pytest.raises(JournalIntegrityError, match="does not match its chain value"):
        PortfolioController.recover(journal)
    # With the chain recomputed, recovery cannot tell (the head moved: see operations.md),
    # but verification replays the events and refuses the checkpoint.
    journal.write_bytes(b"".join(reseal(edited[:-1], cp.line - 1)))
    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 1
    assert f"{journal}:{cp.line}: the checkpoint does not equal the state" in result.output
    # A checkpoint moved to the wrong place (one event later) is refused by recovery.
    moved = [*lines[: cp.line - 1], lines[cp.line], lines[cp.line - 1], *lines[cp.line + 1 : -1]]
    journal.write_bytes(b"".join(reseal(moved, cp.line - 1)))
    with pytest.raises(JournalIntegrityError, match="events precede it, the journal has"):
        PortfolioController.recover(journal)


def _sealable(event: dict[str, Any]) -> bytes:
    """A journal line for ``event`` with a placeholder chain value (for :func:`reseal`)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return body[:-1] + b',"chain":"' + b"0" * 64 + b'"}\n'


def test_an_older_versions_checkpoints_are_passed_over_and_the_events_replayed(
    tmp_path: Path,
) -> None:
    """A journal written by an older version holds checkpoints in a snapshot format this
    version no longer restores: the events are the record, so recovery goes back to the
    last checkpoint it can restore (or the start); `replay --verify` cannot check them, so
    verification fails (it never passes a checkpoint over). A format it does not know at all
    is still refused."""
    journal, _files = closed_journal(tmp_path)
    reference = PortfolioController.recover(journal)
    expected = reference.core.snapshot()
    reference.close()
    lines = journal.read_bytes().splitlines(keepends=True)
    found = scan(journal)
    older = [*lines]
    for cp in found.checkpoints[-2:]:
        held = json.loads(unseal(lines[cp.line - 1])[0])
        held["snapshot"] = {"format": "policy-engine/core-snapshot/3", "seq": held["seq"]}
        older[cp.line - 1] = _sealable(held)
    first = found.checkpoints[-2].line
    journal.write_bytes(b"".join(reseal(older, first - 1)))

    ctl = PortfolioController.recover(journal)
    assert ctl.recovery is not None
    assert ctl.recovery.checkpoint_line == found.checkpoints[-3].line
    assert canonical(ctl.core.snapshot()) == canonical(expected)
    ctl.close()

    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 1, result.output
    assert "core-snapshot/3 is older than this version restores" in result.output
    assert "has no migration" in result.output

    future = [*lines]
    held = json.loads(unseal(lines[first - 1])[0])
    held["snapshot"]["format"] = "policy-engine/core-snapshot/999"
    future[first - 1] = _sealable(held)
    journal.write_bytes(b"".join(reseal(future[:-1], first - 1)))
    with pytest.raises(JournalIntegrityError, match="expected format"):
        PortfolioController.recover(journal)


def test_recovery_equals_a_full_replay_and_takes_a_new_policy_as_a_reload(
    tmp_path: Path,
) -> None:
    journal, files = closed_journal(tmp_path, steps=700, every=150)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))  # as if it crashed before closing
    found = scan(journal)
    ctl = PortfolioController.recover(journal)
    assert ctl.recovery is not None and 0 < ctl.recovery.replayed <= 150
    ref, _records, _last = reference(files, found.events)
    assert canonical(ctl.core.snapshot()) == canonical(ref.core.snapshot())
    in_force = ctl.policy
    ctl.close()
    events = len(list(read_events(journal)))
    same = PortfolioController.recover(journal, in_force)  # the policy in force: no event
    same.close()
    assert len(list(read_events(journal))) == events
    # A lower version is refused (the rules of a reload), nothing is journaled ...
    older = PortfolioController.recover(journal, files[0])
    assert older.policy.content_hash == in_force.content_hash
    older.close()
    # ... a higher one is put in force and journaled like a reload.
    v3 = tmp_path / "portfolio_v3.yaml"
    v3.write_text(files[1].read_text().replace("version: 2", "version: 3"))
    newer = PortfolioController.recover(journal, v3)
    assert newer.policy.version == 3
    newer.close()
    after = list(read_events(journal))
    assert after[-1]["type"] == "policy" and after[-1]["version"] == 3
    assert len(after) == events + 1


def test_an_empty_or_unchained_journal_is_not_recovered(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    with pytest.raises(EventError, match="holds no event"):
        PortfolioController.recover(empty)
    journal, _files = closed_journal(tmp_path, steps=50)
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(e) + "\n" for e in read_events(journal)))
    with pytest.raises(EventError, match="unchained"):
        PortfolioController.recover(old)


def test_policy_recover_prints_the_state_and_continues_the_journal(tmp_path: Path) -> None:
    journal, files = closed_journal(tmp_path, steps=300, every=100)
    before = scan(journal)
    runner = CliRunner()
    out = runner.invoke(cli, ["recover", str(journal)])
    assert out.exit_code == 0, out.output
    first, second = out.output.splitlines()[:2]
    assert first.startswith(f"recovered {journal}: {before.events} events (checkpoint at line")
    assert f"head {before.head}" in first
    assert second.startswith("state: policy portfolio-default v")
    assert scan(journal).events == before.events  # recovering alone writes no event
    events = ROOT / "examples" / "events.jsonl"
    more = runner.invoke(cli, ["recover", str(journal), "--events", str(events), "--fsync", "off"])
    assert more.exit_code == 0, more.output
    assert more.output.splitlines()[-1] == f"journal continued: {journal}"
    after = scan(journal)
    # every event the controller accepted (refusals are answered, never journaled)
    assert before.events < after.events <= before.events + len(list(read_events(events)))
    verified = runner.invoke(cli, ["replay", str(journal), "--verify"])
    assert verified.exit_code == 0, verified.output
    # A policy that a reload would refuse (changed content, no higher version) is refused.
    same_version = tmp_path / "same_version.yaml"
    same_version.write_text(files[0].read_text().replace("max_positions: 5", "max_positions: 6"))
    refused = runner.invoke(cli, ["recover", str(journal), "--policy", str(same_version)])
    assert refused.exit_code == 1
    assert "was not put in force" in refused.output and "higher version" in refused.output
    assert scan(journal).events == after.events
    lines = journal.read_bytes()
    journal.write_bytes(lines[:-7])
    torn = runner.invoke(cli, ["recover", str(journal)])
    assert torn.exit_code == 1
    assert "policy journal repair" in torn.output and "not recovered" in torn.output
    assert journal.read_bytes() == lines[:-7]


def _relabelled(
    tmp_path: Path, forge: int, version: int = snapshots.FORMAT_VERSION - 1
) -> tuple[Path, int]:
    """The closed journal with its last checkpoint's equity moved by ``forge`` and its format
    relabelled as ``version`` (the previous one), the chain re-sealed (what an attacker can
    do)."""
    tmp_path = tmp_path / f"format-{version}"
    tmp_path.mkdir()
    journal, _files = closed_journal(tmp_path)
    lines = journal.read_bytes().splitlines(keepends=True)
    cp = scan(journal).checkpoints[-1]
    held = json.loads(unseal(lines[cp.line - 1])[0])
    held["snapshot"]["equity"] += forge
    held["snapshot"]["format"] = f"{snapshots.FORMAT_PREFIX}{version}"
    lines[cp.line - 1] = _sealable(held)
    journal.write_bytes(b"".join(reseal(lines, cp.line - 1)))
    return journal, cp.line


def test_a_forged_checkpoint_relabelled_as_an_older_format_fails_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relabelling a forged checkpoint as an older format no longer hides it: without a
    migration verification fails; with one, the migrated checkpoint is compared like any."""
    journal, line = _relabelled(tmp_path, 1_000_000, snapshots.OLDEST_FORMAT - 1)
    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 1, result.output
    assert "has no migration" in result.output
    journal, line = _relabelled(tmp_path, 1_000_000)

    def relabel(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "format": snapshots.FORMAT}

    monkeypatch.setitem(snapshots.MIGRATIONS, snapshots.FORMAT_VERSION - 1, relabel)
    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 1, result.output
    assert f"{journal}:{line}: the checkpoint does not equal the state" in result.output


def test_an_honest_checkpoint_in_an_older_format_is_migrated_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def relabel(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "format": snapshots.FORMAT}

    monkeypatch.setitem(snapshots.MIGRATIONS, snapshots.FORMAT_VERSION - 1, relabel)
    journal, _line = _relabelled(tmp_path, 0)
    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 0, result.output
    assert "checkpoints equal to the replayed state" in result.output


def test_a_checkpoint_whose_policy_does_not_load_fails_verification(tmp_path: Path) -> None:
    """A checkpoint holding a policy text that does not load is a verification failure
    (exit 1), not a usage error (exit 2)."""
    journal, _files = closed_journal(tmp_path)
    lines = journal.read_bytes().splitlines(keepends=True)
    cp = scan(journal).checkpoints[-1]
    held = json.loads(unseal(lines[cp.line - 1])[0])
    held["snapshot"]["policy"]["source"] = "rules: [\n"
    lines[cp.line - 1] = _sealable(held)
    journal.write_bytes(b"".join(reseal(lines, cp.line - 1)))
    result = CliRunner().invoke(cli, ["replay", str(journal), "--verify"])
    assert result.exit_code == 1, result.output
    assert "the checkpoint is refused: the snapshot's policy does not load" in result.output
