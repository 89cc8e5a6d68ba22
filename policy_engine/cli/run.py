"""``policy run``: feed a stream of events through a portfolio controller.

One line per decision, numbered by the events file's own line numbers, with the
shadow (``enforcement: warn``) rules that would have blocked it; one line per fill,
cancel and close with its status (a late fill, a duplicate, one for no trade, a
cancel with nothing left: what happened, not a warning lost on stderr); mode
changes; then a summary by rule id and the lifecycle outcomes. A reader that stops early (``policy run ... | head``)
ends the run quietly with exit 0.
"""

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
    durability_options,
    equity_option,
    load_or_report,
    numbered_events_or_exit,
    outcome,
    plural,
    quiet_stdout,
)


def decision_line(record: dict[str, Any], line: int | None = None) -> str:
    """One line per decision: where, who, how much, the outcome, the rule and the reason,
    then one indented line per shadow rule that would have blocked it.

    ``line`` is the events file's line number (the record's ``seq`` when not given)."""
    who = " ".join(str(record.get(k) or "?") for k in ("strategy", "symbol"))
    amounts = f"{fmt(record.get('requested_risk_abs', 0.0))} -> {fmt(record.get('approved_risk_abs', 0.0))}"
    seq = record.get("seq")  # None for a refused intent: answered, never journaled
    number = ("-" if seq is None else seq) if line is None else line
    head = f"#{number} {record.get('intent_id') or '?'} {who} {amounts} {outcome(record).upper()}"
    return "\n".join([_decision_head(record, head), *map(_shadow_line, _warnings(record))])


def _warnings(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in record.get("warnings") or [] if isinstance(w, dict)]


def _shadow_line(warning: dict[str, Any]) -> str:
    message = warning.get("message") or ""
    return f"    shadow {warning.get('rule_id', '?')} would have blocked it" + (
        f": {message}" if message else ""
    )


def _decision_head(record: dict[str, Any], head: str) -> str:
    code = record.get("decision_code", "")
    rule = record.get("rule_id")
    reasons = [str(r) for r in record.get("reasons") or []]
    if outcome(record) == "approved" and not rule:
        return f"{head} {code}"
    detail = "; ".join(reasons) if reasons else (rule or "")
    retry = (record.get("context") or {}).get("retry_after")
    if retry is not None:  # a lock or a deferral says when to ask again
        code = f"{code} (retry after {fmt(retry)} s)"
    return f"{head} {code}: {detail}" if detail else f"{head} {code}"


LIFECYCLE = ("fill", "cancel", "close", "request_cancel", "request_modify", "balance", "group")


_LABELS = {
    "request_cancel": "cancel request",
    "request_modify": "modify request",
    "group": "order group",
}


def lifecycle_line(record: dict[str, Any], line: int) -> str:
    """One line per fill, cancel or close: where, which trade, its status (upper case) and
    the amounts moved, or why nothing moved."""
    kind, status = record["kind"], str(record.get("status") or "?")
    what = f"{record.get('fill_id') or '?'} " if kind == "fill" else ""
    who = record.get("group_id") if kind == "group" else record.get("intent_id")
    head = f"#{line} {kind} {what}{who or '?'} {status.upper()}"
    if kind == "fill" and status in ("committed", "late"):
        head += f" {fmt(record.get('committed_risk_abs', 0.0))}"
        overfill = record.get("overfill_risk_abs") or 0.0
        if overfill and status == "committed":
            head += f" (overfill {fmt(overfill)})"
        if record.get("fee") is not None:
            head += f", fee {fmt(record['fee'])}"
    elif kind == "cancel" and status == "cancelled":
        head += f" released {fmt(record.get('released_risk_abs', 0.0))}"
    elif kind in ("request_cancel", "request_modify", "group") and status == "rejected":
        head += f" by {record.get('rule_id') or record.get('decision_code')}"
        if kind == "group":
            head += f" (member {record.get('member')})"
    elif kind == "request_modify" and status == "modified":
        head += f" to {fmt(record.get('approved_risk_abs', 0.0))} (reserved {fmt(record.get('reserved_risk_abs', 0.0))})"
    elif kind == "balance":
        head = f"#{line} balance {record.get('currency')} {status.upper()}"
        head += f" free {fmt(record.get('free', 0.0))} locked {fmt(record.get('locked', 0.0))}"
    elif kind == "close" and status in ("closed", "reduced"):
        active = fmt(record.get("released_active_risk_abs", 0.0))
        head += f" released active {active} reserved {fmt(record.get('released_reserved_risk_abs', 0.0))}"
        if status == "reduced":
            head += f", {fmt(record.get('remaining_active_risk_abs', 0.0))} left"
        if record.get("realized_pnl") is not None:
            head += f", realized P&L {fmt(record['realized_pnl'])}"
        if record.get("reason") is not None:
            head += f" ({record['reason']})"
    message = record.get("message")
    return f"{head}: {message}" if message else head


def _count(table: dict[str, int], key: str) -> None:
    table[key] = table.get(key, 0) + 1


@dataclass
class Tally:
    """Decisions counted by outcome; rejections, clips and shadow findings by rule id;
    refusals before any rule ran (an invalid or duplicate intent) by decision code."""

    approved: int = 0
    clipped: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self.by_rule: dict[str, int] = {}
        self.clipped_by_rule: dict[str, int] = {}
        self.shadow_by_rule: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.lifecycle: dict[str, int] = {}  # "fill:committed", "cancel:unknown", ...

    def add_lifecycle(self, record: dict[str, Any]) -> None:
        _count(self.lifecycle, f"{record['kind']}:{record.get('status') or '?'}")

    def add(self, record: dict[str, Any]) -> None:
        kind = outcome(record)
        setattr(self, kind, getattr(self, kind) + 1)
        rule = record.get("rule_id")
        if kind == "rejected":
            if rule:
                _count(self.by_rule, str(rule))
            else:
                _count(self.refused, str(record.get("decision_code") or "?"))
        elif kind == "clipped":
            for clip in record.get("clips") or []:
                rid = str(clip.get("rule_id", "?")) if isinstance(clip, dict) else str(rule)
                _count(self.clipped_by_rule, rid)
        for warning in _warnings(record):
            _count(self.shadow_by_rule, str(warning.get("rule_id", "?")))

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
        for code, n in sorted(self.refused.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  refused before any rule ran ({code}): {n}")
        for rule, n in sorted(self.shadow_by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  shadow {rule} would have blocked {plural(n, 'decision')}")
        for kind in LIFECYCLE:
            counts = {
                key.partition(":")[2]: n
                for key, n in sorted(self.lifecycle.items())
                if key.partition(":")[0] == kind
            }
            if counts:
                parts = ", ".join(f"{n} {status}" for status, n in counts.items())
                label = _LABELS.get(kind, kind)
                out.append(f"{plural(sum(counts.values()), label)}: {parts}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.total,
            "approved": self.approved,
            "clipped": self.clipped,
            "rejected": self.rejected,
            "clipped_by_rule": dict(sorted(self.clipped_by_rule.items())),
            "rejected_by_rule": dict(sorted(self.by_rule.items())),
            "refused_by_code": dict(sorted(self.refused.items())),
            "shadow_by_rule": dict(sorted(self.shadow_by_rule.items())),
            "lifecycle": dict(sorted(self.lifecycle.items())),
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
    help="Write the event journal to this new (or empty) file, for `policy replay`; an "
    "existing journal is continued with `policy recover JOURNAL --events ...` instead.",
)
@equity_option
@durability_options
def run_command(
    policy_path: str,
    events_path: str,
    as_json: bool,
    journal_path: str | None,
    equity: float,
    fsync: str,
    fsync_events: int,
    fsync_ms: float,
    checkpoint_every: int,
) -> None:
    """Feed a stream of events through a portfolio controller.

    EVENTS.jsonl holds one JSON object per line: intents, fills, cancels,
    closes, equity updates, mode overrides and ticks (docs/events.md,
    schemas/events.schema.json). Prints one line per decision, numbered by
    its line in EVENTS.jsonl, with its reason and any shadow rule that would
    have blocked it; then a summary by rule. Exit 0 once every event is
    applied, or when the reader closes the pipe.
    """
    from ..control.controller import PortfolioController
    from ..control.journal import JournalError, durability_of

    policy = load_or_report(policy_path)
    notes = Notes()
    try:
        ctl = PortfolioController(
            policy,
            equity=equity,
            journal=journal_path,
            durability=durability_of(fsync, fsync_events, fsync_ms),
            checkpoint_every=checkpoint_every or None,
            clock=None,  # an events file is history (or a simulation): no wall-clock skew bound
            records=notes,
        )
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    done = f"journal written to {journal_path}" if journal_path else ""
    feed(ctl, events_path, as_json, done, notes)


class Notes(list[dict[str, Any]]):
    """A record sink that keeps the rollovers and latches, shown between the decisions, and
    the fill, cancel and close records (refused ones too: they say why nothing moved)."""

    def __call__(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind in LIFECYCLE or (kind in ("rollover", "latch") and record.get("seq") is not None):
            self.append(record)


def feed(ctl: Any, events_path: str, as_json: bool, done: str, notes: Notes) -> Tally:
    """Apply every event of ``events_path`` to ``ctl`` (built with ``notes`` as its record
    sink), printing each decision, then the summary and ``done``; closes ``ctl`` (`run`,
    `recover --events`)."""
    from ..control.events import EventError, canonical
    from ..control.journal import JournalError

    tally = Tally()
    bar = Progress("running", count_events(events_path))
    mode = str(ctl.get_portfolio_state()["mode"])
    try:
        for line, event in numbered_events_or_exit(events_path):
            try:
                record = ctl.apply(event)
            except EventError as exc:
                raise UsageError(f"{events_path}:{line}: {exc}") from None
            except JournalError as exc:
                raise UsageError(f"{events_path}:{line}: not applied: {exc}") from None
            bar.update()
            if not as_json:
                for text in _notes(notes, before=True):
                    bar.echo(text)
            if not as_json and (event.get("type") in _MODE_EVENTS or notes):
                mode = _echo_mode_change(bar, ctl, mode)
            if record is not None:
                tally.add(record)
                bar.echo(canonical(record) if as_json else decision_line(record, line))
            for rec in notes:
                if rec["kind"] == "decision":
                    if rec.get("group_id") is not None and rec.get("seq") is not None:
                        tally.add(rec)  # a member of an order group, in order
                        bar.echo(canonical(rec) if as_json else decision_line(rec, line))
                elif rec["kind"] in LIFECYCLE:
                    tally.add_lifecycle(rec)
                    if not as_json:
                        bar.echo(lifecycle_line(rec, line))
            if not as_json:
                for text in _notes(notes, before=False):
                    bar.echo(text)
            notes.clear()
        if as_json:
            click.echo(json.dumps({"summary": tally.as_dict()}), err=True)
        else:
            for text in tally.lines():
                click.echo(text)
            if done:
                click.echo(done)
    except BrokenPipeError:
        quiet_stdout()  # the reader has seen enough (`| head`): stop, and say nothing more
    finally:
        bar.close()
        ctl.close()
    return tally


_MODE_EVENTS = ("equity", "mode", "policy", "reset_latch")


def _notes(notes: list[dict[str, Any]], *, before: bool) -> list[str]:
    """A line per rollover (shown before the event's decision) or latch (after it)."""
    out = []
    for rec in notes:
        if rec["kind"] == "rollover" and before:
            cleared = rec.get("latches_cleared")
            out.append(
                f"== trading day {rec['day']} starts (day_start_equity "
                f"{fmt(rec['day_start_equity'])}; realized P&L of {rec['previous_day']}: "
                f"{fmt(rec['previous_realized_pnl'])})"
                + (f"; latches cleared: {', '.join(cleared)}" if cleared else "")
            )
        elif rec["kind"] == "latch" and not before:
            why = rec.get("reason") if rec["status"] != "set" else rec.get("when")
            out.append(f"== latch {rec['name']} {rec['status']} ({why or '-'})")
    return out


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
