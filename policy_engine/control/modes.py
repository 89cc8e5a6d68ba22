"""The portfolio-wide steps of the core: equity, mode overrides, ticks and policies.

Each has a refusal (pure; what a live shell refuses before journaling: a timestamp
too far ahead, an override naming an undeclared mode, a policy that may not replace
the one in force) and a step. A tier change, an override or a policy put in force
broadcasts the envelope.
"""

from __future__ import annotations

from ..engine.policy import Policy
from .events import EquityEvent, ModeEvent, PolicyEvent, Record, TickEvent
from .kernel import (
    ACCEPT,
    ERROR,
    INFO,
    Kernel,
    Log,
    Options,
    Outputs,
    Ruling,
    admitted,
    outputs,
    policy_ref_of,
    ttl_of,
)
from .rebucket import move_cohort, move_scopes


class Modes:
    """Equity, overrides, ticks and policies (a part of the core, over its kernel)."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    # --- refusals ------------------------------------------------------------------------
    def timed_refusal(
        self, event: EquityEvent | TickEvent, ahead: str | None, teach: bool
    ) -> Ruling:
        """Equity and ticks are refused only when stamped too far ahead (EventError)."""
        if ahead is not None:
            admitted(ahead)
        return ACCEPT

    def mode_refusal(self, event: ModeEvent, ahead: str | None, teach: bool) -> Ruling:
        """An override must name a declared mode (EventError), and be admitted in time."""
        self.k.check_mode(event.mode)
        if ahead is not None:
            admitted(ahead)
        return ACCEPT

    def policy_refusal(self, event: PolicyEvent, ahead: str | None, teach: bool) -> Ruling:
        """The same content again changes nothing (``unchanged``); changed content without a
        higher version, or without the mode an override in force names, is refused with
        its record (``ok: false``) and an error line; the policy in force stays."""
        policy = event.policy
        refusal = self.reload_refusal(policy)
        if refusal is None:
            return ACCEPT
        if refusal == "unchanged":
            return Ruling(outputs([self.reload_record(policy.path, None)], ()), refusal)
        return Ruling(self.refused_reload(policy.path, refusal), refusal)

    def refused_reload(self, path: str, error: str) -> Outputs:
        """The outputs of a reload refused for ``error``: its record and the error line."""
        line = f"[RISK:POLICY] reload of {path} refused, keeping {self.k.policy}: {error}"
        return outputs([self.reload_record(path, error)], [(ERROR, line)])

    def reload_refusal(self, policy: Policy) -> str | None:
        """Why a live shell must not put ``policy`` in force (None: it may). Pure.

        Changed content must carry a higher version (a rollback is a new, higher version of
        the old text), and an override in force must name a mode the new policy declares.
        The same content again is a no-op (``"unchanged"``)."""
        current = self.k.policy
        if policy.content_hash == current.content_hash:
            return "unchanged"
        if policy.version <= current.version:
            return (
                f"policy {policy.name} v{policy.version} does not go up from "
                f"v{current.version}: changed content needs a higher version"
            )
        override = self.k.state.mode_override
        if override is not None and override not in policy.declared_modes:
            return (
                f"the override `{override}` is in force and policy {policy.name} "
                f"v{policy.version} does not declare it: clear the override first"
            )
        return None

    def reload_record(self, path: str, error: str | None) -> Record:
        """The record of a reload that changes nothing: the same content again (``error``
        None), or one refused for ``error``; the policy in force stays."""
        if error is None:
            return {
                "kind": "reload",
                "seq": None,
                "ok": True,
                "unchanged": True,
                "path": path,
                "policy": dict(self.k.policy_ref),
            }
        return {
            "kind": "reload",
            "ok": False,
            "path": path,
            "error": error,
            "policy": dict(self.k.policy_ref),
        }

    # --- steps ---------------------------------------------------------------------------
    def equity(self, event: EquityEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Track equity, peak and drawdown; a tier change broadcasts the new envelope."""
        k = self.k
        ts, peak_equity = event.timestamp, event.peak_equity
        step = k.begin(ts, opts.teach)
        before_mode = k.mode_info()
        k.state.set_equity(float(event.equity), None if peak_equity is None else float(peak_equity))
        env, push = k.after_mode_change(False)
        state = k.state
        rec: Record = {
            "kind": "equity",
            "seq": step.seq,
            "ts": ts and ts.isoformat(),
            "equity": state.equity,
            "peak_equity": state.peak_equity,
            "drawdown": state.drawdown,
            "mode_before": before_mode.name,
            "mode": env.portfolio_mode,
            "envelope": env.model_dump(mode="json"),
        }
        if before_mode.name != env.portfolio_mode and opts.teach:
            step.logs.append(
                (
                    INFO,
                    f"[RISK:MODE] drawdown={round(state.drawdown, 6)} → "
                    f"{env.portfolio_mode.upper()} ({k.mode_info().reason})",
                )
            )
        step.records.append(rec)
        return k.finish(step, env if push else None)

    def mode(self, event: ModeEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Set (or with ``None`` clear) the override; the envelope is always broadcast."""
        k = self.k
        mode, reason, ts = event.mode, event.reason, event.timestamp
        k.check_mode(mode)  # before the event is numbered: a replay refuses it the same way
        step = k.begin(ts, opts.teach)
        before = k.mode_info()
        k.state.set_override(mode, reason or None)
        env, _push = k.after_mode_change(True)
        after = k.mode_info()
        if opts.teach:
            step.logs.append(
                (
                    INFO,
                    f"[RISK:MODE] override={mode} ({reason or '-'}) → {env.portfolio_mode.upper()}",
                )
            )
        step.records.append(
            {
                "kind": "mode",
                "seq": step.seq,
                "ts": ts and ts.isoformat(),
                "override": mode,
                "reason": reason,
                "mode_before": before.name,
                "mode": after.name,
                "mode_source": after.source,
                "mode_reason": after.reason,
                "envelope": env.model_dump(mode="json"),
            }
        )
        return k.finish(step, env)

    def tick(self, event: TickEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Move the logical clock; the records are the expiries it caused."""
        k = self.k
        return k.finish(k.begin(event.timestamp, opts.teach), own=False)

    def use_policy(self, event: PolicyEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Put the policy in force, keeping the live state; the envelope is broadcast.

        Live trades whose cohort the new policy defines differently move to it, exposure
        and all, in this same step (a cohort cap must see what its members hold)."""
        k = self.k
        policy = event.policy
        step = k.begin(None, opts.teach)
        old = k.policy_ref
        k.policy = policy
        k.policy_ref = policy_ref_of(policy)
        k.ttl = ttl_of(policy)
        k.days = k.days.follow(policy.calendar, k.book.clock)
        k.windows = k.windows.follow(policy.windows)
        k.locks = k.locks.follow(policy.locks, k.windows, policy.calendar, policy.timezone)
        moved = []
        for trade in k.book.live():
            cohort = policy.cohort_of(trade.symbol, trade.bucket)
            if cohort != trade.cohort:
                moved.append({"intent_id": trade.intent_id, "from": trade.cohort, "to": cohort})
                move_cohort(k.book, trade, cohort)
            scopes = policy.scopes_of(trade.field)
            if scopes != trade.scopes:
                move_scopes(k.book, trade, scopes)
        dropped = [n for n in k.state.latches if n not in policy.latch_names]
        for name in dropped:  # a latch the new policy does not declare cannot stay set
            k.state.clear_latch(name)
        env, _push = k.after_mode_change(True)
        logs: list[Log] = step.logs
        if opts.teach:
            logs.append(
                (
                    INFO,
                    f"[RISK:POLICY] {old['name']} v{old['version']} → {policy.name} v{policy.version}",
                )
            )
        rec: Record = {
            "kind": "reload",
            "seq": step.seq,
            "ok": True,
            "path": policy.path,
            "previous": old,
            "policy": dict(k.policy_ref),
            "mode": env.portfolio_mode,
        }
        if moved:
            rec["moved"] = moved
        if dropped:
            rec["latches_dropped"] = dropped
        step.records.append(rec)
        return k.finish(step, env)


__all__ = ["Modes"]
