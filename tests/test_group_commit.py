"""Group commit with durability ``event`` (issue 18): threads deciding together share one
``fdatasync``, and still no call returns before its journal line is on disk; the lines are
in the order the core applied them. The sync is injected (``JournalWriter(fsync=...)``) to
record how far the file was on disk when each call returned; no timing is involved."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policy_engine import PortfolioController, PortfolioIntent
from policy_engine.control.durable import GroupSync
from policy_engine.control.journal import JournalWriteError, JournalWriter
from policy_engine.control.replay import replay

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


def test_no_decision_returns_before_its_line_is_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    disk = Disk()
    writer = JournalWriter(path, durability="event", fsync=disk)
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
