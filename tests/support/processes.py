"""``policy worker`` processes for the tests: start one, read its ready line (the
``reaper`` fixture in conftest.py kills what a test left running)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
POLICY = str(ROOT / "policies" / "portfolio.yaml")
POLICY_CLI = str(Path(sys.executable).parent / "policy")


def worker(address: str, portfolio: str, *extra: str) -> subprocess.Popen[str]:
    """A ``policy worker`` process for ``portfolio`` on ``address``."""
    return subprocess.Popen(
        [POLICY_CLI, "worker", POLICY, "--address", address, "--portfolio", portfolio, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def ready_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The worker's first line of output (its ready line), or its error output."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=timeout)
    assert line, proc.stderr.read() if proc.stderr else "no output"
    return line
