"""Group commit with durability ``event`` (issue 18): threads deciding together share one
``fdatasync``, and still no call returns before its journal line is on disk; the lines are
in the order the core applied them. The sync is injected (``JournalWriter(fsync=...)``) to
record how far the file was on disk when each call returned; no timing is involved."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine import PortfolioController, PortfolioIntent
from policy_engine.cli import cli
from policy_engine.control.durable import GroupSync
from policy_engine.control.journal import JournalWriteError, JournalWriter
from policy_engine.control.replay import replay
from policy_engine.control.verify import scan

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def intent(thread: int, n: int) -> PortfolioIntent:
    return PortfolioIntent(
        intent_id=f"t{thread}-{n}",
        strategy=("SCALPER", "MOMENTUM")[thread % 2],
        symbol=("BTC-USD", "ETH-USD", "SOL-USD")[n % 3],
        side="long",
        requested_risk_abs=50 + n,
        timestamp=T0 + timedelta(seconds=n),
    )


class Disk:
    """An fsync that records how many bytes of the file were on disk once it returned."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.synced = 0
        self.syncs = 0

    def __call__(self, fd: int) -> None:
        size = os.fstat(fd).st_size  # everything written before the sync started
        os.fdatasync(fd)
        with self.lock:
            self.synced = max(self.synced, size)
            self.syncs += 1


@pytest.mark.parametrize("every", [7, None])
def test_no_decision_returns_before_its_line_is_on_disk(tmp_path: Path, every: int | None) -> None:
    path = tmp_path / "j.jsonl"
    disk = Disk()
    # A checkpoint every 7 lines: many are in flight while threads decide (each wakes every
    # waiter when its line is written); without checkpoints only the syncs wake waiters.
    writer = JournalWriter(path, durability="event", fsync=disk, checkpoint_every=every)
    seen: dict[str, int] = {}
    records: dict[str, dict[str, Any]] = {}
    with PortfolioController(PORTFOLIO, equity=100_000, journal=writer) as ctl:

        def decide(thread: int) -> None:
            for n in range(20):
                decision, record = ctl.decide(intent(thread, n))
                seen[decision.intent_id] = disk.synced  # on disk when the call returned
                records[decision.intent_id] = record

        threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert writer.unsynced == 0
    ends: dict[str, int] = {}
    offset = 0
    for line in path.read_bytes().splitlines(keepends=True):
        offset += len(line)
        if line.startswith(b'{"type":"intent"'):
            iid = line.split(b'"intent_id":"', 1)[1].split(b'"', 1)[0].decode()
            ends[iid] = offset
    assert len(ends) == len(seen) == 160
    late = [iid for iid, end in ends.items() if end > seen[iid]]
    assert late == []
    assert disk.syncs <= 160 + 2  # never more than one per line (the opening lines too)
    # The lines are in the order of application: replay decides each intent as live did.
    replayed = {r["intent_id"]: r for r in replay(path)}
    assert replayed == records
    # Every checkpoint sits where its snapshot was taken and equals the state replayed there.
    result = CliRunner().invoke(cli, ["replay", str(path), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    checkpoints = json.loads(result.output.splitlines()[-1])["summary"]["journal"]["checkpoints"]
    assert checkpoints > 20 if every else checkpoints == 1  # (the one written on close)


class Blocker:
    """A value in a snapshot whose serialisation waits until the test lets it go."""

    def __init__(self) -> None:
        self.entered, self.go = threading.Event(), threading.Event()

    def __repr__(self) -> str:  # what the journal's encoder falls back to
        self.entered.set()
        self.go.wait()
        return "'probe'"


def test_a_checkpoint_being_written_does_not_hold_decisions(tmp_path: Path) -> None:
    """The snapshot is taken in order; its line is serialised and written by a thread of
    its own: decisions are made and returned meanwhile, and their lines follow it."""
    path = tmp_path / "j.jsonl"
    writer = JournalWriter(path, durability="off", checkpoint_every=4)
    ctl = PortfolioController(PORTFOLIO, equity=100_000, journal=writer)
    probe = Blocker()
    writer.bind(lambda: {**ctl.core.snapshot(), "probe": probe})
    for n in range(3):  # after 4 lines (the opening two, t0-0, t0-1): the checkpoint
        ctl.request_allocation(intent(0, n))
    probe.entered.wait()  # the checkpoint's thread is stuck serialising it
    writer.checkpoint_every = 1_000  # (the next one would wait for this one to be written)
    decided = [ctl.request_allocation(intent(1, n)) for n in range(10)]  # not held
    assert len(decided) == 10
    assert b"t1-0" not in path.read_bytes()  # they wait behind the checkpoint's line
    probe.go.set()
    writer.bind(ctl.core.snapshot)
    ctl.close()
    lines = path.read_bytes().splitlines()
    kinds = [json.loads(raw)["type"] for raw in lines]
    at = kinds.index("checkpoint")
    assert json.loads(lines[at])["seq"] == at  # the events before it, as it says
    after = [json.loads(raw)["intent_id"] for raw in lines[at + 1 :] if b'"intent"' in raw]
    assert after == ["t0-2"] + [f"t1-{n}" for n in range(10)]  # t0-2: the line it preceded
    assert scan(path).chained  # and the chain runs through it unbroken


def test_waiters_share_the_sync_that_follows_the_running_one() -> None:
    """Line 1's sync is running when lines 2 and 3 are written: one more sync covers both,
    whichever of their threads runs it and however they interleave."""
    entered, go = threading.Event(), threading.Event()
    calls: list[int] = []
    group: GroupSync

    def sync() -> None:
        calls.append(group.written)
        if len(calls) == 1:
            entered.set()
            go.wait()

    group = GroupSync(sync)
    group.written = 1
    first = threading.Thread(target=group.wait, args=(1,))
    first.start()
    entered.wait()
    group.written = 3
    others = [threading.Thread(target=group.wait, args=(n,)) for n in (2, 3)]
    for t in others:
        t.start()
    go.set()
    for t in [first, *others]:
        t.join()
    assert calls == [1, 3] and group.synced == 3


def test_a_failed_sync_fails_the_journal_closed(tmp_path: Path) -> None:
    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    path = tmp_path / "j.jsonl"
    writer = JournalWriter(path, durability="event", fsync=broken)
    with pytest.raises(JournalWriteError):
        PortfolioController(PORTFOLIO, equity=100_000, journal=writer)
    assert writer.failed is not None
    with pytest.raises(JournalWriteError):
        writer.write({"type": "tick", "timestamp": T0.isoformat()})
    writer.close()


class Gated:
    """An injected sync that stops at each call until the test lets it go."""

    def __init__(self, group_of: list[GroupSync], fail_at: int = 0) -> None:
        self.group_of = group_of
        self.fail_at = fail_at
        self.calls: list[int] = []  # lines written when each sync started
        self.entered = [threading.Event() for _ in range(4)]
        self.go = [threading.Event() for _ in range(4)]

    def __call__(self) -> None:
        n = len(self.calls)
        self.calls.append(self.group_of[0].written)
        self.entered[n].set()
        self.go[n].wait()
        if n + 1 == self.fail_at:
            raise OSError(5, "Input/output error")


def _asleep(group: GroupSync, n: int) -> None:
    while group.waiting < n:  # the waiters are parked on their gates (no timing involved)
        threading.Event().wait(0.001)


def test_a_sync_wakes_the_lines_it_covered_and_one_thread_to_run_the_next() -> None:
    """Line 1's sync runs while lines 2-4 are written: their threads sleep; when it ends,
    exactly one of them is woken to sync 2-4 while the other two sleep on; every thread
    returns only once its line is on disk."""
    holder: list[GroupSync] = []
    sync = Gated(holder)
    group = GroupSync(sync)
    holder.append(group)
    returned: dict[int, int] = {}

    def wait(ticket: int) -> None:
        group.wait(ticket)
        returned[ticket] = group.synced

    group.written = 1
    first = threading.Thread(target=wait, args=(1,))
    first.start()
    sync.entered[0].wait()
    group.written = 4
    others = [threading.Thread(target=wait, args=(n,)) for n in (2, 3, 4)]
    for t in others:
        t.start()
    _asleep(group, 3)
    sync.go[0].set()
    sync.entered[1].wait()  # one of them leads the next sync...
    first.join()
    assert returned == {1: 1}
    assert group.waiting == 2  # ...and the other two were not woken for nothing
    sync.go[1].set()
    for t in others:
        t.join()
    assert sync.calls == [1, 4] and group.synced == 4 and group.waiting == 0
    assert all(synced >= ticket for ticket, synced in returned.items())


def test_a_failed_group_sync_raises_in_every_waiting_thread() -> None:
    """The sync for line 1 fails while lines 2 and 3 wait for the next: all three raise,
    and so does anyone who waits later (nothing is acknowledged off a failed sync)."""
    holder: list[GroupSync] = []
    sync = Gated(holder, fail_at=1)
    group = GroupSync(sync)
    holder.append(group)
    errors: dict[int, BaseException] = {}

    def wait(ticket: int) -> None:
        try:
            group.wait(ticket)
        except OSError as exc:
            errors[ticket] = exc

    group.written = 1
    threads = [threading.Thread(target=wait, args=(1,))]
    threads[0].start()
    sync.entered[0].wait()
    group.written = 3
    threads += [threading.Thread(target=wait, args=(n,)) for n in (2, 3)]
    for t in threads[1:]:
        t.start()
    _asleep(group, 2)
    sync.go[0].set()
    for t in threads:
        t.join()
    assert sorted(errors) == [1, 2, 3] and group.synced == 0 and sync.calls == [1]
    with pytest.raises(OSError):
        group.wait(3)
