"""``policy explain``: every rule's verdict and every sub-expression's value for one intent."""

from __future__ import annotations

import json

import click

from ..lang import syntax as s
from ..lang.lexical import fmt
from .common import load_or_report, model_or_usage, read_data


@click.command("explain", short_help="Show every rule's verdict and values for one intent.")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--intent",
    "intent_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A PortfolioIntent with the policy's inputs (JSON or YAML).",
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
    intent = model_or_usage(
        policy.intent_model, read_data(intent_path, "intent"), intent_path, "intent"
    )
    state = model_or_usage(PortfolioSnapshot, read_data(state_path, "state"), state_path, "state")
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
        click.echo(f"{i:>2}. {row['rule_id']:<{width}}  {row['verdict']}{numbers}{shadow}")
        for key, value in row["values"].items():
            click.echo(f"      {key} = {fmt(value)}")
