"""``policy run``: feed a stream of events through a portfolio controller."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from ..lang.lexical import fmt
from .common import (
    Progress,
    UsageError,
    count_events,
    equity_option,
    events_or_exit,
    load_or_report,
    outcome,
    plural,
)


def decision_line(record: dict[str, Any]) -> str:
    """One line per decision: who, how much, the outcome, the rule and the reason."""

    who = " ".join(str(record.get(k) or "?") for k in ("strategy", "symbol"))
    amounts = f"{fmt(record.get('requested_risk_abs', 0.0))} -> {fmt(record.get('approved_risk_abs', 0.0))}"
    seq = record.get("seq")
    number = "-" if seq is None else seq  # a refused intent is answered but never journaled
    head = f"#{number} {record.get('intent_id') or '?'} {who} {amounts} {outcome(record).upper()}"
    code = record.get("decision_code", "")
    rule = record.get("rule_id")
    reasons = [str(r) for r in record.get("reasons") or []]
    if outcome(record) == "approved" and not rule:
        return f"{head} {code}"
    detail = "; ".join(reasons) if reasons else (rule or "")
    return f"{head} {code}: {detail}" if detail else f"{head} {code}"


@dataclass
class Tally:
    """Decisions counted by outcome, and rejections and clips by rule."""

    approved: int = 0
    clipped: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self.by_rule: dict[str, int] = {}
        self.clipped_by_rule: dict[str, int] = {}

    def add(self, record: dict[str, Any]) -> None:
        kind = outcome(record)
        setattr(self, kind, getattr(self, kind) + 1)
        key = str(record.get("rule_id") or record.get("decision_code") or "?")
        if kind == "rejected":
            self.by_rule[key] = self.by_rule.get(key, 0) + 1
        elif kind == "clipped":
            for clip in record.get("clips") or []:
                rid = str(clip.get("rule_id", "?")) if isinstance(clip, dict) else key
                self.clipped_by_rule[rid] = self.clipped_by_rule.get(rid, 0) + 1

    @property
    def total(self) -> int:
        return self.approved + self.clipped + self.rejected

    def lines(self) -> list[str]:
        out = [
            f"{plural(self.total, 'decision')}: {self.approved} approved, "
            f"{self.clipped} clipped, {self.rejected} rejected"
        ]
        for rule, n in sorted(self.clipped_by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  clipped by {rule}: {n}")
        for rule, n in sorted(self.by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  rejected by {rule}: {n}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.total,
            "approved": self.approved,
            "clipped": self.clipped,
            "rejected": self.rejected,
            "clipped_by_rule": dict(sorted(self.clipped_by_rule.items())),
            "rejected_by_rule": dict(sorted(self.by_rule.items())),
        }


@click.command("run")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.argument("events_path", metavar="EVENTS.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the decision records as JSON Lines (summary on stderr).",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the event journal to this file (for `policy replay`).",
)
@equity_option
def run_command(
    policy_path: str, events_path: str, as_json: bool, journal_path: str | None, equity: float
) -> None:
    """Feed a stream of events through a portfolio controller.

    EVENTS.jsonl holds one JSON object per line: intents, fills, cancels,
    closes, equity updates, mode overrides and ticks (see docs/cli.md).
    Prints one line per decision with its reason, then a summary: approved,
    clipped, rejected by rule. Exit 0 once every event is applied.
    """
    from ..control.controller import PortfolioController
    from ..control.events import EventError, canonical

    policy = load_or_report(policy_path)
    try:
        ctl = PortfolioController(policy, equity=equity, journal=journal_path, clock=None)
    except OSError as exc:
        raise UsageError(f"cannot write the journal: {exc}") from None
    tally = Tally()
    bar = Progress("running", count_events(events_path))
    mode = "normal"
    try:
        for n, event in enumerate(events_or_exit(events_path), 1):
            try:
                record = ctl.apply(event)
            except EventError as exc:
                raise UsageError(f"{events_path}: event {n}: {exc}") from None
            bar.update()
            if not as_json and event.get("type") in _MODE_EVENTS:
                mode = _echo_mode_change(bar, ctl, mode)
            if record is None:
                continue
            tally.add(record)
            bar.echo(canonical(record) if as_json else decision_line(record))
    finally:
        bar.close()
        ctl.close()
    if as_json:
        click.echo(json.dumps({"summary": tally.as_dict()}), err=True)
    else:
        for line in tally.lines():
            click.echo(line)
        if journal_path:
            click.echo(f"journal written to {journal_path}")


_MODE_EVENTS = ("equity", "mode", "policy")


def _echo_mode_change(bar: Progress, ctl: Any, before: str) -> str:
    """A line when the portfolio mode moves, so a run shows why later decisions tighten."""
    state = ctl.get_portfolio_state()
    mode = str(state["mode"])
    if mode != before:
        bar.echo(
            f"== mode {before} -> {mode} ({state['mode_source']}: {state['mode_reason']}; "
            f"drawdown {fmt(round(state['drawdown'] * 100, 4))}%)"
        )
    return mode
