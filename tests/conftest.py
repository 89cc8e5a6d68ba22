"""Shared fixtures: a real Temporal dev server for the tests that need one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from support.devserver import dev_server


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    """The address of a Temporal dev server started once for the session."""
    with dev_server() as address:
        yield address


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at the end are killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
