"""Checking a journal file: its hash chain, its checkpoints, a torn last line; and repair.

:func:`scan` reads a journal's bytes once and checks every line's chain value
(:mod:`.chain`), without parsing events: it finds the checkpoint lines, the
head (the last chain value), and a torn last line (a write cut short by a
crash). :func:`verified_replay` replays a journal through a fresh core while
checking the chain *and* that every checkpoint equals the state the events
before it produce (so a checkpoint rewritten with a recomputed chain is still
caught). :func:`repair` drops a torn last line, explicitly, keeping its bytes
in a side file; it refuses anything else.

A journal written before chaining (no line has a chain value) is *unchained*:
it replays, but cannot be verified or continued.
"""

from __future__ import annotations

import fcntl
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..document.yaml_source import read_policy_bytes
from . import snapshot as snapshots
from .chain import GENESIS, link, unseal
from .core import ControlCore
from .events import EventError, Record, canonical
from .journal import (
    CHECKPOINT,
    CHECKPOINT_HEAD,
    JournalError,
    JournalLockedError,
    TornJournalError,
    loads,
    torn_message,
)
from .notional_format import FORGETS


class JournalIntegrityError(JournalError, EventError):
    """A journal line does not match its chain value, or a checkpoint its events."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a checkpoint line is: its line number, byte offset, and the events before it."""

    line: int
    offset: int
    events: int


@dataclass
class Scan:
    """What one pass over a journal file found."""

    path: str
    lines: int = 0  # complete lines
    events: int = 0  # event lines (not checkpoints, not blank)
    size: int = 0  # bytes of complete lines (where a torn tail starts)
    chained: bool | None = None  # None: no line yet
    head: str | None = None  # the last line's chain value
    checkpoints: list[Checkpoint] = field(default_factory=list)
    torn: int = 0  # bytes of an incomplete last line (0: none)

    @property
    def torn_line(self) -> int:
        return self.lines + 1

    def torn_error(self) -> TornJournalError:
        return TornJournalError(torn_message(self.path, self.torn_line, self.torn))


def lines(scan: Scan) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, offset, body)`` of every complete line of ``scan.path``, the chain
    checked as it goes (:class:`JournalIntegrityError` at the first broken link); fills
    ``scan``. A torn last line is recorded in ``scan.torn``, not raised."""
    path = scan.path
    prev = GENESIS
    offset = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line[-1:] != b"\n":
                scan.torn = len(line)
                return
            body, chain = unseal(line)
            if scan.chained is None:
                scan.chained = chain is not None
            if scan.chained:
                if chain is None:
                    raise JournalIntegrityError(
                        f"{path}:{number}: the line carries no chain value (edited, inserted "
                        "or damaged)"
                    )
                if link(prev, body) != chain:
                    raise JournalIntegrityError(
                        f"{path}:{number}: the line does not match its chain value (edited "
                        "after it was written, or a line before it was removed or inserted)"
                    )
                prev = chain
            elif chain is not None:
                raise JournalIntegrityError(
                    f"{path}:{number}: a chained line in an unchained journal"
                )
            elif not body.strip():
                offset += len(line)
                scan.lines = number
                scan.size = offset
                continue  # the old writer's readers skipped blank lines
            if body[:20] == CHECKPOINT_HEAD:
                scan.checkpoints.append(Checkpoint(number, offset, scan.events))
            else:
                scan.events += 1
            yield number, offset, body
            offset += len(line)
            scan.lines = number
            scan.size = offset
            scan.head = prev if scan.chained else None


def scan(path: str | os.PathLike[str]) -> Scan:
    """Check the whole chain of ``path`` (no event is parsed)."""
    result = Scan(os.fspath(path))
    for _ in lines(result):
        pass
    return result


def parse(path: str, number: int, body: bytes) -> dict[str, Any]:
    """One line's event (or checkpoint) as a dict."""
    try:
        event = loads(body)
    except ValueError as exc:
        raise JournalIntegrityError(f"{path}:{number}: not valid JSON ({exc})") from None
    if not isinstance(event, dict):
        raise JournalIntegrityError(f"{path}:{number}: an event must be a JSON object")
    return event


def older_format(event: dict[str, Any]) -> bool:
    """Whether a checkpoint line holds a snapshot an older version wrote: recovery and
    verification pass over it and replay the events around it instead."""
    return snapshots.older_format(event.get("snapshot"))


def _comparable(core: ControlCore, checkpoint: dict[str, Any]) -> str:
    """``core``'s snapshot as a checkpoint of that line's format can be compared with it:
    what that format could not hold (a lossy migration's :data:`.notional_format.FORGETS`)
    blanked, so an honest older checkpoint matches and every field it holds is checked."""
    # its windows as what each holds (Windows.view): a checkpoint migrated from an older
    # format keeps its window rows otherwise than a replay does
    data = {**core.snapshot(), "windows": core.windows.view()}
    since = snapshots.format_number(checkpoint.get("snapshot")) or snapshots.FORMAT_VERSION
    for number in range(since, snapshots.FORMAT_VERSION):
        forget = FORGETS.get(number)
        if forget is not None:
            data = forget(data)
    return canonical(data)


def checkpoint_core(path: str, number: int, event: dict[str, Any], events: int) -> ControlCore:
    """The core a checkpoint line holds, checked against its place in the journal."""
    snapshot = event.get("snapshot")
    if event.get("type") != CHECKPOINT or not isinstance(snapshot, dict):
        raise JournalIntegrityError(f"{path}:{number}: not a checkpoint line")
    if event.get("seq") != events or snapshot.get("seq") != events:
        raise JournalIntegrityError(
            f"{path}:{number}: the checkpoint says {event.get('seq')} events precede it, the "
            f"journal has {events}"
        )
    try:
        return ControlCore.restore(snapshot)
    except (EventError, KeyError, TypeError, ValueError) as exc:
        raise JournalIntegrityError(f"{path}:{number}: the checkpoint is refused: {exc}") from None


def verified_replay(
    path: str | os.PathLike[str],
    result: Scan,
    *,
    read: Callable[[str], bytes] | None = None,
    lifecycle: bool = False,
) -> Iterator[Record]:
    """Replay ``path`` as recorded, checking the chain and every checkpoint against the
    state its events produce; yields the decision records (all with ``lifecycle``).
    ``result`` is filled as the replay goes; a torn last line raises at the end."""
    from .replay import start

    read = read or read_policy_bytes  # bounded: a journal may name any path
    where = result.path = os.fspath(path)
    cores: list[ControlCore] = []

    def events() -> Iterator[dict[str, Any]]:
        # Lazy: a checkpoint is read only after every event before it was applied.
        for number, _offset, body in lines(result):
            if body[:20] != CHECKPOINT_HEAD:
                yield parse(where, number, body)
            elif not cores:
                raise JournalIntegrityError(f"{where}:{number}: a checkpoint before any event")
            else:
                # Whatever its format: an older one is migrated (or refused) by restore.
                event = parse(where, number, body)
                held = checkpoint_core(where, number, event, result.events)
                if _comparable(held, event) != _comparable(cores[0], event):
                    raise JournalIntegrityError(
                        f"{where}:{number}: the checkpoint does not equal the state the "
                        f"{result.events} events before it produce (it was rewritten)"
                    )

    stream = events()
    core, pending = start(stream, None)
    cores.append(core)
    step = core.replayer(records=lifecycle, read=read)
    for event in itertools.chain(pending, stream):
        records = step(event).records
        if lifecycle:
            yield from records
        elif event.get("type") == "intent":
            yield records[-1]
    if result.torn:
        raise result.torn_error()


@dataclass(frozen=True)
class Repair:
    """What :func:`repair` did."""

    path: str
    dropped: int  # bytes dropped (0: nothing to repair)
    line: int  # the dropped line's number
    saved: str | None  # where the dropped bytes were kept
    scan: Scan


def repair(path: str | os.PathLike[str]) -> Repair:
    """Drop a torn last line (keeping its bytes in ``<path>.torn``) after checking the
    chain of every complete line. Refuses a journal a live writer holds, and one whose
    problem is not a torn last line."""
    target = Path(path)
    fd = os.open(target, os.O_RDWR | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLockedError(
                f"journal {target} is locked by a live writer: stop it before repairing"
            ) from None
        result = scan(target)  # raises JournalIntegrityError for a broken chain
        if not result.torn:
            return Repair(str(target), 0, 0, None, result)
        os.lseek(fd, result.size, os.SEEK_SET)
        tail = os.read(fd, result.torn)
        saved = Path(f"{target}.torn")
        with saved.open("ab") as side:
            side.write(tail)
            side.flush()
            os.fsync(side.fileno())
        os.ftruncate(fd, result.size)
        os.fsync(fd)
        return Repair(str(target), len(tail), result.torn_line, str(saved), result)
    finally:
        os.close(fd)


__all__ = [
    "Checkpoint",
    "JournalIntegrityError",
    "Repair",
    "Scan",
    "checkpoint_core",
    "lines",
    "parse",
    "repair",
    "scan",
    "verified_replay",
]
