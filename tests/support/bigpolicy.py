"""A long, valid policy for the language server's tests and benchmark: ``lines`` lines of
params, strategies, modes and rules that read them (every param is read, so it lints clean
of unused names)."""

from __future__ import annotations


def big_policy(lines: int) -> str:
    """A policy of about ``lines`` lines (at least 60)."""
    rules = max(1, (lines - 20) // 10)
    params = rules
    out = [
        "api_version: policy-engine/v1",
        "name: big",
        "version: 1",
        "description: a long policy for the editor's tests",
        "",
        "params:",
    ]
    out += [f"  cap_{i}: {1000 + i}  # risk per symbol for band {i}" for i in range(params)]
    out += [
        "",
        "strategies:",
        "  SCALPER: {enabled: true, max_trades: 2}",
        "  MOMENTUM: {enabled: true, max_trades: 1}",
        "",
        "modes:",
        "  normal: {risk_multiplier: 1.0}",
        '  defensive: {risk_multiplier: 0.5, when: "portfolio.drawdown >= 5%"}',
        "",
        "rules:",
    ]
    for i in range(rules):
        out += [
            f"  # band {i}: the symbol's heat stays under its cap",
            f"  - id: band-{i}",
            "    category: SYMBOL",
            f"    description: band {i} caps the symbol's heat",
            f"    limit: params.cap_{i} * mode.risk_multiplier - symbol.heat",
            "    on_exceed: clip",
            f"    code: rejected_band_{i}",
            f'    message: "{{intent.symbol}} capped at {{params.cap_{i}}}"',
            "",
        ]
    return "\n".join(out) + "\n"
