"""The event journal: JSON Lines, one accepted event per line.

Every input event a :class:`~.controller.PortfolioController` accepts (intent,
fill, cancel, close, equity update, mode override, tick, policy load with its
content hash and YAML text) can be appended to a journal, one JSON object per
line, in the format documented in :mod:`.events` and
``schemas/journal.schema.json``. Journaling is off by default and on with one
argument: ``PortfolioController(policy, equity=..., journal="run.jsonl")`` (or
``journal=[]`` to collect the events in memory). :mod:`.replay` re-runs one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, Protocol

from .events import EventError, json_default


class JournalSink(Protocol):
    """Where accepted events go before they are applied (a file, a list, a log)."""

    def write(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JournalWriter:
    """Appends events to a JSON Lines file (truncated when opened) or a list."""

    def __init__(self, target: str | os.PathLike[str] | list[dict[str, Any]]) -> None:
        self._list: list[dict[str, Any]] | None = None
        self._file: IO[str] | None = None
        if isinstance(target, list):
            self._list = target
        else:
            self.path = Path(target)
            self._file = self.path.open("w", encoding="utf-8")

    def write(self, event: dict[str, Any]) -> None:
        try:
            line = json.dumps(
                event, separators=(",", ":"), ensure_ascii=False, default=json_default
            )
        except (TypeError, ValueError):  # e.g. non-string keys in a caller's bad intent
            line = json.dumps({"type": event.get("type"), "value": repr(event)})
        if self._list is not None:
            # A JSON round trip: the in-memory journal holds exactly what a file would.
            self._list.append(json.loads(line))
            return
        assert self._file is not None
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Stream the events of a JSON Lines journal (constant memory). Blank lines are skipped."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EventError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            if not isinstance(event, dict):
                raise EventError(f"{path}:{number}: an event must be a JSON object")
            yield event


def journal_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one journal line."""
    text = files("policy_engine").joinpath("schemas/journal.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


__all__ = ["JournalSink", "JournalWriter", "journal_schema", "read_events"]
