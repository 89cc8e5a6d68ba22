"""A trading loop in its own OS process (tests/test_temporal_control.py runs several).

    python tests/support/intent_client.py ADDRESS PORTFOLIO TASK_QUEUE PREFIX COUNT

Connects on its own, runs :func:`support.control.drive` and prints every decision
it received as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from os import _exit as exit_now
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy_engine.temporal import PortfolioClient

from support.control import drive


async def main(address: str, portfolio: str, queue: str, prefix: str, count: int) -> None:
    caller = await PortfolioClient.connect(address, portfolio=portfolio, task_queue=queue)
    for decision in await drive(caller, prefix, count):
        print(json.dumps(decision), flush=True)


if __name__ == "__main__":
    address, portfolio, queue, prefix, count = sys.argv[1:6]
    asyncio.run(main(address, portfolio, queue, prefix, int(count)))
    # Skip the interpreter's teardown: the SDK's native threads can abort it
    # (temporalio/sdk-python#300), which would turn a good run into exit 134.
    exit_now(0)
