"""Policy reloads of the in-process controller: from a file, from a compiled policy, watched.

:class:`Reloads` is a collaborator of :class:`~.controller.PortfolioController`,
handed what it uses (the core to ask, the controller's way to take an event, its way
to hand outputs on) rather than a base that reaches for the controller's fields. The
rules are the core's (the refusal of a ``policy`` event); this is the shell's side:
read the file (bounded), put the policy in force through the shell, report a refusal,
and own the file watchers that call :meth:`Reloads.reload`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ..document.yaml_source import read_policy_bytes
from ..engine.policy import Policy, load_policy_text
from .core import ControlCore, Outputs
from .events import PolicyEvent, Record
from .watcher import PolicyWatcher, WatchTarget


def read_file(path: str) -> bytes:
    return read_policy_bytes(path)  # bounded: a journal or an events file may name any path


class Reloads:
    """Reloads and watchers over a core: ``lock`` is the controller's, ``submit`` takes an
    event through its shell, ``handoff`` gives refused outputs to its sinks."""

    def __init__(
        self,
        core: ControlCore,
        lock: threading.RLock,
        submit: Callable[[PolicyEvent], Outputs],
        handoff: Callable[[Outputs], Outputs],
    ) -> None:
        self._core = core
        self._lock = lock
        self._submit = submit
        self._handoff = handoff
        self.watchers: list[PolicyWatcher] = []

    def reload(self, path: str | os.PathLike[str] | None = None) -> Record:
        """Load ``path`` (the policy's own file by default) and put it in force, as
        :meth:`use_policy`; a file that fails to load is refused (``ok: false``)."""
        target = str(path if path is not None else self._core.policy.path)
        try:
            policy = load_policy_text(read_file(target), target)
        except Exception as exc:
            return self._handoff(self._core.refused_reload(target, str(exc))).records[-1]
        return self.use_policy(policy)

    def use_policy(self, policy: Policy) -> Record:
        """Put ``policy`` in force through the shell; the same content again is answered
        (``unchanged``) without a record to the sinks, as it changes nothing."""
        event = PolicyEvent(policy)
        with self._lock:
            same = self._core.refusal(event)
            if same.finding == "unchanged" and same.refused is not None:
                return same.refused.records[-1]
            return self._submit(event).records[-1]

    def watch(
        self, target: WatchTarget, path: str | os.PathLike[str] | None, interval: float
    ) -> PolicyWatcher:
        """Start a polling watcher that reloads ``target`` when the file changes."""
        where = path if path is not None else self._core.policy.path
        watcher = PolicyWatcher(target, where, interval)
        watcher.start()
        return watcher

    def attach(self, watcher: PolicyWatcher) -> None:
        if watcher not in self.watchers:
            self.watchers.append(watcher)

    def detach(self, watcher: PolicyWatcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)


__all__ = ["Reloads", "read_file"]
