"""Group commit: threads that journal concurrently share one ``fdatasync``.

With durability ``event`` no decision is returned before its journal line is on disk.
Syncing inside the controller's lock made every decision pay a whole ``fdatasync``
(milliseconds on a real disk) while every other thread waited for the lock. Instead,
the line is written and the event applied under the lock (so the order of the lines is
the order of application), the lock is released, and only then does the thread wait
until the disk holds every line up to its own (its *ticket*): the first waiter to find
no sync running syncs for everyone written so far, the others wait for it and usually
find their line covered. One ``fdatasync`` serves as many decisions as were made while
the previous one ran.

What the caller sees is unchanged: a call returns only once its line, and every line
before it, is on disk. What changes is that the state in memory may hold an event whose
line is written but not yet synced: a thread that reads that state (a decision, a query)
waits on leaving the lock for everything written so far (:class:`DurableSection`), so
nothing it returns rests on a line that is not on disk. A sync that fails fails the
writer closed (every later event is refused) and raises in every thread waiting on it.

Also here: the durability settings, opening and locking a journal file, watching its path,
the raw writes.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, cast


@dataclass(frozen=True)
class Durability:
    """When journal lines are forced to disk.

    ``mode``: ``event`` (fdatasync after every line, before the event is applied),
    ``batch`` (after ``events`` unsynced lines, or once a line's timestamp is ``ms``
    milliseconds of event time after the first unsynced line's; and on close), or
    ``off`` (never: lines reach the page cache and survive a crash of the process,
    not of the machine).
    """

    mode: Literal["event", "batch", "off"] = "event"
    events: int = 256
    ms: float = 100.0

    def __post_init__(self) -> None:
        if self.mode not in ("event", "batch", "off"):
            raise ValueError(f"durability mode must be event, batch or off, not {self.mode!r}")
        if self.events < 1 or not self.ms >= 0:
            raise ValueError("a batch needs events >= 1 and ms >= 0")


def durability_of(value: Durability | str, events: int = 256, ms: float = 100.0) -> Durability:
    """A :class:`Durability` from itself, or from a mode's name and the batch bounds."""
    if isinstance(value, Durability):
        return value
    if value not in ("event", "batch", "off"):
        raise ValueError(f"durability mode must be event, batch or off, not {value!r}")
    return Durability(cast(Literal["event", "batch", "off"], value), events=events, ms=ms)


class GroupSync:
    """Counts the lines written and the lines known to be on disk; :meth:`wait` makes
    sure a ticket's lines are synced, sharing one sync among the threads waiting.

    Each waiting thread sleeps on a gate of its own: a sync that ends wakes exactly the
    threads whose lines it covered, and one more (whose line is written but not covered)
    to run the next sync for everyone written since. (A ``Condition.notify_all`` woke every
    waiter after every sync; the ones not covered went back to sleep: on a loaded machine
    a wake-up costs tens of microseconds, as much as a decision.)"""

    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync  # forces every line written so far to disk (raises if it cannot)
        self._lock = threading.Lock()
        self.written = 0  # lines written (counted by the writer, under the shell's lock)
        self.synced = 0  # lines on disk
        self._leader = False
        self._error: BaseException | None = None
        self._waiting: list[tuple[int, threading.Lock]] = []  # (ticket, a held gate)

    def wait(self, ticket: int) -> None:
        """Return once the first ``ticket`` lines are on disk (raise if the sync failed)."""
        if self.synced >= ticket:
            return
        lock = self._lock
        while True:
            with lock:
                if self.synced >= ticket:
                    return
                if self._error is not None:
                    raise self._error
                # (a line still waiting behind a checkpoint in flight: wake() will say)
                if not self._leader and self.written >= ticket:
                    self._leader = True
                    target = self.written  # every line counted here is written: the sync covers it
                    break
                gate = threading.Lock()
                gate.acquire()
                self._waiting.append((ticket, gate))
            gate.acquire()  # released by the sync that covers this line, or to lead the next
        try:
            self._sync()
        except BaseException as exc:
            with lock:
                self._error = exc
                self._leader = False
                self._wake_all()
            raise
        with lock:
            self.synced = max(self.synced, target)
            self._leader = False
            self._wake(self.synced)

    def _wake(self, covered: int) -> None:
        """(Under the lock.) Open the gates of the waiters whose lines are on disk, and of
        one whose line is written but not covered, to run the next sync."""
        rest: list[tuple[int, threading.Lock]] = []
        leader = False
        for ticket, gate in self._waiting:
            if ticket <= covered:
                gate.release()
            elif not leader and ticket <= self.written:
                leader = True
                gate.release()
            else:
                rest.append((ticket, gate))
        self._waiting = rest

    def _wake_all(self) -> None:
        """(Under the lock.) Every waiter looks again (a failure, or lines written late)."""
        for _ticket, gate in self._waiting:
            gate.release()
        self._waiting = []

    @property
    def waiting(self) -> int:
        """Threads asleep until a sync covers their line (or they are to run one)."""
        return len(self._waiting)

    def wake(self) -> None:
        """More lines were written (the lines that waited behind a checkpoint)."""
        with self._lock:
            self._wake_all()

    def fail(self, error: BaseException) -> None:
        """The lines will never be written: every waiter raises ``error``."""
        with self._lock:
            self._error = error
            self._wake_all()


class _Ticketed(Protocol):
    def ticket(self) -> int: ...

    def wait_durable(self, ticket: int) -> None: ...


class DurableSection:
    """The controller's lock for a journal with group commit: on its outermost release it
    waits (outside the lock) until every line written so far is on disk."""

    def __init__(self, lock: threading.RLock, writer: _Ticketed) -> None:
        self._lock = lock
        self._writer = writer
        self._depth = 0  # changed only by the thread holding the lock

    def __enter__(self) -> None:
        self._lock.acquire()
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth:
            self._lock.release()
            return
        ticket = self._writer.ticket()  # read under the lock: all this thread may have seen
        self._lock.release()
        self._writer.wait_durable(ticket)


# How often (in lines) a writer with durability ``batch`` or ``off`` checks that its path
# still names its file: a ``stat`` costs about as much as the line's write and hash
# together (2-5 us), and neither mode promises more than the page cache per line.
PATH_CHECK_EVERY = 64


class PathWatch:
    """Notices that a journal's path no longer names the file a writer appends to (the
    file was deleted, renamed or replaced): lines written after that would be lost or land
    under another name. The writer counts ``left`` down to the next check; :meth:`moved`
    checks (and restarts the count), saying why the path is wrong (``None`` while it is
    right)."""

    def __init__(self, path: Path, fd: int, every: int) -> None:
        stat = os.fstat(fd)
        self.path = path
        self.identity = (stat.st_dev, stat.st_ino)
        self.size = stat.st_size
        self.every = every  # check before every `every`-th line (1: before every line)
        self.left = 0  # lines until the next check (0: check before the next line)

    def moved(self) -> str | None:
        self.left = self.every - 1  # (1: before every line)
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return "the path no longer names the file this writer appends to: deleted or renamed"
        except OSError as exc:
            return f"cannot stat it: {exc.strerror or exc}"
        if (stat.st_dev, stat.st_ino) != self.identity:
            return "the path no longer names the file this writer appends to: deleted or renamed"
        return None


def open_locked(path: Path, locked: Callable[[str], Exception]) -> int:
    """A descriptor appending to ``path`` under an exclusive ``flock`` (``locked(message)``
    is raised when another writer holds it; OSError when it cannot be opened)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise locked(
            f"journal {path} is locked by another writer (a controller in this or another "
            "process): one journal has one writer"
        ) from None
    return fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def sync_directory(path: Path) -> None:
    try:
        dfd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass  # some filesystems cannot sync a directory; the file itself is synced
    finally:
        os.close(dfd)


__all__ = [
    "PATH_CHECK_EVERY",
    "Durability",
    "DurableSection",
    "GroupSync",
    "PathWatch",
    "durability_of",
    "open_locked",
    "sync_directory",
    "write_all",
]
