"""A policy file watcher: reload the controller when the file's content changes.

Polling with the standard library (no extra dependency): compare the file's
content hash every ``interval`` seconds on a daemon thread (or once, synchronously, with :meth:`PolicyWatcher.poll`). A
file that fails to load is reported once per change and the old policy stays
in force (the controller refuses it). Size and modification time are not
consulted: a same-size rewrite within one tick of a coarse-timestamp filesystem
keeps both, and a policy file is small (bounded by the loader), so hashing it
once a second costs little.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..document.yaml_source import read_policy_bytes

if TYPE_CHECKING:
    from ..engine.policy import Policy

logger = logging.getLogger("policy_engine")

Record = dict[str, Any]


class WatchTarget(Protocol):
    """What a watcher reloads: the controller, seen through three methods."""

    @property
    def policy(self) -> Policy: ...

    def reload(self, path: str | os.PathLike[str] | None = None) -> Record: ...

    def attach(self, watcher: PolicyWatcher) -> None: ...

    def detach(self, watcher: PolicyWatcher) -> None: ...


class PolicyWatcher:
    """Polls a policy file and reloads ``target`` when its content changes.

    ``poll()`` does one check synchronously (returns the reload record or
    ``None``); ``start()`` runs it every ``interval`` seconds on a daemon thread
    until ``stop()`` (the target's ``close()`` stops it too).
    """

    def __init__(
        self,
        target: WatchTarget,
        path: str | os.PathLike[str],
        interval: float = 1.0,
        on_reload: Callable[[Record], None] | None = None,
    ) -> None:
        self.target = target
        self.path = str(path)
        self.interval = interval
        self.on_reload = on_reload
        self._seen: str | None = target.policy.content_hash
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> Record | None:
        """Check the file once; reload if its content changed since the last look."""
        try:
            digest = "sha256:" + hashlib.sha256(read_policy_bytes(self.path)).hexdigest()
        except OSError:
            return None
        if digest == self._seen:
            return None
        self._seen = digest
        rec = self.target.reload(self.path)
        if self.on_reload is not None:
            self.on_reload(rec)
        return rec

    def start(self) -> None:
        if self._thread is not None:
            return
        self.target.attach(self)
        self._thread = threading.Thread(target=self._run, name="policy-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:
                logger.exception("policy watcher failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.target.detach(self)


__all__ = ["PolicyWatcher", "WatchTarget"]
