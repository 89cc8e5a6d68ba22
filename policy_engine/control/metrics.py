"""Prometheus metrics of a live control plane: a collector over counters kept by hand.

:class:`ControlMetrics` is a collaborator a shell injects
(``PortfolioController(..., metrics=ControlMetrics(registry))``). It registers
itself with the registry it is given (nothing global by default) and is told what
happens through a narrow interface:

- :meth:`ControlMetrics.decided`: one decision (the ``AllocationDecision``) and how
  long the call took, in nanoseconds;
- :meth:`ControlMetrics.lifecycle`: every other record (fill, cancel, close,
  expire, equity, mode, reload); decision records are ignored (the decision
  counted them);
- :meth:`ControlMetrics.watch`: how to read the live state at scrape time.

The hot path is ``decided``: it must add under 5% to ``request_allocation``
(``benchmarks/run.py`` measures it), so it extends a run of equal decisions and appends
the latency to a list (bucketed in C later: :mod:`.latency`). ``prometheus_client``'s
``Counter.labels().inc()`` and ``Histogram.observe()`` take a lock and walk the buckets
on every call; the families are built from plain counters when scraped (the library's
custom-collector pattern), under the controller's lock, as every update is. Gauges (heat, reserved and active risk, positions,
caps, mode, envelope, equity) are read from the live state at scrape time: no
cost per decision at all.

Labels are bounded: decisions carry ``code``, ``rule`` and ``mode`` (all named by the
policy); buckets (``scope`` strategy, symbol or cohort, ``bucket`` its name) are
labelled by name for every name the policy declares and for the first
``max_buckets`` other names with a live trade per scope (sorted within one scrape,
then kept: a series once shown stays, at 0 when its bucket is gone); the rest are
summed into ``other`` (with a bucket really named so). A scrape reads only the
buckets live trades count in (:func:`.scrape.copy_live`). No intent id or free
text is ever a label.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry

from ..decision_codes import APPROVED_FULL
from ..decision_codes import EVAL_ERROR as EVAL_ERROR_CODE
from ..engine.caps import Caps
from ..engine.contracts import RISK_SCALE, AllocationDecision, to_units
from ..engine.policy import Policy
from ..engine.runtime import MODE_FROM_OVERRIDE
from .counters import AMOUNTS, COUNTERS
from .events import Record
from .latency import FLUSH_EVERY, Latencies
from .scrape import BUCKET_GAUGES, Live, MetricsServer, core_reader, serve_metrics, state_reader
from .state import Bucket, PortfolioState

if TYPE_CHECKING:
    from .core import ControlCore

logger = logging.getLogger("policy_engine")
PREFIX = "policy_engine"
OTHER = "other"
NO_RULE = "none"  # the rule label of a decision no rule made (approved in full, refused input)
DEFAULT_MAX_BUCKETS = 100
_SCALE = float(RISK_SCALE)
# Latency buckets are powers of two nanoseconds (.latency): the ones a scrape shows.
_FIRST_BUCKET, _LAST_BUCKET = 9, 30  # 512 ns .. about 1.07 s, then +Inf


class _Names:
    """The bucket names of one scope that get their own label (see the module doc)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.admitted: set[str] = set()
        self.undeclared = 0  # admitted names the policy does not declare

    def label(self, name: str, declared: bool) -> str:
        if name in self.admitted:
            return name
        if name == OTHER:
            return OTHER
        if not declared:
            if self.undeclared >= self.limit:
                return OTHER
            self.undeclared += 1
        self.admitted.add(name)
        return name


def _add_into(total: Bucket, bucket: Bucket) -> None:
    total.set_counters([x + y for x, y in zip(total.counters(), bucket.counters(), strict=True)])


class _Counts(NamedTuple):
    """The counters, copied at a scrape."""

    decisions: dict[tuple[str, str | None, str], int]
    latency: list[int]
    latency_ns: int
    clips: dict[str, tuple[int, int]]
    rejected: dict[str, int]
    events: dict[tuple[str, str, str], int]
    units: dict[tuple[str, str, str], int]


class ControlMetrics:
    """The control plane's metrics, registered in ``registry`` (a fresh
    :class:`~prometheus_client.CollectorRegistry` when none is given; never the global
    one unless you pass it). ``max_buckets`` bounds the undeclared strategy, symbol and
    cohort names labelled one by one, per scope."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_buckets = max_buckets
        # Every update happens under ``lock`` (the controller's, once attached) and a scrape
        # copies the counters under it too, so a scrape never sees half an update.
        self.lock = threading.RLock()
        self._decisions: defaultdict[tuple[str, str | None, str], int] = defaultdict(int)
        # The current run of identical (code, rule, mode) decisions, not yet in the dict: a
        # steady stream then costs three identity checks and one add per decision.
        self._code: str | None = None
        self._rule: str | None = None
        self._mode: str | None = None
        self._run = 0
        self._latency = Latencies()
        self._pending = self._latency.pending  # a decision appends its latency here
        self._clips: dict[str, list[int]] = {}  # rule -> [count, units removed]
        self._rejected_units: dict[str, int] = {}  # rule (or code) -> units refused
        self._events: dict[tuple[str, str, str], int] = {}  # (metric, label, value) -> n
        self._units: dict[tuple[str, str, str], int] = {}  # (metric, label, value) -> units
        self._read: Callable[[], Live] | None = None
        self._max_buckets = max_buckets
        self._names = {scope: _Names(max_buckets) for scope in ("strategy", "symbol", "cohort")}
        self._caps: Caps | None = None
        self.registry.register(self)

    # --- what a shell tells it -----------------------------------------------------------
    def watch(self, read: Callable[[], Live]) -> None:
        """How to read the live state when scraped (:func:`core_reader`, :func:`state_reader`)."""
        self._read = read

    def attach(
        self,
        core: ControlCore,
        lock: threading.RLock,
        sink: Callable[[Record], None] | None = None,
    ) -> Callable[[Record], None]:
        """Watch ``core`` (read under ``lock``) and return the record sink that feeds
        :meth:`lifecycle` after ``sink``: what ``PortfolioController`` wires in."""
        self.lock = lock
        self.watch(core_reader(core, lock))
        lifecycle = self.lifecycle
        if sink is None:
            return lifecycle

        def both(record: Record) -> None:
            sink(record)
            lifecycle(record)

        return both

    def decided(self, decision: AllocationDecision, elapsed_ns: int) -> None:
        """Count one decision; ``elapsed_ns`` is how long the caller waited for it."""
        fields = decision.__dict__  # (a pydantic attribute goes through a __getattr__ hook)
        code, rule, mode = fields["decision_code"], fields["rule_id"], fields["mode"]
        if code is self._code and rule is self._rule and mode is self._mode:
            self._run += 1
        else:
            if self._run:
                self._decisions[str(self._code), self._rule, str(self._mode)] += self._run
            self._code, self._rule, self._mode, self._run = code, rule, mode, 1
        if code is not APPROVED_FULL and (fields["clips"] or not fields["approved"]):
            self._removed(decision)  # (it finds nothing removed for an approval in full)
        pending = self._pending
        pending.append(elapsed_ns)
        if len(pending) >= FLUSH_EVERY:
            self._latency.flush()

    def _removed(self, decision: AllocationDecision) -> None:
        """The risk a clip or a rejection took away, by the rule that took it (exact units)."""
        for clip in decision.clips:
            entry = self._clips.setdefault(clip.rule_id, [0, 0])
            entry[0] += 1
            entry[1] += to_units(clip.from_risk) - to_units(clip.to_risk)
        if not decision.approved:
            rule = decision.rule_id or decision.decision_code
            units = to_units(decision.requested_risk_abs)
            self._rejected_units[rule] = self._rejected_units.get(rule, 0) + units

    def lifecycle(self, record: Record) -> None:
        """Count one record that is not a decision (a decision record is ignored: its
        decision was counted by :meth:`decided`)."""
        kind = record.get("kind")
        if kind == "fill":
            status = str(record.get("status"))
            self._bump("fills", "status", status)
            self._add("filled_risk", "status", status, record.get("committed_risk_abs"))
            if status == "late":
                self._bump("late_fills", "after", str(record.get("late_after")))
        elif kind == "expire":
            self._bump("reservation_expiries", "", "")
            self._add("released_risk", "reason", "expired", record.get("released_risk_abs"))
        elif kind == "cancel":
            self._bump("cancels", "status", str(record.get("status")))
            self._add("released_risk", "reason", "cancelled", record.get("released_risk_abs"))
        elif kind == "close":
            self._bump("closes", "status", str(record.get("status")))
            self._add("released_risk", "reason", "closed", record.get("released_reserved_risk_abs"))
            self._add("closed_risk", "", "", record.get("released_active_risk_abs"))
        elif kind in ("equity", "mode"):
            before, after = str(record.get("mode_before")), str(record.get("mode"))
            if before != after:
                self._bump("mode_changes", "mode", after)
        elif kind == "reload":
            self._bump("reloads", "outcome", "ok" if record.get("ok") else "refused")
        elif kind in ("request_cancel", "request_modify"):  # decided requests, and refusals
            self._bump(f"{kind[8:]}_requests", "status", str(record.get("status")))
            if record.get("status") == "cancelled":
                self._add("released_risk", "reason", "cancelled", record.get("released_risk_abs"))
        elif kind == "group":
            outcome = "refused" if record.get("seq") is None else "rejected"
            self._bump("order_groups", "outcome", "approved" if record.get("approved") else outcome)

    def _bump(self, metric: str, label: str, value: str) -> None:
        key = (metric, label, value)
        self._events[key] = self._events.get(key, 0) + 1

    def _add(self, metric: str, label: str, value: str, amount: Any) -> None:
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            key = (metric, label, value)
            self._units[key] = self._units.get(key, 0) + to_units(amount)

    # --- what a scrape reads ------------------------------------------------------------
    def describe(self) -> list[Metric]:
        """Nothing up front: the registry then checks no names (they are all ours)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every metric family, built now from the counters and the live state."""
        with self.lock:
            latency, latency_ns = self._latency.read()
            counts = _Counts(
                decisions=dict(self._decisions),
                latency=latency,
                latency_ns=latency_ns,
                clips={k: (n, u) for k, (n, u) in self._clips.items()},
                rejected=dict(self._rejected_units),
                events=dict(self._events),
                units=dict(self._units),
            )
            if self._run:
                key = (str(self._code), self._rule, str(self._mode))
                counts.decisions[key] = counts.decisions.get(key, 0) + self._run
        yield from self._decision_families(counts)
        yield from self._lifecycle_families(counts)
        if self._read is None:
            return
        up = GaugeMetricFamily(
            f"{PREFIX}_live_up",
            "1 when this scrape read the live state; 0 when it could not (the state gauges "
            "are then absent).",
        )
        try:
            live = self._read()
        except Exception as exc:  # a workflow that cannot be queried must not break a scrape
            logger.warning("metrics: the live state could not be read: %s", exc)
            up.add_metric((), 0)
            yield up
            return
        up.add_metric((), 1)
        yield up
        yield from self._live_families(live)

    def _decision_families(self, counts: _Counts) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            f"{PREFIX}_decisions",
            "Decisions by decision code, deciding rule (none: approved in full or refused "
            "input) and mode.",
            labels=("code", "rule", "mode"),
        )
        errors = CounterMetricFamily(
            f"{PREFIX}_evaluation_errors",
            "Intents rejected because a rule failed to evaluate (fail closed), by rule.",
            labels=("rule",),
        )
        for (code, rule, mode), n in sorted(
            counts.decisions.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])
        ):
            decisions.add_metric((code, rule or NO_RULE, mode), n)
            if code == EVAL_ERROR_CODE:
                errors.add_metric((rule or NO_RULE,), n)
        yield decisions
        yield errors
        clips = CounterMetricFamily(
            f"{PREFIX}_clips", "Clips by the rule that clipped.", labels=("rule",)
        )
        removed = CounterMetricFamily(
            f"{PREFIX}_risk_removed",
            "Risk taken off intents (account currency), by rule and action: clip (what the "
            "clip removed) or reject (what the rejected intent requested).",
            labels=("rule", "action"),
        )
        for rule, (count, units) in sorted(counts.clips.items()):
            clips.add_metric((rule,), count)
            removed.add_metric((rule, "clip"), units / _SCALE)
        for rule, units in sorted(counts.rejected.items()):
            removed.add_metric((rule, "reject"), units / _SCALE)
        yield clips
        yield removed
        latency = counts.latency
        cumulative = sum(latency[: _FIRST_BUCKET + 1])
        buckets: list[tuple[str, float]] = []
        for b in range(_FIRST_BUCKET, _LAST_BUCKET + 1):
            if b > _FIRST_BUCKET:
                cumulative += latency[b]
            buckets.append((repr(2**b / 1e9), cumulative))
        buckets.append(("+Inf", sum(latency)))
        yield HistogramMetricFamily(
            f"{PREFIX}_decision_seconds",
            "Time to answer request_allocation (validation, lock wait, evaluation, "
            "reservation); bucket bounds are powers of two nanoseconds.",
            buckets=buckets,
            sum_value=counts.latency_ns / 1e9,
        )

    def _lifecycle_families(self, counts: _Counts) -> Iterator[Metric]:
        events, units = counts.events, counts.units
        for table, cls, values in (
            (COUNTERS, CounterMetricFamily, events),
            (AMOUNTS, CounterMetricFamily, units),
        ):
            for name, label, doc in table:
                family = cls(f"{PREFIX}_{name}", doc, labels=(label,) if label else ())
                for (metric, _label, value), n in sorted(values.items()):
                    if metric == name:
                        amount = n if values is events else n / _SCALE
                        family.add_metric((value,) if label else (), amount)
                yield family

    def _live_families(self, live: Live) -> Iterator[Metric]:
        policy, state, envelope, ledger = live
        if ledger is not None:
            signals = CounterMetricFamily(
                f"{PREFIX}_ledger_signals",
                "The execution ledger's fill, cancel and close signals the control workflow "
                "took, by outcome (committed, duplicate, unknown, invalid, ...).",
                labels=("kind", "status"),
            )
            for key in sorted(ledger):
                kind, _, status = key.partition(":")
                signals.add_metric((kind, status), float(ledger[key]))
            yield signals
        info = InfoMetricFamily(f"{PREFIX}_policy", "The policy in force.")
        info.add_metric(
            (), {"name": policy.name, "version": str(policy.version), "hash": policy.content_hash}
        )
        yield info
        mode = policy.mode_of(state)
        modes = GaugeMetricFamily(
            f"{PREFIX}_mode",
            "1 for the portfolio mode in force, 0 for the others.",
            labels=("mode",),
        )
        for name in policy.declared_modes:
            modes.add_metric((name,), 1.0 if name == mode.name else 0.0)
        yield modes
        yield GaugeMetricFamily(
            f"{PREFIX}_mode_overridden",
            "1 when an override (not the drawdown tiers) sets the mode.",
            value=1.0 if mode.source == MODE_FROM_OVERRIDE else 0.0,
        )
        yield GaugeMetricFamily(f"{PREFIX}_equity", "Portfolio equity.", value=state.equity)
        yield GaugeMetricFamily(
            f"{PREFIX}_drawdown",
            "Drawdown from the peak equity (0.06 is 6%).",
            value=state.drawdown,
        )
        for key in (
            "max_new_risk_abs",
            "max_additional_positions",
            "symbol_max_risk_abs",
            "size_multiplier_cap",
        ):
            value = envelope.get(key)
            if isinstance(value, int | float):
                yield GaugeMetricFamily(
                    f"{PREFIX}_envelope_{key.removesuffix('_abs')}",
                    f"The constraint envelope's {key} (absent: no limit).",
                    value=float(value),
                )
        yield from self._bucket_families(policy, state)

    def _bucket_families(self, policy: Policy, state: PortfolioState) -> Iterator[Metric]:
        caps = self._caps
        if caps is None or caps.policy is not policy:
            caps = self._caps = Caps(policy)
        labels = ("scope", "bucket")
        families = {
            name: GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            for name, doc in BUCKET_GAUGES
        }
        cap_family = GaugeMetricFamily(
            f"{PREFIX}_heat_cap",
            "The heat a `limit: X - <scope>.heat` rule lets the bucket reach (X, evaluated "
            "in the mode in force).",
            labels=(*labels, "rule"),
        )
        rows: list[tuple[str, str, Bucket]] = [("portfolio", "portfolio", state)]
        data = policy.data
        tables: list[tuple[str, dict[str, Bucket], Collection[str]]] = [
            ("strategy", state.strategies, data.strategies.keys()),
            ("symbol", state.symbols, data.symbols.keys() | data.cohort_of.keys()),
            ("cohort", state.cohorts, data.cohorts.keys() | data.cohort_symbols.keys()),
        ]
        # declared scopes (a venue, a desk): their values are the intents' free field
        # values, so every one is bounded like an undeclared name
        tables.extend((scope, state.scopes.get(scope, {}), ()) for scope in sorted(data.scopes))
        for scope, live, declared in tables:
            names = self._names.get(scope)
            if names is None:
                names = self._names[scope] = _Names(self._max_buckets)
            merged: dict[str, Bucket] = {}
            # live (see copy_live), declared and admitted names: all bounded, none evicted
            for name in sorted({*live, *declared, *names.admitted}):
                label = names.label(name, name in declared)
                total = merged.get(label)
                if total is None:
                    total = merged[label] = Bucket()
                bucket = live.get(name)
                if bucket is not None:
                    _add_into(total, bucket)
            if OTHER in merged:  # once shown, `other` stays: admitted like a name
                names.admitted.add(OTHER)
            rows.extend((scope, label, merged[label]) for label in sorted(merged))
        for scope, label, bucket in rows:
            for name, _doc in BUCKET_GAUGES:  # the float mirrors of the exact integers
                families[name].add_metric((scope, label), float(getattr(bucket, name)))
            if label == OTHER or scope not in caps.scopes:
                continue
            for rule, cap in caps.values(state, scope, "" if scope == "portfolio" else label):
                cap_family.add_metric((scope, label, rule), cap)
        yield from families.values()
        yield cap_family


__all__ = [
    "DEFAULT_MAX_BUCKETS",
    "NO_RULE",
    "OTHER",
    "ControlMetrics",
    "Live",
    "MetricsServer",
    "core_reader",
    "serve_metrics",
    "state_reader",
]
