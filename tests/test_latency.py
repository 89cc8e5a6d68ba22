"""The decision latency histogram counts latencies in batches (issue 18: metrics cost): the
counts per bucket and the sum must be exactly those of bucketing each latency as it came,
whether a scrape reads it mid-batch or batches filled and flushed on their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from policy_engine import PortfolioController, load_policy_text
from policy_engine.control.latency import BUCKETS, FLUSH_EVERY, Latencies
from policy_engine.control.metrics import ControlMetrics

POLICY = """\
api_version: policy-engine/v1
name: latency
version: 1
strategies:
  S: {max_trades: 1000000}
rules:
  - id: small
    require: intent.requested_risk_abs <= 1000
"""


def _latencies(n: int) -> list[int]:
    """Edge values (0, 1, powers of two and their neighbours) and a spread of others."""
    edges = [0, 1, 2, 3, 511, 512, 513, 1023, 1024, 1025, 2**30, 2**30 + 1, 2**40]
    return [edges[i % len(edges)] if i % 3 else (i * 7919) % 5_000_000 for i in range(n)]


def _eager(latencies: list[int]) -> tuple[list[int], int]:
    """What the histogram held when each latency was bucketed as it came."""
    counts = [0] * BUCKETS
    for ns in latencies:
        counts[(ns - 1).bit_length()] += 1
    return counts, sum(latencies)


def test_batched_counts_equal_counting_each_latency() -> None:
    values = _latencies(2 * FLUSH_EVERY + 17)
    lat = Latencies()
    for i, ns in enumerate(values):
        lat.pending.append(ns)
        if len(lat.pending) >= FLUSH_EVERY:
            lat.flush()
        if i in (5, FLUSH_EVERY + 3):  # a scrape mid-batch reads everything so far
            assert lat.read() == _eager(values[: i + 1])
    assert lat.read() == _eager(values)
    assert lat.read() == _eager(values)  # reading twice counts nothing twice
    assert lat.pending == []


def _histogram(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {
        (s.name + s.labels.get("le", "")): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "policy_engine_decision_seconds"
        for s in family.samples
    }


def test_the_scraped_histogram_is_the_eager_one() -> None:
    """ControlMetrics.decided over more than two batches: the exposed buckets (cumulative,
    512 ns .. 2**30 ns, +Inf), count and sum are those of the eager histogram."""
    with PortfolioController(load_policy_text(POLICY), equity=1e6, clock=None) as ctl:
        decision = ctl.request_allocation(
            {
                "intent_id": "i1",
                "strategy": "S",
                "symbol": "X",
                "side": "long",
                "requested_risk_abs": 10.0,
                "timestamp": "2026-03-02T10:00:00+00:00",
            }
        )
    registry = CollectorRegistry()
    metrics = ControlMetrics(registry)
    values = _latencies(2 * FLUSH_EVERY + 5)
    for ns in values:
        metrics.decided(decision, ns)
    counts, total = _eager(values)
    want = {}
    cumulative = sum(counts[:9])
    for b in range(9, 31):
        cumulative += counts[b]
        want[f"policy_engine_decision_seconds_bucket{2**b / 1e9!r}"] = float(cumulative)
    want["policy_engine_decision_seconds_bucket+Inf"] = float(len(values))
    want["policy_engine_decision_seconds_count"] = float(len(values))
    want["policy_engine_decision_seconds_sum"] = total / 1e9
    got = _histogram(registry)
    got.pop("policy_engine_decision_seconds_created", None)
    assert got == want
