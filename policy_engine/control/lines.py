"""A journal line's JSON: encoding an event and a checkpoint, decoding a line exactly.

orjson does both in a fraction of the standard library's time; what it would read or write
differently from :mod:`json` (an integer beyond 64 bits, a lone surrogate, NaN) takes the
standard library, so every line is what it was before orjson.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson

from .captured import Rows
from .events import Event, IntentEvent, json_default


def dumps_event(value: Any) -> bytes:
    """An event's journal line body. orjson writes what the standard encoder writes (no
    spaces, UTF-8, keys in order) in a fraction of the time; the lines read back to the
    same values (a float may be spelt differently, 0.00001 for 1e-05: the same number).
    What orjson refuses (an integer beyond 64 bits, a non-string key, a lone surrogate)
    takes the standard encoder, as every line did before. Accepted events hold no NaN or
    infinity (every amount is checked finite before it is journaled), which orjson would
    write as null."""
    try:
        return orjson.dumps(value, default=json_default)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        pass
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=json_default)
    except (TypeError, ValueError):  # e.g. non-string keys in a caller's bad intent
        text = json.dumps({"type": value.get("type"), "value": repr(value)})
    return text.encode("utf-8")


INTENT_HEAD = b'{"type":"intent",'


def event_body(event: Event) -> bytes:
    """A typed event's journal line body: ``dumps_event(event.journal())``, an intent
    serialised straight to JSON by its model's serializer (the same bytes: the same
    serializer makes the journal form, and orjson writes its values as pydantic does;
    tests/test_journal_formats.py holds an earlier release's lines to it), without the
    intermediate dict (about 0.5 us of a decision)."""
    if event.__class__ is IntentEvent:
        intent = event.intent
        try:
            raw = type(intent).__pydantic_serializer__.to_json(intent, exclude_defaults=True)
        except ValueError:  # (pydantic's serialisation errors): the dict, as ever
            pass
        else:
            if raw[:1] == b"{" and raw != b"{}":
                return INTENT_HEAD + raw[1:]
    return dumps_event(event.journal())


# How many rows are encoded at a time: well under a millisecond in C.
CHUNK = 1_000


def _pieces(rows: Rows) -> list[bytes | memoryview]:
    """``rows`` as the JSON array :func:`orjson.dumps` would write for them, in pieces to join
    (views into each chunk's text: no copy until the one join). Encoded a chunk at a time,
    handing the interpreter to a waiting thread between chunks (``time.sleep(0)`` releases
    it): a deciding thread releases it too (the journal's ``stat`` of its path), and without
    the hand-back each decision made while a checkpoint was encoded waited out the
    interpreter's whole switch interval (5 ms); with it, a decision waits about one chunk."""
    out: list[bytes | memoryview] = [b"["]
    time.sleep(0)
    for text in rows.chunks(CHUNK):
        if len(out) > 1:
            out.append(b",")
        out.append(memoryview(text)[1:-1])
        time.sleep(0)
    out.append(b"]")
    return out


# Where a snapshot's Rows go in the rest of the line: a NUL byte, which orjson never writes
# (it escapes every control character inside a string, and none occurs outside one).
_HOLE = orjson.Fragment(b"\x00")


def _plain(value: Any) -> Any:
    return value.plain() if isinstance(value, Rows) else json_default(value)


def checkpoint_body(line: dict[str, Any]) -> bytes:
    """A checkpoint line's body, exactly as :func:`orjson.dumps` would write its plain data:
    its snapshot's :class:`~.captured.Rows` are built here (off the controller's lock), and
    joined into the rest of the line in one copy."""
    later: list[Rows] = []

    def hole(value: Any) -> Any:
        if isinstance(value, Rows):
            later.append(value)
            return _HOLE
        raise TypeError(f"{type(value).__name__} in a checkpoint")

    try:
        # orjson serialises a snapshot about 6x faster (its plain data reads back identically)
        text = orjson.dumps(line, default=hole)
        if not later:
            return text
        gaps = text.split(b"\x00")
        pieces: list[bytes | memoryview] = [gaps[0]]
        for rows, gap in zip(later, gaps[1:], strict=True):
            pieces += _pieces(rows)
            pieces.append(gap)
        return b"".join(pieces)
    except TypeError:  # an integer beyond 64 bits: the standard encoder, as dumps_event
        plain = json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=_plain)
        return plain.encode("utf-8")


# orjson reads an integer beyond 64 bits as a float where the standard parser keeps an
# int: a line with a run of 19 digits anywhere (even inside a string), and whatever orjson
# refuses (NaN, 1e400, lone surrogates), goes to the standard parser, so every line parses
# exactly as json.loads parses it. The digit-run test is two C calls (translate, find):
# a regex scan cost more than the parse itself.
fast_loads = orjson.loads
_slow = json.loads
DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
LONG_RUN = b"0" * 19


def loads(body: bytes) -> Any:
    """One JSON text, exactly as :func:`json.loads` parses it, faster."""
    if LONG_RUN not in body.translate(DIGITS_TO_ZERO):
        try:
            return fast_loads(body)
        except orjson.JSONDecodeError:
            pass
    return _slow(body)


__all__ = [
    "CHUNK",
    "DIGITS_TO_ZERO",
    "LONG_RUN",
    "checkpoint_body",
    "dumps_event",
    "event_body",
    "fast_loads",
    "loads",
]
