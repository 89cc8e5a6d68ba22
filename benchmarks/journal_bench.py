"""Journal cases of benchmarks/run.py: what durability costs, and recovery after a crash.

- ``request_allocation`` with a journal file, per durability mode (``event``: an
  fdatasync per line; ``batch`` of 256 lines; ``off``), against no journal at all, on
  the same pool of prebuilt intents as the controller rows (wall time: a sync is
  waiting, not computing).
- A crash with 1,000,000 events in the journal: a child process runs a real
  controller (checkpoint every 50,000 events, the default) over the synthetic
  workload of the replay rows and exits without closing anything (``os._exit``: no
  final checkpoint, nothing flushed beyond what the mode did). The journal then holds
  1,000,000 events whose last checkpoint is 50,000 events back: the worst tail.
  Measured in fresh processes: the chain check alone (``scan``), and
  ``PortfolioController.recover`` (the chain checked, the checkpoint restored, the tail
  replayed), whose state must equal a full replay's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def fsync_rows(row: Any, args: Any, policy: Any, pool: list[Any]) -> None:
    """Per-call cost of request_allocation per durability mode (medians of 3 runs)."""
    from policy_engine.control.controller import PortfolioController
    from policy_engine.control.journal import Durability

    modes: list[tuple[str, Any, int]] = [
        ("no journal", None, len(pool)),
        ("off", "off", len(pool)),
        ("batch (256 lines)", Durability("batch", events=256, ms=100), len(pool)),
        ("event (fdatasync per line)", "event", 300 if args.quick else 1_000),
    ]
    base = 0.0
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        for label, mode, n in modes:
            runs = []
            for k in range(3):
                journal = None if mode is None else Path(tmp) / f"{label[:5]}-{k}.jsonl"
                kw: dict[str, Any] = {} if mode is None else {"durability": mode}
                ctl = PortfolioController(policy, equity=1e9, journal=journal, **kw)
                request = ctl.request_allocation
                t0 = time.perf_counter()
                for x in pool[:n]:
                    request(x)
                ctl.close()  # the final sync of a batch counts
                runs.append((time.perf_counter() - t0) / n)
            per = sorted(runs)[1]
            if mode is None:
                base = per
            row(
                f"request_allocation, journal {label}",
                f"{per * 1e6:,.1f} us",
                "" if mode is None else f"{per / base:.1f}x",
                f"{1 / per:,.0f} decisions/s; {n:,} calls, wall time",
            )


WRITER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {here!r})
    sys.path.insert(0, {root!r})
    from controller_bench import synthetic_events
    from policy_engine import load_policy
    from policy_engine.control.controller import PortfolioController
    path, n = sys.argv[1], int(sys.argv[2])
    ctl = PortfolioController(load_policy({policy!r}), equity=100_000.0, journal=path,
                              durability="off")
    t0 = time.perf_counter()
    for event in synthetic_events(n - 2):  # the opening policy and equity events count
        ctl.apply(event)
    print(time.perf_counter() - t0, flush=True)
    os._exit(0)  # a crash: no close, no final checkpoint
    """
)

RECOVER = textwrap.dedent(
    """
    import json, resource, sys, time
    sys.path.insert(0, {root!r})
    t0 = time.perf_counter()
    from policy_engine.control.controller import PortfolioController
    from policy_engine.control.verify import scan
    imported = time.perf_counter() - t0
    path = sys.argv[1]
    t0 = time.perf_counter()
    found = scan(path)
    scanned = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    ctl = PortfolioController.recover(path, durability="off")
    recovered, cpu = time.perf_counter() - t0, time.process_time() - c0
    snap = ctl.core.snapshot()
    ctl.close()
    with open(path, "rb") as fh:
        sizes = []
        for cp in found.checkpoints:
            fh.seek(cp.offset)
            sizes.append(len(fh.readline()))
    print(json.dumps({{"scan": scanned, "recover": recovered, "cpu": cpu, "imported": imported,
        "events": found.events, "lines": found.lines, "checkpoints": len(found.checkpoints),
        "tail": ctl.recovery.replayed, "seq": snap["seq"],
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checkpoint_bytes": sum(sizes), "last_checkpoint": sizes[-1] if sizes else 0}}))
    """
)


def recovery_rows(row: Any, fails: list[str], args: Any) -> None:
    n = args.events or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        path = Path(tmp) / "crashed.jsonl"
        writer = WRITER.format(here=str(HERE), root=str(ROOT), policy=str(HERE / "policy12.yaml"))
        live = float(
            subprocess.run(
                [sys.executable, "-c", writer, str(path), str(n)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        size = path.stat().st_size
        row(
            f"live controller writing a {n:,}-event journal (durability off)",
            f"{n / live:,.0f} ev/s",
            "",
            f"{size / 1e6:,.0f} MB, chained, a checkpoint every 50,000 events",
        )
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", RECOVER.format(root=str(ROOT)), str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall = time.perf_counter() - t0
        got = json.loads(out)
        assert got["events"] == n == got["seq"], got
        row(
            f"chain check of the {got['lines']:,}-line journal (scan, fresh process)",
            f"{got['scan']:.2f} s",
            "",
            f"{got['lines'] / got['scan']:,.0f} lines/s; {got['checkpoints']} checkpoints, "
            f"{got['checkpoint_bytes'] / 1e6:,.0f} MB of the {size / 1e6:,.0f} MB (the last "
            f"{got['last_checkpoint'] / 1e6:,.1f} MB)",
        )
        ok = got["recover"] < 10
        if not ok:
            fails.append("recovery of 1,000,000 events")
        row(
            f"recover after a crash, {n:,} events (fresh process)",
            f"{got['recover']:.2f} s",
            "",
            f"target < 10 s {'ok' if ok else 'MISSED'} (wall; {got['cpu']:.2f} s CPU): "
            "recover() checks every line's chain, "
            f"restores the last checkpoint, replays a {got['tail']:,}-event tail; the "
            f"process took {wall:.1f} s with imports; peak RSS {got['rss']:.0f} MB",
        )


def run(row: Any, fails: list[str], args: Any, policy: Any, pool: list[Any]) -> None:
    fsync_rows(row, args, policy, pool)
    recovery_rows(row, fails, args)
