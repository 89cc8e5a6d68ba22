"""``policy worker`` as a real process: serving, crashing, restarting, refusing to start.

The worker process is SIGKILLed in the middle of a stream of requests from four
concurrent clients (default settings: a call in flight whose Update is aborted is
retried with its id until its 30 s deadline, and raises nothing) and a new one is
started: every request gets exactly one decision, none is lost or duplicated, and
the decisions and the final state equal the in-process replay of the workflow's
journal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client

from policy_engine.temporal import PortfolioClient

from support.control import drive, replay_journal
from support.processes import POLICY, POLICY_CLI, ready_line, worker

ROOT = Path(__file__).resolve().parent.parent


class Counting(PortfolioClient):
    """A client that tells the test how many decisions came back."""

    def __init__(self, *args: Any, seen: list[int], at: int, reached: asyncio.Event, **kw: Any):
        super().__init__(*args, **kw)
        self.seen, self.at, self.reached = seen, at, reached

    async def request_allocation(self, intent: Any) -> Any:
        decision = await super().request_allocation(intent)
        self.seen[0] += 1
        if self.seen[0] >= self.at:
            self.reached.set()
        return decision


def test_a_worker_killed_mid_stream_loses_and_duplicates_nothing(
    temporal_address: str, reaper: list[subprocess.Popen[str]]
) -> None:
    portfolio, queue = "sigkill", "tq-sigkill"
    tune = ["--task-queue", queue, "--task-timeout", "2", "--sticky-timeout", "1"]

    async def scenario() -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Any]]:
        first = worker(temporal_address, portfolio, "--equity", "20000", *tune)
        reaper.append(first)
        assert "workflow started" in await ready_line(first)
        seen, reached = [0], asyncio.Event()
        callers = [
            Counting(
                await Client.connect(temporal_address),
                portfolio,
                queue,
                seen=seen,
                at=15,
                reached=reached,
            )
            for _ in range(4)
        ]
        streams = asyncio.gather(*(drive(c, f"k{n}", 12) for n, c in enumerate(callers)))
        await asyncio.wait_for(reached.wait(), timeout=60)
        first.send_signal(signal.SIGKILL)  # in the middle of the stream
        await asyncio.to_thread(first.wait)
        assert 15 <= seen[0] < 48
        second = worker(temporal_address, portfolio, *tune)
        reaper.append(second)
        assert "workflow already running" in await ready_line(second)
        results = await asyncio.wait_for(streams, timeout=120)
        got = {d["intent_id"]: d for decisions in results for d in decisions}
        assert sum(len(d) for d in results) == len(got) == 48
        caller = callers[0]
        journal, snapshot = await caller.journal(), await caller.snapshot()
        await caller.client.get_workflow_handle(caller.workflow_id).terminate("test over")
        second.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(second.communicate, timeout=30)
        assert second.returncode == 0 and "worker stopped" in out, err
        return got, journal, snapshot

    got, journal, snapshot = asyncio.run(scenario())
    intents = [e["intent_id"] for e in journal["events"] if e["type"] == "intent"]
    assert sorted(intents) == sorted(got)  # each request decided exactly once
    core, replayed = replay_journal(journal["events"])
    assert replayed == got
    assert core.snapshot() == snapshot


def test_the_worker_exits_2_with_one_line_when_the_server_is_unreachable() -> None:
    result = subprocess.run(
        [POLICY_CLI, "worker", POLICY, "--address", "127.0.0.1:1", "--portfolio", "p"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: cannot reach the Temporal server at 127.0.0.1:1: connection refused\n"
    )
    assert result.stdout == ""


def _without_temporal(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where `import temporalio` fails."""
    blocked = "import sys; sys.modules['temporalio'] = None\n" + code
    return subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_the_package_and_policy_check_work_without_the_temporal_extra() -> None:
    ok = _without_temporal(
        "import policy_engine\n"
        "from policy_engine.temporal import protocol\n"
        "from policy_engine.cli import check_main\n"
        f"check_main([{POLICY!r}])\n"
    )
    assert ok.returncode == 0, ok.stderr
    assert "no problems found" in ok.stdout
    worker = _without_temporal(
        f"from policy_engine.cli import main\nmain(['worker', {POLICY!r}, '--portfolio', 'p'])\n"
    )
    assert worker.returncode == 2
    assert "pip install 'policy-engine[temporal]'" in worker.stderr
    assert "Traceback" not in worker.stderr


def test_the_worker_refuses_a_policy_that_does_not_load(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(Path(POLICY).read_text().replace("max_trades: 3}", "max_trades: }"))
    result = subprocess.run(
        [POLICY_CLI, "worker", str(broken), "--portfolio", "p", "--address", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 1
    assert "broken.yaml:" in result.stderr and "PT" in result.stderr


def test_a_worker_without_equity_serves_a_running_portfolio_but_starts_none(
    temporal_address: str, reaper: list[subprocess.Popen[str]]
) -> None:
    """Starting a portfolio at equity zero would make every cap zero: without --equity a
    worker only serves a running workflow, and says how to start one."""
    refused = subprocess.run(
        [POLICY_CLI, "worker", POLICY, "--address", temporal_address, "--portfolio", "no-eq"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: portfolio-control/no-eq is not running: give its opening equity (--equity) "
        "to start it\n"
    )

    async def scenario() -> tuple[str, str]:
        first = worker(temporal_address, "no-eq", "--equity", "50000", "--task-queue", "tq-neq")
        reaper.append(first)
        started = await ready_line(first)
        second = worker(temporal_address, "no-eq", "--task-queue", "tq-neq")
        reaper.append(second)
        served = await ready_line(second)
        caller = PortfolioClient(await Client.connect(temporal_address), "no-eq", "tq-neq")
        assert (await caller.get_portfolio_state())["equity"] == 50_000
        await caller.client.get_workflow_handle(caller.workflow_id).terminate("test over")
        return started, served

    started, served = asyncio.run(scenario())
    assert "workflow started with portfolio-default v1" in started
    assert "workflow already running with portfolio-default v1" in served
