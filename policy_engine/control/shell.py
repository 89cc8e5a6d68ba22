"""The one shell protocol: admit -> refuse -> journal -> apply.

Both live shells of the core, the in-process
:class:`~.controller.PortfolioController` and the Temporal
``PortfolioControlWorkflow``, take an input the same way: parsed once into a typed
event (:mod:`.events`), they hand it to :meth:`Shell.submit`, which

1. asks the shell's admission how far ahead of its clock the event is stamped
   (``ahead``: injected; the wall clock in a process, ``workflow.now()`` on Temporal,
   none in a simulation),
2. asks the core's :meth:`~.core.ControlCore.refusal` whether the event would change
   nothing (or may not be taken): then its answer is returned, nothing is journaled
   and nothing changes,
3. writes the event's journal form to the injected journal (a file, a list, the
   workflow's history journal) before the core sees it, so nothing is decided
   unrecorded (a write that fails raises, and the event is not applied),
4. applies it, handing the refusal's finding on to the step.

Steps 2 and 4 are the refusal and the step the core's one dispatch table holds for the
event's type (:meth:`~.core.ControlCore.entry`), as :meth:`~.core.ControlCore.apply` runs
them.

Pure of I/O itself: the journal and the admission are injected; what to do with the
outputs (sinks, logs, broadcasts, locks) stays with each shell.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from .core import OPTIONS, ControlCore, Refusal, StepFn
from .events import Event, Record
from .kernel import Outputs

Ahead = Callable[[datetime | None], str | None]


class Journal(Protocol):
    """Where a shell writes each accepted event, before it is applied."""

    def write(self, event: Record) -> None: ...


# What Shell.submit did: the outputs, and whether the event was accepted (journaled and
# applied) or refused (answered only). A plain pair: it is built once per event.
Handled = tuple[Outputs, bool]


class Shell:
    """Admit -> refuse -> journal -> apply over one core (see the module docstring)."""

    def __init__(
        self, core: ControlCore, journal: Journal | None = None, ahead: Ahead | None = None
    ) -> None:
        self.core = core
        self.journal = journal
        self.ahead = ahead
        # A journal that takes typed events (the file writer: an intent goes straight to
        # its line) gets them; any other gets each event's journal form.
        typed = getattr(journal, "write_event", None)
        self._write: Callable[[Event], None] | None = (
            None
            if journal is None
            else typed
            if typed is not None
            else lambda event: journal.write(event.journal())
        )
        # The core's refusal and step per event type, taken from its one table once (a call
        # through ControlCore.refusal and .apply per event cost about 1 us a pair).
        self._entries: dict[type, tuple[Refusal, StepFn]] = {}

    def submit(
        self,
        event: Event,
        *,
        teach: bool = False,
        decide: bool = True,
        decision_record: bool = True,
        admit: bool = True,
    ) -> Handled:
        """Take ``event`` (the caller serialises calls: a lock). An intent's decision is in
        ``out.decision`` with ``decide``; its record is built with ``decision_record``.
        EventError when the event may not be taken at all (say, stamped too far ahead).
        ``admit=False``: the shell's own event (a timer's tick), not an input to admit."""
        kind = type(event)
        entry = self._entries.get(kind)
        if entry is None:
            entry = self._entries[kind] = self.core.entry(kind)
        ahead = None if self.ahead is None or not admit else self.ahead(event.timestamp)
        ruling = entry[0](event, ahead, teach)
        if ruling.refused is not None:
            return ruling.refused, False
        if self._write is not None:
            self._write(event)
        return entry[1](event, ruling, OPTIONS[teach, True, decision_record, decide]), True


__all__ = ["Ahead", "Handled", "Journal", "Shell"]
