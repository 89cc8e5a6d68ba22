"""Shared fixtures: a real Temporal dev server for the tests that need one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.devserver import dev_server


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    """The address of a Temporal dev server started once for the session."""
    with dev_server() as address:
        yield address
