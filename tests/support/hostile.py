"""Hostile inputs shared by the tests (which assert the behaviour) and benchmarks/hostile.py
(which times it): garbage files and hostile volumes, each built the same way in both."""

from __future__ import annotations


def garbage_inputs() -> dict[str, bytes]:
    """Files `policy-check` must answer with a PT diagnostic, never a crash."""
    header = "api_version: policy-engine/v1\nname: g\nversion: 1\nrules:\n  - id: a\n"
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 12):
        bomb += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    deep = "(" * 10_000 + "true" + ")" * 10_000
    short_deep = "not " * 1_000 + "true"
    return {
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "invalid-utf8": b"name: caf\xe9\n",
        "alias-bomb": bomb.encode(),
        "deep-expression": (header + f"    require: '{deep}'\n").encode(),
        "deep-not-chain": (header + f"    require: '{short_deep}'\n").encode(),
        "deep-yaml": b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
        "five-mb": (header + "    require: 'true'\n# " + "x" * 5_000_000 + "\n").encode(),
        "only-a-list": b"- 1\n- 2\n",
        "tab-soup": b"\t\t:\t- ]]\n",
    }


HEADER = "api_version: policy-engine/v1\nname: hostile\nversion: 1\n"


def fmt_inputs() -> dict[str, str]:
    """Files `policy fmt` must refuse with the loader's diagnostic (its YAML library is
    recursive): nesting past the loader's limit, flow and block, and an oversized file."""
    return {
        "nested-flow-lists": HEADER + "params:\n  x: " + "[" * 1000 + "]" * 1000 + "\nrules: []\n",
        "nested-block-lists": HEADER + "params:\n  x:\n    " + "- " * 1000 + "1\nrules: []\n",
        "oversized": HEADER + "rules:\n  - id: a\n    require: 'true'\n# " + "x" * 1_200_000 + "\n",
    }


def many_inputs(n: int) -> str:
    """A policy declaring ``n`` inputs."""
    inputs = "".join(f"  in{i}: {{type: number, default: 0}}\n" for i in range(n))
    return HEADER + "inputs:\n" + inputs + "rules:\n  - id: a\n    require: 'true'\n"


def unknown_keys(n: int) -> str:
    """One rule with ``n`` keys the schema does not know."""
    keys = "".join(f"    k{i}: 1\n" for i in range(n))
    return HEADER + "rules:\n  - id: a\n    require: 'true'\n" + keys


def slow_parser_expressions(n: int) -> str:
    """``n`` rules whose long expressions the fast parser leaves to Lark (a keyword glued to
    a name, `a innie`, which only Lark's contextual lexer splits)."""
    term = "intent.requested_risk_abs < 5 or "
    body = term * 110 + "intent.symbol innie"
    rules = "".join(f"  - id: r{i}\n    require: '{body}'\n" for i in range(n))
    return HEADER + "rules:\n" + rules


def unknown_placeholders(n: int) -> str:
    """One rule whose message holds ``n`` placeholders naming nothing (each a PT306)."""
    message = " ".join(["{x}"] * n)
    return HEADER + f"rules:\n  - id: a\n    require: 'true'\n    message: '{message}'\n"


# A policy with a trading day whose rule reads a loss streak: buckets hold what it reads.
DAY_POLICY = """\
api_version: policy-engine/v1
name: volumes
version: 1
trading_day: {timezone: UTC, rollover: "00:00"}
strategies:
  S: {max_trades: 1000000}
rules:
  - id: pause-after-losses
    require: strategy.loss_streak < 1000000
"""


def distinct_symbols(n: int, pnl: float | None, live: int = 0) -> list[dict[str, object]]:
    """``n`` trades on ``n`` distinct symbols, each reserved, filled and closed (realizing
    ``pnl`` when it is not None) on 2026-03-02, then ``live`` more left open."""
    events: list[dict[str, object]] = []
    for i in range(n + live):
        ts = f"2026-03-02T10:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000+00:00"
        iid = f"i{i}"
        events.append(
            {
                "type": "intent",
                "intent_id": iid,
                "strategy": "S",
                "symbol": f"SYM{i}",
                "side": "long",
                "requested_risk_abs": 1,
                "timestamp": ts,
            }
        )
        events.append(
            {
                "type": "fill",
                "intent_id": iid,
                "fill_id": "f",
                "filled_risk_abs": 1,
                "timestamp": ts,
            }
        )
        if i < n:
            close: dict[str, object] = {"type": "close", "intent_id": iid, "timestamp": ts}
            if pnl is not None:
                close["realized_pnl"] = pnl
            events.append(close)
    return events


def week_of_windows(windows: int, intents: int) -> tuple[str, list[dict[str, object]]]:
    """A policy of ``windows`` rolling windows of 7 days (counts and sums of approvals, per
    portfolio, strategy and symbol in turn) and ``intents`` intents spread evenly over one
    week, each approved and closed with a realized P&L: every event stays inside every
    window to the end (the worst case for their memory)."""
    per = ("portfolio", "strategy", "symbol")
    lines = []
    for n in range(windows):
        kind = ("count: approvals", "count: approvals\n    sum: risk")[n % 2]
        lines.append(f"  w{n}:\n    {kind}\n    per: {per[n % 3]}\n    over: 7d\n")
    policy = (
        HEADER
        + "strategies:\n  S: {max_trades: 1000000}\n  T: {max_trades: 1000000}\n"
        + "windows:\n"
        + "".join(lines)
        + "rules:\n  - id: rate\n    require: strategy.w1 < 1_000_000_000\n"
    )
    events: list[dict[str, object]] = [{"type": "equity", "equity": 10_000_000, "timestamp": None}]
    step = 7 * 86_400 * 1_000_000 // intents  # microseconds between intents
    start = 1_772_409_600 * 1_000_000  # 2026-03-02T00:00:00Z
    for i in range(intents):
        us = start + i * step
        ts = f"{_iso_us(us)}"
        iid = f"i{i}"
        events.append(
            {
                "type": "intent",
                "intent_id": iid,
                "strategy": "ST"[i % 2],
                "symbol": f"SYM{i % 50}",
                "side": "long",
                "requested_risk_abs": 1 + i % 7,
                "timestamp": ts,
            }
        )
        events.append({"type": "close", "intent_id": iid, "timestamp": ts, "realized_pnl": 1})
    return policy, events


def _iso_us(us: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()
