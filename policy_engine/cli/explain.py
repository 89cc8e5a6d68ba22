"""``policy explain``: every rule's verdict and every sub-expression's value for one intent,
or for each member of an order group (decided by the control core's own group path,
:mod:`policy_engine.engine.groups`)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..lang import syntax as s
from ..lang.lexical import fmt
from .common import UsageError, load_or_report, model_or_usage, read_data


@click.command("explain", short_help="Show every rule's verdict and values for one intent.")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--intent",
    "intent_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A PortfolioIntent with the policy's inputs (JSON or YAML), or an order group: "
    "`group_id` and its member `intents`.",
)
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A PortfolioSnapshot (JSON or YAML).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the decision and every rule's trace as JSON."
)
@click.option(
    "--request",
    "request",
    type=click.Choice(["intent", "cancel", "modify", "grow"]),
    default="intent",
    show_default=True,
    help="Whose rules decide: an intent's, a cancel request's, a modify request's, or a "
    "modify that grows its order (the intent and modify rules); the intent stands for the order.",
)
def explain_command(
    policy_path: str, intent_path: str, state_path: str, as_json: bool, request: str
) -> None:
    """Evaluate every rule (not only up to the first failure) and show why.

    Prints the decision, then each rule with its verdict and the value of
    every sub-expression. Exit 0 whatever the decision.
    """
    from ..engine.contracts import PortfolioSnapshot

    policy = load_or_report(policy_path)
    if request != "intent":  # the chain of that request kind (`applies_to`)
        policy = policy.for_request(request)
    data = read_data(intent_path, "intent")
    state = model_or_usage(PortfolioSnapshot, read_data(state_path, "state"), state_path, "state")
    if isinstance(data, dict) and "intents" in data:
        if request != "intent":
            raise UsageError("an order group is decided by the intent rules: drop --request")
        _explain_group(policy, data, intent_path, state, as_json)
        return
    intent = model_or_usage(policy.intent_model, data, intent_path, "intent")
    verdict = policy.evaluate(intent, state)
    rows = policy.explain(intent, state)
    decision = verdict.decision()
    if as_json:
        out = {"decision": decision.model_dump(mode="json"), "rules": rows}
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(f"policy {policy.name} v{policy.version} ({policy.content_hash[:19]})")
    click.echo(f"mode {decision.mode} ({decision.mode_source}: {decision.mode_reason})")
    amount = (
        f"{fmt(decision.requested_risk_abs)} -> {fmt(decision.approved_risk_abs)}"
        if decision.approved
        else f"{fmt(decision.requested_risk_abs)} -> 0"
    )
    deciding = f" by `{decision.rule_id}`" if decision.rule_id else ""
    retry = decision.context.get("retry_after")
    if retry is not None:  # a lock or a deferral says when to ask again, as `policy run` does
        deciding += f" (retry after {fmt(retry)} s)"
    click.echo(f"decision {decision.decision_code} ({amount}){deciding}")
    for reason in decision.reasons:
        click.echo(f"  {reason}")
    _print_rules(policy, rows)


def _print_rules(policy: Any, rows: list[dict[str, Any]], indent: str = "") -> None:
    """Each rule's verdict (with its limit and the risk where it has one) and values."""
    width = max((len(r["rule_id"]) for r in rows), default=0)
    for i, row in enumerate(rows, 1):
        shadow = " (shadow)" if row.get("shadow") else ""
        if "enforce_from" in row:  # a staged rule says which side of its date the intent is
            shadow += f" (enforced from {row['enforce_from']})"
        crule = policy.checked.rules[i - 1]
        values = row["values"]
        limit = values.get(s.unparse(crule.expr)) if crule.spec.kind == "limit" else None
        numbers = (
            f" (limit {fmt(limit)}, risk {fmt(values.get('intent.risk'))})"
            if isinstance(limit, int | float) and "intent.risk" in values
            else ""
        )
        click.echo(f"{indent}{i:>2}. {row['rule_id']:<{width}}  {row['verdict']}{numbers}{shadow}")
        for key, value in row["values"].items():
            click.echo(f"{indent}      {key} = {fmt(value)}")


def _explain_group(policy: Any, data: dict[str, Any], path: str, state: Any, as_json: bool) -> None:
    """Each member decided as the control core decides a ``group`` event (all or none,
    each against the state with the members before it reserved), with its rules' trace."""
    from ..decision_codes import APPROVED_FULL, GROUP_REJECTED
    from ..engine.groups import decide_group, group_facts, with_reservation

    group_id = data.get("group_id")
    members = data.get("intents")
    if not isinstance(group_id, str) or not group_id:
        raise UsageError(f"the group in `{path}` needs a `group_id` (a string)")
    if not isinstance(members, list) or not members:
        raise UsageError(f"the group `{group_id}` in `{path}` needs a list of `intents`")
    intents = [
        model_or_usage(policy.intent_model, m, path, f"member {n} of the group")
        for n, m in enumerate(members, 1)
    ]
    ids = [i.intent_id for i in intents]
    if len(set(ids)) != len(ids):
        raise UsageError(f"the group `{group_id}` names a member id twice")

    def reserve(member: Any, facts: Any, before: Any) -> tuple[None, Any]:
        return None, with_reservation(policy, before, member, facts["approved_risk_abs"])

    decided, failed = decide_group(policy, group_id, intents, state, reserve)
    rows = group_facts(group_id, intents, decided, failed, policy.mode_of(state))
    traces = {m.intent.intent_id: policy.explain(m.subject, m.state) for m in decided}
    head = {
        "group_id": group_id,
        "approved": failed is None,
        "decision_code": APPROVED_FULL if failed is None else GROUP_REJECTED,
        "rule_id": None if failed is None else failed.rule,
        "member": None if failed is None else failed.member,
    }
    if as_json:
        out = {
            "group": head,
            "members": [
                {"decision": _plain(facts), "rules": traces.get(m.intent_id)}
                for m, facts, _h in rows
            ],
        }
        click.echo(json.dumps(out, indent=2, default=str))
        return
    mode = policy.mode_of(state)
    click.echo(f"policy {policy.name} v{policy.version} ({policy.content_hash[:19]})")
    click.echo(f"mode {mode.name} ({mode.source}: {mode.reason})")
    verdict = "APPROVED" if failed is None else f"REJECTED by member {failed.member}"
    if failed is not None and failed.rule:
        verdict += f" (`{failed.rule}`)"
    click.echo(f"group {group_id} of {len(intents)}: {verdict}")
    for n, (member, facts, _h) in enumerate(rows, 1):
        amount = f"{fmt(facts['requested_risk_abs'])} -> {fmt(facts['approved_risk_abs'])}"
        deciding = f" by `{facts['rule_id']}`" if facts["rule_id"] else ""
        reached = "" if member.intent_id in traces else " (not evaluated)"
        click.echo(
            f"member {n} {member.intent_id}: {facts['decision_code']} ({amount}){deciding}{reached}"
        )
        for reason in facts["reasons"]:
            click.echo(f"  {reason}")
        if member.intent_id in traces:
            _print_rules(policy, traces[member.intent_id], "  ")


def _plain(facts: Any) -> dict[str, Any]:
    """A member's facts as JSON data (its clips and warnings as plain objects)."""
    out = dict(facts)
    out["clips"] = [c.model_dump(mode="json") for c in facts["clips"]]
    out["warnings"] = [w.model_dump(mode="json") for w in facts["warnings"]]
    return out
