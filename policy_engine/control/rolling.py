"""Sliding aggregates in amortized constant time: the least or largest quantity and the
drawdown of a running total, over a queue whose entries leave in the order they came.

Both are exact on integers (micro-units) and keep no more than the window needs:

- :class:`Extreme` is a monotonic deque: an entry that can never again be the least (or
  largest) while it is in the window (a later one is at most as small) is dropped when the
  later one arrives. Each entry is pushed and popped at most once.
- :class:`Drawdown` keeps the running total's points in a two-stack queue whose stacks
  carry the aggregate ``(highest, lowest, largest fall)`` of their points; the aggregate of
  two runs in time order is ``max(fall_a, fall_b, highest_a - lowest_b)``, an associative
  combination, so a pop refills the front stack once per point. A drawdown has no smaller
  exact summary: any point may become the window's peak again once older ones left.

Nothing here reads a clock; entries are identified by their position in the windows' log.
"""

from __future__ import annotations

from collections import deque

# (highest, lowest, largest fall) of a run of points, in time order
_Run = tuple[int, int, int]


def _join(a: _Run, b: _Run) -> _Run:
    """The aggregate of run ``a`` followed by run ``b``."""
    return (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2], a[0] - b[1]))


class Extreme:
    """The least (``least=True``) or largest quantity of the entries in a window."""

    __slots__ = ("least", "queue")

    def __init__(self, least: bool) -> None:
        self.least = least
        self.queue: deque[tuple[int, int]] = deque()  # (position, units), the candidates

    def push(self, position: int, units: int) -> None:
        queue = self.queue
        if self.least:
            while queue and queue[-1][1] >= units:
                queue.pop()
        else:
            while queue and queue[-1][1] <= units:
                queue.pop()
        queue.append((position, units))

    def leave(self, position: int) -> None:
        """The entry at ``position`` (the oldest in the window) left it."""
        if self.queue and self.queue[0][0] == position:
            self.queue.popleft()

    def value(self) -> int | None:
        return self.queue[0][1] if self.queue else None


class Drawdown:
    """The largest fall of the running total of the entries in a window (in time order,
    starting from 0) below its highest point so far."""

    __slots__ = ("back", "back_run", "entries", "front", "total")

    def __init__(self) -> None:
        self.total = 0  # the running total since this structure was made (only falls matter)
        self.front: list[tuple[int, _Run]] = [(0, (0, 0, 0))]  # the base point 0
        self.back: list[int] = []
        self.back_run: _Run | None = None
        self.entries = 0

    def push(self, units: int) -> None:
        self.total = point = self.total + units
        self.back.append(point)
        run = (point, point, 0)
        self.back_run = run if self.back_run is None else _join(self.back_run, run)
        self.entries += 1

    def leave(self) -> None:
        """The oldest entry left: the point before it (the window's base) goes."""
        if not self.front:
            run: _Run | None = None
            for point in reversed(self.back):  # youngest first: each run is its suffix
                own = (point, point, 0)
                run = own if run is None else _join(own, run)
                self.front.append((point, run))
            self.back.clear()
            self.back_run = None
        self.front.pop()
        self.entries -= 1

    def value(self) -> int | None:
        if not self.entries:
            return None
        runs = [run for run in (self.front[-1][1] if self.front else None, self.back_run) if run]
        run = runs[0] if len(runs) == 1 else _join(runs[0], runs[1])
        return run[2]


__all__ = ["Drawdown", "Extreme"]
