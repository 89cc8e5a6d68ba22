"""A restarted ``policy worker`` waits for the workflow instead of dying (issue 17 #6).

The first worker holds the workflow on its sticky queue for 30 s (``--sticky-timeout``)
and is SIGKILLed: every workflow task, the restarted worker's start-up Query included,
waits on the dead worker's queue until that timeout. A Query gives up after 10 s, so
the restarted worker used to exit 2 (``timed out``); with ``--startup-timeout`` it
retries while the server answers and reports ready.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess

from support.processes import ready_line, worker


def test_a_restarted_worker_waits_behind_a_dead_workers_task(
    temporal_address: str, reaper: list[subprocess.Popen[str]]
) -> None:
    portfolio, queue = "startup-wait", "tq-startup-wait"

    async def scenario() -> None:
        first = worker(
            temporal_address,
            portfolio,
            "--task-queue",
            queue,
            "--equity",
            "20000",
            "--sticky-timeout",
            "30",
        )
        reaper.append(first)
        assert "workflow started" in await ready_line(first)
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        second = worker(
            temporal_address, portfolio, "--task-queue", queue, "--startup-timeout", "150"
        )
        reaper.append(second)
        line = await ready_line(second, timeout=180)
        assert "workflow already running" in line
        second.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(second.communicate, timeout=60)
        assert second.returncode == 0 and "worker stopped" in out, err

    asyncio.run(scenario())
