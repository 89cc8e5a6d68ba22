"""The journal's hash chain: how a line seals its event and links it to the line before.

A chained journal line is the event's compact JSON exactly as the writer
serialised it (the *body*) with one key appended last::

    {"type":"tick","timestamp":"2026-01-01T00:00:00+00:00","chain":"<64 hex digits>"}

where ``chain = sha256(previous line's chain, as its 64 ASCII hex digits + body)``
and the first line's previous chain is :data:`GENESIS`. The chain value covers
every byte of its own body and, through the previous chain, every byte before
it, so an edited, inserted or deleted byte anywhere in the journal breaks the
chain at that line or at the next one. The body is recovered by cutting the
fixed-length suffix, not by re-serialising, so what is verified is exactly what
was written (an event that itself has a ``chain`` key cannot confuse a reader).

A plain hash chain cannot detect a rewrite that recomputes every chain value
from the edited line to the end, nor a cut of whole lines at the end: the head
(the last chain value, which ``policy replay --verify`` prints) must be kept
elsewhere to detect those (docs/operations.md).

Pure functions: no I/O.
"""

from __future__ import annotations

from hashlib import sha256

GENESIS = "0" * 64
MARK = b',"chain":"'
# The bytes a chained line ends with after its body's closing brace is removed:
# `,"chain":"` + 64 hex digits + `"}` + the newline.
SUFFIX = len(MARK) + 64 + 3
END = b'"}\n'


def link(prev: str, body: bytes) -> str:
    """The chain value of ``body`` after a line whose chain value is ``prev``."""
    return sha256(prev.encode("ascii") + body).hexdigest()


def seal(body: bytes, prev: str) -> tuple[bytes, str]:
    """The journal line (with its newline) for ``body`` after ``prev``, and its chain value."""
    if len(body) < 3 or body[:1] != b"{" or body[-1:] != b"}":
        raise ValueError("a journal line's body must be a non-empty JSON object")
    chain = sha256(prev.encode("ascii") + body).hexdigest()  # link(), inline: a hot path
    return b"".join((body[:-1], MARK, chain.encode("ascii"), END)), chain


def unseal(line: bytes) -> tuple[bytes, str | None]:
    """``(body, chain)`` of one line as read (with its newline); ``chain`` is ``None`` when
    the line carries none (a journal written before chaining, or a damaged line)."""
    if (
        len(line) > SUFFIX + 1
        and line[-SUFFIX : -SUFFIX + len(MARK)] == MARK
        and line[-3:] == b'"}\n'
    ):
        # latin-1 never fails: a damaged digit shows up as a chain mismatch, not a crash.
        return line[:-SUFFIX] + b"}", line[-67:-3].decode("latin-1")
    return line, None


__all__ = ["GENESIS", "MARK", "SUFFIX", "link", "seal", "unseal"]
