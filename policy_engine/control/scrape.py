"""What a metrics scrape reads of a live control plane, and the endpoint that serves it.

A scrape must see one consistent state without holding the controller's lock
for long: :func:`core_reader` copies, under the lock, the exact aggregates of the
portfolio and of the buckets a live trade counts in (bounded by the live trades,
never by every name ever seen; the book itself is not copied), and every metric
family is built from the copy after the lock is released.
:func:`state_reader` builds the same copy from ``get_portfolio_state()``'s JSON,
for a shell whose core lives elsewhere (a Temporal worker querying its
workflow). :func:`serve_metrics` serves a registry over HTTP: what ``policy
worker --metrics-port`` calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from prometheus_client.registry import CollectorRegistry

from ..engine.contracts import to_units
from ..engine.policy import Policy
from .book import Trade
from .state import Bucket, PortfolioState

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from .core import ControlCore


class Live(NamedTuple):
    """What a scrape reads of the live control plane: a consistent copy."""

    policy: Policy
    state: PortfolioState
    envelope: Mapping[str, Any]
    # What the execution ledger's signals did (``kind:status`` -> count), where a shell
    # takes them (the Temporal control workflow); None in process.
    ledger: Mapping[str, int] | None = None


# The gauges of every bucket: (its attribute, its help text).
BUCKET_GAUGES = (
    ("heat", "Active plus reserved risk (account currency)."),
    ("active_risk", "Filled risk (account currency)."),
    ("reserved_risk", "Approved, not yet filled risk (account currency)."),
    ("open_positions", "Trades with at least one fill."),
    ("active_trades", "Live trades (reserved or open)."),
    ("long_risk", "Heat of long trades (account currency)."),
    ("short_risk", "Heat of short trades (account currency)."),
    ("net_risk", "Long minus short heat (account currency)."),
    ("gross_notional", "Filled plus reserved notional (account currency)."),
    ("net_notional", "Long minus short notional (account currency)."),
    ("unrealized_pnl", "Unrealized P&L of priced positions at the last marks."),
)


def copy_live(state: PortfolioState, trades: Iterable[Trade]) -> PortfolioState:
    """An exact copy of the aggregates a scrape shows: the portfolio's, and those of every
    bucket a live trade counts in. Any other bucket has every counter at zero (a counter is
    a sum over live trades), which is what a missing bucket reads, so nothing shown changes;
    the work under the lock is bounded by the live trades, not by every bucket the state
    holds (buckets with today's P&L or a window count but no trade are not copied)."""
    out = PortfolioState(state.equity, state.peak_equity)
    out.set_override(state.mode_override, state.mode_override_reason)
    out.set_counters(state.counters())
    strategies, symbols, cohorts = state.strategies, state.symbols, state.cohorts
    for trade in trades:
        _copy(out.strategies, strategies, trade.strategy)
        _copy(out.symbols, symbols, trade.symbol)
        _copy(out.cohorts, cohorts, trade.cohort)
        for scope, value in (trade.scopes or {}).items():
            _copy(out.scopes.setdefault(scope, {}), state.scopes[scope], value)
    return out


def _copy(mine: dict[str, Bucket], theirs: dict[str, Bucket], name: str) -> None:
    if name not in mine:
        mine[name] = copy = Bucket()
        copy.set_counters(theirs[name].counters())


def core_reader(core: ControlCore, lock: threading.RLock) -> Callable[[], Live]:
    """Read a core's live state under its shell's lock (held only for the copy of the live
    buckets: see :func:`copy_live`)."""

    def read() -> Live:
        with lock:
            state = copy_live(core.state, core.book.trades.values())
            return Live(core.policy, state, core.envelope().model_dump(mode="json"))

    return read


def state_reader(
    portfolio_state: Callable[[], Mapping[str, Any]],
    policy: Callable[[], Policy],
    ledger: Callable[[], Mapping[str, int]] | None = None,
) -> Callable[[], Live]:
    """Read the live state from ``get_portfolio_state()``'s JSON (what a shell that keeps its
    core elsewhere, such as a Temporal worker querying its workflow, can see), and with
    ``ledger`` the counts of the execution ledger's signals."""

    def read() -> Live:
        data = portfolio_state()
        state = PortfolioState(float(data["equity"]), float(data["peak_equity"]))
        state.set_override(data.get("mode_override"), data.get("mode_reason"))
        state.set_counters(_counters(data["totals"]))
        tables = [
            (data["strategies"], state.strategies),
            (data["symbols"], state.symbols),
            (data["cohorts"], state.cohorts),
        ]
        for scope, values in data.get("scopes", {}).items():
            tables.append((values, state.scopes.setdefault(scope, {})))
        for source, table in tables:
            for name, totals in source.items():
                bucket = table[name] = Bucket()
                bucket.set_counters(_counters(totals))
        return Live(policy(), state, data["envelope"], None if ledger is None else ledger())

    return read


def _counters(totals: Mapping[str, Any]) -> tuple[int, ...]:
    """The exact counters (in :data:`~.state.COUNTERS` order) back from ``totals()``'s JSON:
    every amount is a multiple of the risk unit, so the round trip is exact."""
    return (
        to_units(totals["active_risk"]),
        to_units(totals["reserved_risk"]),
        int(totals["open_positions"]),
        int(totals["active_trades"]),
        to_units(totals["long_risk"]),
        to_units(totals["short_risk"]),
        *(to_units(totals.get(key, 0.0)) for key in _NOTIONAL_TOTALS),
    )


# totals() keys of the notional counters, in COUNTERS order (absent when all are zero)
_NOTIONAL_TOTALS = (
    "active_notional",
    "reserved_notional",
    "long_notional",
    "short_notional",
    "unrealized_pnl",
)


class MetricsServer:
    """A running metrics endpoint (``/metrics`` and ``/``); :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``registry`` over HTTP on ``addr:port`` in a daemon thread (port 0: any free
    port, see ``.port``). What ``policy worker --metrics-port`` calls."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)


__all__ = [
    "BUCKET_GAUGES",
    "Live",
    "MetricsServer",
    "copy_live",
    "core_reader",
    "serve_metrics",
    "state_reader",
]
