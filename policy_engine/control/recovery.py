"""Recovery: the exact core a journal's events produce, and the journal ready to continue.

After a crash (or a clean stop) :func:`recover_core` locks the journal, checks
the hash chain of every line (refusing a torn last line: `policy journal
repair` first, explicitly), restores the last checkpoint (the core's exact
snapshot, whose line the chain covers and whose place in the journal must
match the events before it), replays only the events after it, and returns
the core with a writer positioned to append the next line to the same chain.
Without a checkpoint it replays from the opening policy event. The result is
the state the crashed controller had after its last journaled event
(``core.snapshot()`` equal, byte for byte): every journaled event is applied,
including one whose decision the crashed process never returned (a
conservative choice: a reservation nobody knows of expires by its TTL).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from ..document.yaml_source import read_policy_bytes
from .chain import unseal
from .core import ControlCore
from .events import EventError
from .journal import CHECKPOINT_EVERY, CHECKPOINT_HEAD, Durability, JournalWriter
from .replay import start
from .verify import Scan, checkpoint_core, older_format, parse, scan

if TYPE_CHECKING:
    from ..engine.policy import Policy
    from .controller import PortfolioController, RecordSink
    from .events import Clock


class RecoverOptions(TypedDict, total=False):
    """What ``PortfolioController.recover`` passes on to the controller it builds."""

    records: RecordSink
    clock: Clock | None
    max_skew: timedelta
    durability: Durability | str
    checkpoint_every: int | None


@dataclass(frozen=True)
class Recovery:
    """What a recovery found and did."""

    path: str
    events: int  # events in the journal (the next event's seq)
    lines: int  # complete lines, checkpoints included
    checkpoint_line: int | None  # the checkpoint restored (None: replayed from the start)
    replayed: int  # events applied after it (all of them without a checkpoint)
    head: str  # the chain value the next line links to
    seconds: float  # wall time of the recovery


def recover_core(
    path: str | os.PathLike[str],
    durability: Durability | str = "event",
    checkpoint_every: int | None = CHECKPOINT_EVERY,
    read: Callable[[str], bytes] = read_policy_bytes,
) -> tuple[ControlCore, JournalWriter, Recovery]:
    """The core ``path``'s events produce, a locked writer that continues it, and a report.

    Raises :class:`~.journal.JournalLockedError` while another writer holds the
    journal, :class:`~.journal.TornJournalError` for a torn last line,
    :class:`~.verify.JournalIntegrityError` for a broken chain or a checkpoint that
    does not fit, and :class:`~.events.EventError` for an empty or unchained journal.
    """
    t0 = time.perf_counter()
    where = os.fspath(path)
    writer = JournalWriter(
        where, durability=durability, checkpoint_every=checkpoint_every, resume=True
    )
    try:
        result = scan(where)
        if result.torn:
            raise result.torn_error()
        if not result.events:
            raise EventError(f"journal {where} holds no event: start a new controller on it")
        if not result.chained or result.head is None:
            raise EventError(
                f"journal {where} is unchained (written before journals were chained): it "
                "replays (`policy replay`) but cannot be verified or continued; start a new journal"
            )
        core, replayed, cp_line = _rebuild(result, read)
        if core.seq != result.events:
            raise EventError(
                f"journal {where}: {result.events} events rebuilt a core at event {core.seq}"
            )
        if cp_line is None:
            replayed = result.events  # the opening policy event too
        writer.continue_after(result.head, replayed)
    except BaseException:
        writer.close()
        raise
    report = Recovery(
        where,
        result.events,
        result.lines,
        cp_line,
        replayed,
        result.head,
        time.perf_counter() - t0,
    )
    return core, writer, report


def recovered(
    factory: type[PortfolioController],
    path: str | os.PathLike[str],
    policy: Policy | str | os.PathLike[str] | None,
    **options: Unpack[RecoverOptions],
) -> PortfolioController:
    """What ``PortfolioController.recover`` returns: the controller around the recovered
    core, appending to the same journal; then ``policy`` put in force as ``use_policy``
    would (a new version is journaled like a reload; the same one changes nothing)."""
    from ..engine.policy import Policy, load_policy

    durability = options.pop("durability", "event")
    every = options.pop("checkpoint_every", CHECKPOINT_EVERY)
    core, writer, report = recover_core(path, durability, every)
    try:
        ctl = factory(core.policy, journal=writer, resume=core, **options)
    except BaseException:
        writer.close()  # release the lock: nothing was written
        raise
    ctl.recovery = report
    if policy is not None:
        ctl.use_policy(policy if isinstance(policy, Policy) else load_policy(os.fspath(policy)))
    return ctl


def _rebuild(result: Scan, read: Callable[[str], bytes]) -> tuple[ControlCore, int, int | None]:
    """(core, events applied after the checkpoint, the checkpoint's line or None)."""
    where = result.path
    with open(where, "rb") as fh:
        last, held = None, None
        for candidate in reversed(result.checkpoints):
            fh.seek(candidate.offset)
            line = parse(where, candidate.line, unseal(fh.readline())[0])
            if not older_format(line):  # an older version's checkpoint: look further back
                last, held = candidate, line  # and the file is just past it
                break
        if last is None or held is None:
            fh.seek(0)
            events = _events(where, fh, 1, result.lines)
            core, pending = start(events, None)
            stream: Iterator[Mapping[str, Any]] = itertools.chain(pending, events)
            cp_line = None
        else:
            core = checkpoint_core(where, last.line, held, last.events)
            stream = _events(where, fh, last.line + 1, result.lines)
            cp_line = last.line
        replayed = 0
        step = core.replayer(records=False, read=read)  # the state is what matters here
        for event in stream:
            step(event)
            replayed += 1
    return core, replayed, cp_line


def _events(where: str, fh: Any, first: int, last: int) -> Iterator[dict[str, Any]]:
    """The events of the lines numbered ``first`` (at the file position) to ``last``, which
    the scan verified (the lock keeps other writers out meanwhile)."""
    for number, line in enumerate(fh, first):
        if number > last:
            break
        body = unseal(line)[0]
        if body[:20] != CHECKPOINT_HEAD:
            yield parse(where, number, body)


__all__ = ["RecoverOptions", "Recovery", "recover_core", "recovered"]
