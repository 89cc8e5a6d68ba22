"""``policy schema``: the published JSON Schemas, for editors and tools."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import click

from .common import UsageError, load_or_report


def schema_files() -> dict[str, Any]:
    """Every JSON Schema shipped in policy_engine/schemas/, by short name (`policy`)."""
    folder = files("policy_engine").joinpath("schemas")
    out: dict[str, Any] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            out[entry.name.removesuffix(".json").removesuffix(".schema")] = entry
    return out


@click.command("schema")
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the schema names and stop.")
@click.option(
    "--intent",
    "intent_policy",
    metavar="POLICY",
    type=click.Path(exists=True, dir_okay=False),
    help="Print the JSON Schema of the intents POLICY reads (its declared `inputs` included).",
)
def schema_command(name: str | None, list_only: bool, intent_policy: str | None) -> None:
    """Print the JSON Schemas, for editors and tools.

    With NAME, print only that schema (see --list); without, print the policy
    schema, or all of them as one JSON object keyed by name if there are
    several. Editors with the YAML language server pick it up from a first
    line `# yaml-language-server: $schema=<path or URL of policy.schema.json>`.
    With --intent POLICY, print the JSON Schema of an intent for that policy:
    the PortfolioIntent fields and the policy's declared `inputs`.
    """
    if intent_policy is not None:
        if name is not None or list_only:
            raise UsageError("--intent prints one schema: give no NAME and no --list")
        policy = load_or_report(intent_policy)
        click.echo(json.dumps(policy.intent_model.model_json_schema(), indent=2))
        return
    schemas = schema_files()
    if list_only:
        for key, entry in schemas.items():
            click.echo(f"{key}\t{entry.name}")
        return
    if name is not None:
        if name not in schemas:
            known = ", ".join(f"`{k}`" for k in schemas)
            raise UsageError(f"no schema `{name}` (known: {known})")
        click.echo(schemas[name].read_text("utf-8").rstrip("\n"))
        return
    if len(schemas) == 1:
        click.echo(next(iter(schemas.values())).read_text("utf-8").rstrip("\n"))
        return
    merged = {k: json.loads(e.read_text("utf-8")) for k, e in schemas.items()}
    click.echo(json.dumps(merged, indent=2))
