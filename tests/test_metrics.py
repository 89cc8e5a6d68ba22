"""Prometheus metrics: scraped after a scripted stream, checked against the journal's replay.

The bundled day (plus an evaluation error, a refused and an accepted reload) runs
through a controller with ``ControlMetrics``; the registry is scraped through the
real text exposition and every counter is compared with what an independent
replay of the journal counts (plus the refused input, which is answered but never
journaled), every gauge with the live state.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from policy_engine import PortfolioController, load_policy
from policy_engine.control.metrics import (
    NO_RULE,
    OTHER,
    ControlMetrics,
    serve_metrics,
    state_reader,
)
from policy_engine.control.replay import replay
from policy_engine.engine.contracts import to_units

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"
EVENTS = ROOT / "examples" / "events.jsonl"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of the text exposition, keyed by (name, sorted labels)."""
    text = generate_latest(registry).decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by(samples: Samples, name: str, label: str) -> dict[str, float]:
    """The samples of ``name`` keyed by one label's value."""
    return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name}


def extra_events() -> list[dict[str, Any]]:
    return [
        # An undeclared strategy: `strategy.enabled` cannot be read, the intent fails closed.
        {
            "type": "intent",
            "intent_id": "ghost-1",
            "strategy": "GHOST",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 100,
            "timestamp": "2026-03-02T14:42:00Z",
        },
        # A fill for a trade never seen: reported, not absorbed, not journaled.
        {
            "type": "fill",
            "intent_id": "nobody",
            "fill_id": "fx",
            "filled_risk_abs": 5,
            "timestamp": "2026-03-02T14:42:01Z",
        },
    ]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    registry = CollectorRegistry()
    metrics = ControlMetrics(registry)
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    policy = load_policy(PORTFOLIO)
    ctl = PortfolioController(policy, journal=journal, records=records, clock=None, metrics=metrics)
    events = [json.loads(line) for line in EVENTS.read_text().splitlines() if line.strip()]
    ctl.apply_all([*events, *extra_events()])
    broken = tmp_path_factory.mktemp("reload") / "broken.yaml"
    broken.write_text("api_version: policy-engine/v1\nname: [\n")
    assert ctl.reload(broken)["ok"] is False
    bumped = tmp_path_factory.mktemp("reload") / "portfolio.yaml"
    bumped.write_text(PORTFOLIO.read_text().replace("version: 1\n", "version: 2\n"))
    assert ctl.reload(bumped)["ok"] is True
    return {"ctl": ctl, "samples": scrape(registry), "journal": journal, "records": records}


def test_decisions_match_the_replayed_journal(day: dict[str, Any]) -> None:
    replayed = list(replay(day["journal"], lifecycle=True))
    decisions = [r for r in replayed if r["kind"] == "decision"]
    # Refused input is answered (seq null) but never journaled: the replay cannot see it.
    refused = [r for r in day["records"] if r["kind"] == "decision" and r["seq"] is None]
    assert refused, "the stream has refused input"
    expected = Counter(
        (r["decision_code"], r["rule_id"] or NO_RULE, r["mode"]) for r in decisions + refused
    )
    got = {
        (dict(labels)["code"], dict(labels)["rule"], dict(labels)["mode"]): v
        for (name, labels), v in day["samples"].items()
        if name == "policy_engine_decisions_total"
    }
    assert got == {k: float(n) for k, n in expected.items()}
    assert sum(expected.values()) == 23  # the bundled day's 22 and the ghost
    samples = day["samples"]
    assert samples["policy_engine_decision_seconds_count", ()] == 23
    assert samples["policy_engine_decision_seconds_sum", ()] > 0
    errors = by(samples, "policy_engine_evaluation_errors_total", "rule")
    assert errors == {"strategy-enabled": 1.0}


def test_clips_and_removed_risk_match_the_replay(day: dict[str, Any]) -> None:
    decisions = list(replay(day["journal"]))
    refused = [r for r in day["records"] if r["kind"] == "decision" and r["seq"] is None]
    clips: Counter[str] = Counter()
    clipped: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    for r in decisions + refused:
        for c in r["clips"]:
            clips[c["rule_id"]] += 1
            clipped[c["rule_id"]] += to_units(c["from_risk"]) - to_units(c["to_risk"])
        if not r["approved"]:
            rejected[r["rule_id"] or r["decision_code"]] += to_units(r["requested_risk_abs"])
    samples = day["samples"]
    assert by(samples, "policy_engine_clips_total", "rule") == {
        k: float(v) for k, v in clips.items()
    }
    removed = {
        (dict(labels)["rule"], dict(labels)["action"]): v
        for (name, labels), v in samples.items()
        if name == "policy_engine_risk_removed_total"
    }
    want = {(k, "clip"): v / 1e6 for k, v in clipped.items()}
    want.update({(k, "reject"): v / 1e6 for k, v in rejected.items()})
    assert removed == want
    assert removed["cohort-cap", "clip"] == 500 + 350  # sol-brk-1 800->300, sol-mom-1 600->250


def test_lifecycle_counters_match_the_replay(day: dict[str, Any]) -> None:
    replayed = list(replay(day["journal"], lifecycle=True))
    unjournaled = [r for r in day["records"] if r["kind"] != "decision" and r.get("seq") is None]
    kinds = Counter(r["kind"] for r in replayed)
    samples = day["samples"]
    assert samples["policy_engine_reservation_expiries_total", ()] == kinds["expire"] == 6
    fills = Counter(str(r["status"]) for r in replayed + unjournaled if r["kind"] == "fill")
    assert by(samples, "policy_engine_fills_total", "status") == {
        k: float(v) for k, v in fills.items()
    }
    assert fills["late"] == 1 and fills["unknown"] == 1 and fills["duplicate"] == 1
    assert by(samples, "policy_engine_late_fills_total", "after") == {"expired": 1.0}
    committed = sum(to_units(r["committed_risk_abs"]) for r in replayed if r["kind"] == "fill")
    assert sum(by(samples, "policy_engine_filled_risk_total", "status").values()) == (
        committed / 1e6
    )
    expired = sum(to_units(r["released_risk_abs"]) for r in replayed if r["kind"] == "expire")
    released = by(samples, "policy_engine_released_risk_total", "reason")
    assert released["expired"] == expired / 1e6
    cancels = Counter(r["status"] for r in replayed if r["kind"] == "cancel")
    assert by(samples, "policy_engine_cancels_total", "status") == {
        k: float(v) for k, v in cancels.items()
    }
    closes = Counter(r["status"] for r in replayed if r["kind"] == "close")
    assert by(samples, "policy_engine_closes_total", "status") == {
        k: float(v) for k, v in closes.items()
    }
    # normal -> defensive (drawdown), -> risk_off (override), back to defensive, to normal
    assert by(samples, "policy_engine_mode_changes_total", "mode") == {
        "defensive": 2.0,
        "risk_off": 1.0,
        "normal": 1.0,
    }
    assert by(samples, "policy_engine_reloads_total", "outcome") == {"ok": 1.0, "refused": 1.0}


def test_gauges_show_the_live_state_next_to_the_caps(day: dict[str, Any]) -> None:
    ctl = day["ctl"]
    samples: Samples = day["samples"]
    state = ctl.get_portfolio_state()

    def gauge(name: str, scope: str, bucket: str) -> float:
        return samples[f"policy_engine_{name}", (("bucket", bucket), ("scope", scope))]

    totals = state["totals"]
    for field in ("heat", "active_risk", "reserved_risk", "open_positions", "active_trades"):
        assert gauge(field, "portfolio", "portfolio") == totals[field]
        for scope, table in (
            ("strategy", "strategies"),
            ("symbol", "symbols"),
            ("cohort", "cohorts"),
        ):
            for name, bucket in state[table].items():
                assert gauge(field, scope, name) == bucket[field], (field, scope, name)
    caps = {
        (dict(labels)["scope"], dict(labels)["bucket"], dict(labels)["rule"]): v
        for (name, labels), v in samples.items()
        if name == "policy_engine_heat_cap"
    }
    # The mode is normal again at the end of the day; equity 100,500.
    assert caps["portfolio", "portfolio", "portfolio-heat"] == pytest.approx(0.06 * 100_500)
    assert caps["cohort", "L1", "cohort-cap"] == 2500
    assert caps["cohort", "ALTS", "cohort-cap"] == 2500  # declared, no live trade: still shown
    assert caps["symbol", "BTC-USD", "symbol-cap"] == 1500
    assert ("strategy", "SCALPER", "strategy-max-trades") not in caps  # a gate, not a heat cap
    assert (
        samples["policy_engine_envelope_max_new_risk", ()] == state["envelope"]["max_new_risk_abs"]
    )
    assert by(samples, "policy_engine_mode", "mode") == {
        "normal": 1.0,
        "defensive": 0.0,
        "risk_off": 0.0,
    }
    info = {k: v for k, v in samples.items() if k[0] == "policy_engine_policy_info"}
    ((_, labels),) = info
    assert dict(labels) == {
        "name": "portfolio-default",
        "version": "2",
        "hash": ctl.policy.content_hash,
    }


def test_a_mode_change_moves_the_caps() -> None:
    registry = CollectorRegistry()
    ctl = PortfolioController(
        PORTFOLIO, equity=100_000, clock=None, metrics=ControlMetrics(registry)
    )
    ctl.set_portfolio_mode("defensive", "test", "2026-03-02T14:00:00Z")
    samples = scrape(registry)
    key = (("bucket", "L1"), ("rule", "cohort-cap"), ("scope", "cohort"))
    assert samples["policy_engine_heat_cap", key] == 1250
    assert samples["policy_engine_mode_overridden", ()] == 1


def test_bucket_labels_are_bounded_with_an_other_bucket() -> None:
    registry = CollectorRegistry()
    ctl = PortfolioController(
        PORTFOLIO, equity=10_000_000, clock=None, metrics=ControlMetrics(registry, max_buckets=2)
    )
    for i, symbol in enumerate(["ZZZ-USD", "AAA-USD", "MMM-USD", "BTC-USD"]):
        decision = ctl.request_allocation(
            {
                "intent_id": f"b{i}",
                "strategy": "SCALPER" if i == 3 else "BREAKOUT",
                "symbol": symbol,
                "side": "long",
                "requested_risk_abs": 100 + i,
                "timestamp": "2026-03-02T14:00:00Z",
            }
        )
        assert decision.approved
    samples = scrape(registry)
    heat = {
        dict(labels)["bucket"]: v
        for (name, labels), v in samples.items()
        if name == "policy_engine_heat" and dict(labels)["scope"] == "symbol"
    }
    # The symbols the policy names (its cohorts' members) are always labelled. Of the
    # others, the first two in sorted order get a label; the third is summed into `other`.
    cohort_members = {"BTC-USD", "ETH-USD", "SOL-USD", "AVAX-USD", "LINK-USD", "DOGE-USD"}
    assert set(heat) == {"AAA-USD", "MMM-USD", OTHER} | cohort_members
    assert heat[OTHER] == 100  # ZZZ-USD
    assert (
        sum(heat.values())
        == samples["policy_engine_heat", (("bucket", "portfolio"), ("scope", "portfolio"))]
    )
    # A name admitted once keeps its label: series stay stable across scrapes.
    ctl.request_allocation(
        {
            "intent_id": "b9",
            "strategy": "SCALPER",
            "symbol": "AAB-USD",
            "side": "long",
            "requested_risk_abs": 1,
            "timestamp": "2026-03-02T14:00:01Z",
        }
    )
    again = {
        dict(labels)["bucket"]
        for (name, labels), _v in scrape(registry).items()
        if name == "policy_engine_heat" and dict(labels)["scope"] == "symbol"
    }
    assert "AAA-USD" in again and "MMM-USD" in again and "AAB-USD" not in again


def test_nothing_is_registered_globally() -> None:
    ctl = PortfolioController(PORTFOLIO, equity=100_000, clock=None, metrics=ControlMetrics())
    ctl.update_equity(90_000, "2026-03-02T14:00:00Z")
    assert "policy_engine" not in generate_latest(prometheus_client.REGISTRY).decode()


def test_a_state_reader_scrapes_what_the_core_reader_does(day: dict[str, Any]) -> None:
    """What a shell without the core in process (a worker querying its workflow) sees."""
    ctl = day["ctl"]
    registry = CollectorRegistry()
    metrics = ControlMetrics(registry)
    metrics.watch(state_reader(ctl.get_portfolio_state, lambda: ctl.policy))
    live = {k: v for k, v in scrape(registry).items() if not k[0].endswith("_total")}
    live = {k: v for k, v in live.items() if not k[0].startswith("policy_engine_decision_seconds")}
    ours = {k: v for k, v in day["samples"].items() if k in live}
    assert live == ours
    assert len(live) > 40


def test_sides_and_declared_scopes_are_gauged_by_both_readers() -> None:
    """Long, short and net heat per bucket, and a bucket per value of a declared scope (a
    venue), the same whether the core is read in process or through its state JSON."""
    registry = CollectorRegistry()
    ctl = PortfolioController(
        ROOT / "policies" / "day_trading.yaml",
        equity=100_000,
        clock=None,
        metrics=ControlMetrics(registry),
    )
    for iid, side, venue, risk in (
        ("l1", "long", "BINANCE", 300),
        ("s1", "short", "COINBASE", 200),
        ("l2", "long", "COINBASE", 100),
    ):
        decision = ctl.request_allocation(
            {
                "intent_id": iid,
                "strategy": "SCALPER",
                "symbol": "ETH-USD",
                "side": side,
                "requested_risk_abs": risk,
                "venue": venue,
                "timestamp": "2026-01-06T15:00:00Z",  # a Tuesday, in the session
            }
        )
        assert decision.approved_risk_abs == risk, decision.reasons
    samples = scrape(registry)

    def gauge(name: str, scope: str, bucket: str) -> float:
        return samples[f"policy_engine_{name}", (("bucket", bucket), ("scope", scope))]

    assert gauge("long_risk", "portfolio", "portfolio") == 400
    assert gauge("short_risk", "portfolio", "portfolio") == 200
    assert gauge("net_risk", "portfolio", "portfolio") == 200
    assert gauge("net_risk", "symbol", "ETH-USD") == 200
    assert gauge("heat", "venue", "BINANCE") == 300
    assert gauge("heat", "venue", "COINBASE") == 300
    assert gauge("net_risk", "venue", "COINBASE") == -100

    other = CollectorRegistry()
    metrics = ControlMetrics(other)
    metrics.watch(state_reader(ctl.get_portfolio_state, lambda: ctl.policy))
    live = {k: v for k, v in scrape(other).items() if not k[0].endswith("_total")}
    live = {k: v for k, v in live.items() if not k[0].startswith("policy_engine_decision_")}
    assert live == {k: v for k, v in samples.items() if k in live}
    assert ("policy_engine_net_risk", (("bucket", "COINBASE"), ("scope", "venue"))) in live


def test_serve_metrics_answers_a_scrape_over_http() -> None:
    registry = CollectorRegistry()
    ctl = PortfolioController(
        PORTFOLIO, equity=100_000, clock=None, metrics=ControlMetrics(registry)
    )
    ctl.request_allocation(
        {
            "intent_id": "h1",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 100,
            "timestamp": "2026-03-02T14:00:00Z",
        }
    )
    server = serve_metrics(registry, 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
            body = r.read().decode()
    finally:
        server.close()
    assert (
        'policy_engine_decisions_total{code="approved_full",mode="normal",rule="none"} 1.0' in body
    )
    assert 'policy_engine_heat{bucket="BTC-USD",scope="symbol"} 100.0' in body
