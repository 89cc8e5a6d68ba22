"""A journal line's JSON: encoding an event and a checkpoint, decoding a line exactly.

orjson does both in a fraction of the standard library's time; what it would read or write
differently from :mod:`json` (an integer beyond 64 bits, a lone surrogate, NaN) takes the
standard library, so every line is what it was before orjson.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

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


def checkpoint_body(line: dict[str, Any]) -> bytes:
    try:
        # orjson serialises a snapshot about 6x faster (its plain data reads back identically)
        return orjson.dumps(line)
    except TypeError:  # an integer beyond 64 bits
        return dumps_event(line)


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
    "DIGITS_TO_ZERO",
    "LONG_RUN",
    "checkpoint_body",
    "dumps_event",
    "event_body",
    "fast_loads",
    "loads",
]
