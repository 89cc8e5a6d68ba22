"""The decision latency histogram of :class:`~.metrics.ControlMetrics`, for an append each.

A decision's latency (nanoseconds) falls in bucket ``(ns - 1).bit_length()``, i.e.
``(2**(b-1), 2**b]`` ns. Bucketing each one as it came (a subtraction, ``bit_length``
and two list updates in Python) was most of what metrics added to ``request_allocation``;
a latency is now appended to a plain list, and the list is sorted into the buckets in C
(``collections.Counter`` over ``map(int.bit_length, ...)``) once it holds
:data:`FLUSH_EVERY` latencies or when the histogram is read (a scrape). The counts and the
sum are exactly those of bucketing each latency as it came.

Not thread-safe by itself: the metrics update and read it under the controller's lock.
"""

from __future__ import annotations

from collections import Counter

FLUSH_EVERY = 4_096  # latencies held before they are bucketed (about 100 KB at most)
BUCKETS = 64  # bucket b holds (2**(b-1), 2**b] ns; 2**63 ns is about 292 years

_MINUS_ONE = (-1).__add__


class Latencies:
    """Latencies waiting in ``pending`` (append to it; :meth:`full` says when to
    :meth:`flush`), and the counts per bucket and the sum of those already bucketed."""

    __slots__ = ("counts", "pending", "total_ns")

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.counts = [0] * BUCKETS
        self.total_ns = 0

    def flush(self) -> None:
        """Bucket every pending latency."""
        pending = self.pending
        if not pending:
            return
        counts = self.counts
        for bucket, n in Counter(map(int.bit_length, map(_MINUS_ONE, pending))).items():
            counts[bucket] += n
        self.total_ns += sum(pending)
        pending.clear()

    def read(self) -> tuple[list[int], int]:
        """(the count per bucket, the sum in ns) of every latency appended so far."""
        self.flush()
        return self.counts[:], self.total_ns


__all__ = ["BUCKETS", "FLUSH_EVERY", "Latencies"]
