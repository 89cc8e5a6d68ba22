"""Shared fixtures: a real Temporal dev server for the tests that need one; and under CI,
property tests that draw the same examples on every run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import settings

from support.devserver import dev_server

# CI (CI=true) must land or fail for the code, not for the examples a run happened to draw:
# derandomized there. A developer's runs keep exploring (and keep what they find in
# .hypothesis/), which is how the property tests find new cases.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


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
