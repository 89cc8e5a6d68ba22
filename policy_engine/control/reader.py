"""Reading a journal file's events: the hot loop of every replay.

:func:`read_events` streams a JSON Lines journal's events (checkpoint lines and chain
values left out; verifying the chain is :mod:`.verify`'s), and tells a torn last line (a
write cut short by a crash) from a complete one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import orjson

from .chain import MARK, SUFFIX
from .events import EventError
from .lines import DIGITS_TO_ZERO, LONG_RUN, fast_loads, loads

CHECKPOINT_HEAD = b'{"type":"checkpoint"'


def read_events(
    path: str | os.PathLike[str], *, lenient_tail: bool = False
) -> Iterator[dict[str, Any]]:
    """Stream the events of a JSON Lines journal (constant memory), without checkpoint
    lines or chain values (verification is :func:`~.verify.verify_journal`'s).

    Blank lines are skipped. A last line without its newline is a write cut by a
    crash: :class:`TornJournalError` (``lenient_tail`` accepts it when it parses, as
    for an events file written by hand).
    """
    # The hot loop of every replay: the chain suffix is cut inline (see chain.unseal) and
    # the common line goes straight to orjson.
    fast, head, zeros, run = fast_loads, CHECKPOINT_HEAD, DIGITS_TO_ZERO, LONG_RUN
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line[-3:] == b'"}\n' and line[-SUFFIX : -SUFFIX + 10] == MARK:
                body = line[:-SUFFIX] + b"}"
            elif line[-1:] != b"\n":
                yield from _last_line(path, number, line, lenient_tail)
                return
            else:
                body = line
            if body[:20] == head:
                continue
            if run not in body.translate(zeros):
                try:
                    event = fast(body)
                except orjson.JSONDecodeError:
                    pass
                else:
                    if event.__class__ is dict:
                        yield event
                        continue
            if body.strip():
                yield _event(path, number, body)


def _last_line(
    path: str | os.PathLike[str], number: int, line: bytes, lenient: bool
) -> Iterator[dict[str, Any]]:
    if lenient and line.strip():
        try:
            event = _event(path, number, line)
        except EventError:
            pass
        else:
            yield event
            return
    if not line.strip(b" \t\r\x00") and lenient:
        return
    from .journal import TornJournalError  # (journal.py imports this module)

    raise TornJournalError(torn_message(path, number, len(line)))


def torn_message(path: str | os.PathLike[str], number: int, size: int) -> str:
    return (
        f"{path}:{number}: the last line is incomplete ({size} bytes without a newline: a "
        f"write cut short by a crash); drop it with `policy journal repair {path}`"
    )


def _event(path: str | os.PathLike[str], number: int, body: bytes) -> dict[str, Any]:
    try:
        event = loads(body)
    except ValueError as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise EventError(f"{path}:{number}: not valid JSON: {msg}") from exc
    if not isinstance(event, dict):
        raise EventError(f"{path}:{number}: an event must be a JSON object")
    return event


__all__ = ["CHECKPOINT_HEAD", "read_events", "torn_message"]
