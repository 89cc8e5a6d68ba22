"""A long deterministic mixed workload for a controller (the tests' own seeded generator).

Intents of every side (some invalid, some reduce-only), partial and duplicate fills,
closes, cancels, equity moves across drawdown tiers, mode overrides, ticks and policy
reloads (one of them broken), driven through the controller's public API. A child
process can run it too (the crash tests kill one mid-stream).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from policy_engine import PortfolioController

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "AVAX-USD", "LINK-USD", "DOGE-USD", "XRP-USD"]
STRATEGIES = ["SCALPER", "MOMENTUM", "BREAKOUT", "GHOST"]
PORTFOLIO = Path(__file__).resolve().parents[2] / "policies" / "portfolio.yaml"


def policy_versions(folder: Path) -> list[Path]:
    """Two versions of the portfolio policy and a broken one, as a risk owner edits them."""
    text = PORTFOLIO.read_text()
    v1 = folder / "portfolio.yaml"
    v1.write_text(text)
    v2 = folder / "portfolio_v2.yaml"
    v2.write_text(
        text.replace("version: 1", "version: 2")
        .replace("SCALPER: {enabled: true", "SCALPER: {enabled: false")
        .replace("max_positions: 5", "max_positions: 7")
    )
    broken = folder / "broken.yaml"
    broken.write_text(text.replace("portfolio.heat", "portfolio.hat"))
    return [v1, v2, broken]


def generate(n: int, seed: int = 7) -> Iterator[tuple[str, Any]]:
    """A long deterministic mixed workload (the test's own seeded generator)."""
    rnd = random.Random(seed)
    t = 0.0
    live: list[str] = []
    for k in range(n):
        t += rnd.choice([0, 0.25, 1, 5, 30, 120])
        ts = T0 + timedelta(seconds=t)
        roll = rnd.random()
        if roll < 0.45:
            iid = f"i{k}"
            side = rnd.choice(["long", "long", "short", "flat"])
            payload: dict[str, Any] = {
                "intent_id": iid,
                "strategy": rnd.choice(STRATEGIES),
                "symbol": rnd.choice(SYMBOLS),
                "side": side,
                "requested_risk_abs": rnd.choice([50, 125.5, 400, 900, 1500, 0.333333]),
                "timestamp": ts.isoformat(),
            }
            if rnd.random() < 0.03:
                payload["requested_risk_abs"] = -1  # invalid
            if rnd.random() < 0.05:
                payload["reduce_only"] = True
            live.append(iid)
            yield "intent", payload
        elif roll < 0.7 and live:
            iid = rnd.choice(live)
            yield (
                "fill",
                {
                    "intent_id": iid,
                    "fill_id": f"f{rnd.randint(0, 3)}",
                    "filled_risk_abs": rnd.choice([10, 100.25, 300]),
                    "timestamp": ts.isoformat(),
                },
            )
        elif roll < 0.8 and live:
            yield "close", (live.pop(rnd.randrange(len(live))), ts)
        elif roll < 0.85 and live:
            yield "cancel", (rnd.choice(live), ts)
        elif roll < 0.92:
            yield "equity", (rnd.choice([100_000, 97_000, 94_000, 91_000, 89_500]), ts)
        elif roll < 0.95:
            yield "mode", (rnd.choice([None, None, "defensive", "risk_off"]), ts)
        elif roll < 0.99:
            yield "tick", ts
        else:
            yield "reload", None


def drive(
    ctl: PortfolioController,
    n: int,
    policy_paths: Sequence[Path],
    *,
    skip: int = 0,
    after: Any = None,
) -> None:
    """Apply the first ``n`` generated steps (from step ``skip``); ``after(k)`` runs after
    step ``k``."""
    flip = 0
    for k, (kind, payload) in enumerate(generate(n)):
        if kind == "reload":
            flip += 1
        if k < skip:
            continue
        if kind == "intent":
            ctl.request_allocation(payload)
        elif kind == "fill":
            ctl.on_fill_update(payload)
        elif kind == "close":
            ctl.close_position(*payload)
        elif kind == "cancel":
            ctl.cancel_reservation(*payload)
        elif kind == "equity":
            ctl.update_equity(*payload)
        elif kind == "mode":
            ctl.set_portfolio_mode(payload[0], "judge" if payload[0] else "", payload[1])
        elif kind == "tick":
            ctl.advance_time(payload)
        else:
            ctl.reload(policy_paths[flip % len(policy_paths)])
        if after is not None:
            after(k)


def journaled_run(
    path: Path, files: Sequence[Path], n: int, every: int, **options: Any
) -> list[dict[str, Any]]:
    """Drive ``n`` steps through a controller journaling to ``path`` (durability ``off``, a
    checkpoint every ``every`` events; ``files``: the policy versions); every record."""
    records: list[dict[str, Any]] = []
    with PortfolioController(
        files[0],
        equity=100_000,
        journal=path,
        records=records,
        durability="off",
        checkpoint_every=every,
        **options,
    ) as ctl:
        drive(ctl, n, files)
    return records
