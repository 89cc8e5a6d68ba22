"""The event journal: JSON Lines, one accepted event per line, hash-chained, appended only.

Every input event a :class:`~.controller.PortfolioController` accepts (intent,
fill, cancel, close, equity update, mode override, tick, policy load with its
content hash and YAML text) is appended to the journal, one JSON object per
line, in the format documented in :mod:`.events` and
``schemas/journal.schema.json``, *before* the core applies it. Journaling is
off by default and on with one argument:
``PortfolioController(policy, equity=..., journal="run.jsonl")`` (or
``journal=[]`` to collect the events in memory). :mod:`.replay` re-runs one.

A journal file is:

- **appended, never truncated**: it is opened with ``O_APPEND``; a new
  controller refuses a non-empty file (:class:`JournalExistsError`: continue
  it with ``PortfolioController.recover``);
- **held by one writer**: an exclusive ``flock`` for as long as the writer is
  open (:class:`JournalLockedError` for a second one, in this process or
  another);
- **chained**: each line ends with the hash of the previous line's chain and
  its own bytes (:mod:`.chain`); ``policy replay --verify`` checks it;
- **durable as configured**: :class:`Durability` says when lines are forced to
  disk (``fdatasync``): per event (the default: no decision is returned before
  its event is on disk; threads deciding together share one sync, :mod:`.durable`), per batch (a bound in events and in event time), or
  never (the page cache only: survives a process crash, not a power cut);
- **checkpointed**: every ``checkpoint_every`` events (and on close) a
  ``checkpoint`` line holds the core's exact snapshot, so that recovery
  (:mod:`.recovery`) replays only the tail;
- **fail closed**: once a write fails (disk full, I/O error, the path deleted
  or renamed under the writer) every later write raises
  :class:`JournalWriteError`, so no decision is made that is not recorded. The
  path is checked before every line with durability ``event``, before every
  ``PATH_CHECK_EVERY``-th line and every sync otherwise (:class:`~.durable.PathWatch`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn, Protocol

from ..diagnostics import PolicyEngineError
from .chain import GENESIS, seal
from .durable import (
    PATH_CHECK_EVERY,
    Durability,
    GroupSync,
    PathWatch,
    durability_of,
    open_locked,
    sync_directory,
    write_all,
)
from .events import Event, EventError
from .lines import checkpoint_body, dumps_event, event_body, loads
from .reader import CHECKPOINT_HEAD, read_events, torn_message

# How often, by default, a checkpoint line is written (events between checkpoints): the
# recovery tail is at most this long, and each checkpoint costs one snapshot.
CHECKPOINT_EVERY = 50_000
CHECKPOINT = "checkpoint"


class JournalSink(Protocol):
    """Where accepted events go before they are applied (a file, a list, a log)."""

    def write(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JournalError(PolicyEngineError, RuntimeError):
    """The journal cannot be opened, locked, written or trusted: the root of its errors."""


class JournalLockedError(JournalError):
    """Another writer (a controller in this process or another) holds the journal."""


class JournalExistsError(JournalError):
    """A new controller was pointed at a journal that already holds events."""


class JournalWriteError(JournalError):
    """A write failed, or the journal vanished: the writer refuses every later event."""


class TornJournalError(JournalError, EventError):
    """The journal's last line is incomplete: a write cut short by a crash."""


class JournalWriter:
    """Appends events to a journal file (or to a list, in memory).

    A file is opened for appending and locked; a non-empty one is refused unless
    ``resume`` (recovery continues it after :meth:`continue_after`). ``snapshot``
    (see :meth:`bind`) supplies the core's snapshot for checkpoint lines.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | list[dict[str, Any]],
        *,
        durability: Durability | str = "event",
        checkpoint_every: int | None = CHECKPOINT_EVERY,
        resume: bool = False,
        fsync: Callable[[int], None] = os.fdatasync,
    ) -> None:
        self._list: list[dict[str, Any]] | None = None
        self._fd: int | None = None
        self._failed: str | None = None
        self._snapshot: Callable[[], dict[str, Any]] | None = None
        self.durability = durability_of(durability)
        self._off = self.durability.mode == "off"
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError("checkpoint_every must be >= 1 (or None for no checkpoints)")
        self.checkpoint_every = checkpoint_every
        self._since_checkpoint = 0
        self._unsynced = 0
        self._batch_start: datetime | None = None
        self._prev: str | None = GENESIS
        self._fsync = fsync  # injectable: a test records what was on disk when
        self._group: GroupSync | None = None
        # A checkpoint in flight (see _checkpoint): the event lines waiting behind it, the
        # thread writing it, and the lock they share; ``_lines`` counts lines in order,
        # written or waiting.
        self._queue: list[tuple[bytes, Any]] | None = None
        self._flusher: threading.Thread | None = None
        self._io = threading.Lock()
        self._lines = 0
        if isinstance(target, list):
            self._list = target
            return
        self.path = Path(target)
        try:
            self._fd = open_locked(self.path, JournalLockedError)
        except OSError as exc:
            raise JournalError(
                f"cannot open journal {self.path} for appending: {exc.strerror}"
            ) from None
        # `event` checks the path before every line (a stat is nothing next to a sync);
        # `batch` and `off` before every PATH_CHECK_EVERY-th line and every sync.
        every = 1 if self.durability.mode == "event" else PATH_CHECK_EVERY
        self._watch = PathWatch(self.path, self._fd, every)
        if self._watch.size and not resume:
            self._release()
            raise JournalExistsError(
                f"journal {self.path} already holds {self._watch.size:,} bytes of events; a new "
                f"controller never overwrites one: continue it with `policy recover {self.path}` "
                "(PortfolioController.recover), or choose a new journal path"
            )
        if resume:
            self._prev = None  # positioned by continue_after
        elif os.name == "posix":
            sync_directory(self.path)  # the new file's name survives a power cut too

    # --- set-up ----------------------------------------------------------------------------
    def bind(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Where checkpoint lines get the core's snapshot (the controller binds its core)."""
        self._snapshot = snapshot

    def group(self) -> bool:
        """With durability ``event``, leave the sync of each line to :meth:`wait_durable`
        (group commit, :mod:`.durable`): the caller must wait on every line's
        :meth:`ticket` before acknowledging it. False (nothing changes) otherwise."""
        if self._fd is None or self.durability.mode != "event":
            return False
        if self._group is None:
            self._group = GroupSync(lambda: self._guard(self._fsync))
        return True

    def ticket(self) -> int:
        """How many lines are in the journal's order (written, or waiting behind a
        checkpoint in flight): what a caller waits on to see them all on disk."""
        return self._lines

    def wait_durable(self, ticket: int) -> None:
        """Return once the first ``ticket`` lines are on disk (group commit)."""
        if self._group is not None:
            self._group.wait(ticket)

    def continue_after(self, head: str, since_checkpoint: int) -> None:
        """Continue a resumed journal whose last line has chain value ``head``."""
        self._prev = head
        self._since_checkpoint = since_checkpoint

    # --- writing ---------------------------------------------------------------------------
    def write(self, event: dict[str, Any]) -> None:
        """Append one event (after a checkpoint line when one is due); raise
        :class:`JournalWriteError` instead of ever dropping it."""
        self.write_body(dumps_event(event), event.get("timestamp"))

    def write_event(self, event: Event) -> None:
        """:meth:`write` of a typed event's journal form (what a shell calls: an intent
        goes straight to its line, :func:`~.lines.event_body`)."""
        self.write_body(event_body(event), event.timestamp)

    def write_body(self, body: bytes, timestamp: Any) -> None:
        """:meth:`write` of an event's line body (compact JSON) and its timestamp."""
        if self._list is not None:
            # A JSON round trip: the in-memory journal holds exactly what a file would.
            self._list.append(loads(body))
            return
        if self._failed is not None or self._prev is None:
            self._check_usable()  # (raises)
        watch = self._watch
        if watch.left:
            watch.left -= 1
        else:
            self._check_path()
        every = self.checkpoint_every
        if every is not None and self._since_checkpoint >= every and self._snapshot is not None:
            self._checkpoint(defer=True)
        self._since_checkpoint += 1
        if self._queue is not None:  # (only this thread starts a checkpoint: no race to None)
            with self._io:
                if self._queue is not None:  # still in flight: the line waits behind it
                    self._queue.append((body, timestamp))
                    self._lines += 1
                    return
        self._append(body, timestamp)
        self._lines += 1  # (counted once written: a failed write is no line to wait for)

    def sync(self) -> None:
        """Force every line written so far to disk (whatever the durability mode)."""
        self._settle()
        if self._group is not None and self._failed is None:
            self._group.wait(self._lines)
        else:
            self._sync_now()

    def _sync_now(self) -> None:
        if self._fd is not None and self._failed is None and self._unsynced:
            self._check_path()  # the lines synced are under the journal's name
            self._guard(self._fsync)
            self._unsynced = 0
            self._batch_start = None

    def close(self) -> None:
        """Write a final checkpoint (when events came after the last one), sync unless
        durability is ``off``, release the lock."""
        if self._fd is None:
            return
        try:
            self._settle()
            if self._failed is None and self._prev is not None:
                if self._since_checkpoint and self._snapshot is not None:
                    self._checkpoint(defer=False)
                if self.durability.mode != "off":
                    self.sync()
        finally:
            self._release()

    @property
    def unsynced(self) -> int:
        """Lines written but not yet forced to disk."""
        group = self._group
        return self._unsynced if group is None else self._lines - group.synced

    @property
    def failed(self) -> str | None:
        """Why the writer stopped (``None`` while it works)."""
        return self._failed

    # --- internals -------------------------------------------------------------------------
    def _checkpoint(self, defer: bool) -> None:
        """A checkpoint line at this point of the journal. The snapshot is taken here
        (under the caller's lock: the state as of the last line); with ``defer`` it is
        serialised, chained and written by a thread of its own while the caller goes on
        deciding: the lines written meanwhile wait in order behind it (:meth:`_finish`),
        so the file's order and the chain are as if it had been written here. (A 63 MB
        checkpoint once held the controller's lock for 7 s.) An ``event`` journal without
        group commit has no caller to wait for its lines: it writes the line here."""
        assert self._snapshot is not None
        self._settle()  # the previous checkpoint is in the file first
        try:
            snap = self._snapshot()
        except EventError:  # e.g. a policy without its text: checkpoints are an
            # optimisation, never a reason to refuse an event; recovery replays further back
            self.checkpoint_every = None
            return
        line = {"type": CHECKPOINT, "seq": snap["seq"], "snapshot": snap}
        self._since_checkpoint = 0
        if not defer or (self._group is None and self.durability.mode == "event"):
            self._append(checkpoint_body(line), None)
            self._lines += 1
            return
        self._lines += 1
        self._queue = []
        self._flusher = threading.Thread(
            target=self._finish, args=(line, self._prev), name="journal-checkpoint", daemon=True
        )
        self._flusher.start()

    def _finish(self, line: dict[str, Any], prev: str) -> None:
        """The checkpoint thread: write the line, then the lines that waited behind it."""
        try:
            text, chain = seal(checkpoint_body(line), prev)
            self._guard(lambda fd: write_all(fd, text))  # nobody else writes meanwhile
            with self._io:
                self._prev = chain
                self._written(None)
                batch, self._queue = self._queue or [], (None if not self._queue else [])
            while batch:  # the lines that waited, written outside the lock a batch at a time
                for body, ts in batch:  # (so a decision queues behind them, never waits)
                    self._append(body, ts)
                with self._io:
                    batch, self._queue = self._queue or [], (None if not self._queue else [])
        except BaseException as exc:
            self._queue = None
            if self._failed is None:
                self._failed = f"the checkpoint could not be written: {exc}"
            if self._group is not None:
                self._group.fail(exc)
            return
        if self._group is not None:
            self._group.wake()

    def _settle(self) -> None:
        """Wait for a checkpoint in flight to be in the file."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.join()

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise JournalWriteError(
                f"journal {self.path} failed earlier ({self._failed}); no event is accepted "
                "unrecorded: close this controller and recover from the journal"
            )
        if self._prev is None:
            raise JournalWriteError(f"journal {self.path} was opened to resume but not positioned")

    def _check_path(self) -> None:
        why = self._watch.moved()
        if why is not None:
            self._fail(why)

    def _append(self, body: bytes, timestamp: Any) -> None:
        assert self._fd is not None and self._prev is not None
        line, chain = seal(body, self._prev)
        try:
            written = os.write(self._fd, line)  # one call for the whole line, nearly always
            if written != len(line):
                write_all(self._fd, line[written:])
        except OSError as exc:
            self._fail(f"{exc.strerror or exc} (errno {exc.errno})")
        self._prev = chain
        if self._off:  # (nothing to sync, nothing to time: the common line of `off`)
            self._unsynced += 1
        else:
            self._written(timestamp)

    def _written(self, timestamp: Any) -> None:
        """One more line in the file: sync it as the durability mode says."""
        if self._group is not None:
            self._group.written += 1  # synced by the caller's wait_durable, outside its lock
            return
        mode = self.durability.mode
        if mode == "event":
            self._guard(self._fsync)
            return
        self._unsynced += 1
        if mode == "batch" and (
            self._unsynced >= self.durability.events or self._batch_due(timestamp)
        ):
            self._sync_now()

    def _batch_due(self, timestamp: Any) -> bool:
        """Has event time moved ``ms`` past the first unsynced line's timestamp?"""
        if isinstance(timestamp, datetime):
            ts = timestamp
        elif isinstance(timestamp, str):
            try:
                ts = datetime.fromisoformat(timestamp)
            except ValueError:
                return False
        else:
            return False
        if ts.tzinfo is None:
            return False
        start = self._batch_start
        if start is None:
            self._batch_start = ts
            return False
        return (ts - start).total_seconds() * 1000 >= self.durability.ms

    def _guard(self, op: Callable[[int], object]) -> None:
        assert self._fd is not None
        try:
            op(self._fd)
        except OSError as exc:
            self._fail(f"{exc.strerror or exc} (errno {exc.errno})")

    def _fail(self, why: str) -> NoReturn:
        self._failed = why
        error = JournalWriteError(
            f"cannot record in journal {self.path}: {why}; this controller accepts no more "
            "events (fail closed): close it and recover from the journal"
        )
        if self._group is not None:  # no line is synced any more: nobody may wait for one
            self._group.fail(error)
        raise error

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


def journal_sink(
    journal: str | os.PathLike[str] | list[dict[str, Any]] | JournalSink | None,
    durability: Durability | str,
    checkpoint_every: int | None,
) -> JournalSink | None:
    """A controller's journal: a path or a list becomes a :class:`JournalWriter`; any
    other sink (or ``None``) is used as it is."""
    if journal is None or not isinstance(journal, str | os.PathLike | list):
        return journal
    return JournalWriter(journal, durability=durability, checkpoint_every=checkpoint_every)


def journal_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one journal line."""
    text = files("policy_engine").joinpath("schemas/journal.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_EVERY",
    "CHECKPOINT_HEAD",
    "Durability",
    "JournalError",
    "JournalExistsError",
    "JournalLockedError",
    "JournalSink",
    "JournalWriteError",
    "JournalWriter",
    "TornJournalError",
    "durability_of",
    "journal_schema",
    "journal_sink",
    "loads",
    "read_events",
    "torn_message",
]
