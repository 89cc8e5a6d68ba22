"""Policy reloads of the in-process controller: from a file, from a compiled policy, watched.

:class:`Reloading` is a base of :class:`~.controller.PortfolioController`, kept in its
own module so that each stays readable. The rules are the core's
(:meth:`~.core.ControlCore.reload_refusal`); this is the shell's side: read the
file (bounded), journal the policy put in force, log and record a refusal, and
own the file watchers that call :meth:`Reloading.reload`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..document.yaml_source import read_policy_bytes
from ..engine.policy import Policy, load_policy_text
from .base import Outputs
from .core import ControlCore
from .events import Record, policy_event
from .watcher import PolicyWatcher

_logger = logging.getLogger("policy_engine")


def _read_file(path: str) -> bytes:
    return read_policy_bytes(path)  # bounded: a journal may name any path


class Reloading:
    """Reloads and watchers, over the controller's lock, core, journal and record sink."""

    # What the controller provides (set in its __init__, or its methods).
    _lock: threading.RLock
    _core: ControlCore
    _sink: Callable[[Record], None] | None
    _watchers: list[PolicyWatcher]

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._core.policy

    if TYPE_CHECKING:  # the controller's own journal write and output hand-off

        def _write(self, event: dict[str, Any]) -> None: ...
        def _run(self, out: Outputs) -> Outputs: ...

    @staticmethod
    def _teach() -> bool:
        return _logger.isEnabledFor(logging.INFO)

    def reload(self, path: str | os.PathLike[str] | None = None) -> Record:
        """Swap in a new policy version atomically, keeping the live state.

        Refused, with the old policy kept in force and a record with ``ok: false`` and the
        reason: a file that fails to load (or does not match its declared `integrity`),
        changed content whose `version` did not go up, or a policy that does not declare
        the mode an override in force names. The same content again changes nothing.
        """
        target = str(path if path is not None else self.policy.path)
        try:
            policy = load_policy_text(_read_file(target), target)
        except Exception as exc:
            return self._refuse_reload(target, str(exc))
        return self.use_policy(policy)

    def use_policy(self, policy: Policy) -> Record:
        """Put a compiled policy in force (what ``reload`` does after loading), under the
        same rules as ``reload``."""
        with self._lock:
            refusal = self._core.reload_refusal(policy)
            if refusal == "unchanged":
                return self._core.reload_record(policy.path, None)
            if refusal is not None:
                return self._refuse_reload(policy.path, refusal)
            self._write(policy_event(policy))
            return self._run(self._core.use_policy(policy, teach=self._teach())).records[-1]

    def _refuse_reload(self, path: str, error: str) -> Record:
        rec = self._core.reload_record(path, error)
        _logger.error(
            "[RISK:POLICY] reload of %s refused, keeping %s: %s", path, self.policy, error
        )
        if self._sink is not None:
            self._sink(rec)
        return rec

    def watch(
        self, path: str | os.PathLike[str] | None = None, interval: float = 1.0
    ) -> PolicyWatcher:
        """Start a polling watcher that reloads the policy file when it changes; it stops
        with :meth:`close`."""
        watcher = PolicyWatcher(self, path if path is not None else self.policy.path, interval)
        watcher.start()
        return watcher

    def attach(self, watcher: PolicyWatcher) -> None:
        """Stop ``watcher`` when this controller closes (a started watcher attaches itself)."""
        if watcher not in self._watchers:
            self._watchers.append(watcher)

    def detach(self, watcher: PolicyWatcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)


__all__ = ["Reloading"]
