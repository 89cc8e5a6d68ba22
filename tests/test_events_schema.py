"""The events file format is published (issue 12): `schemas/events.schema.json` accepts every
events file the project ships, refuses malformed lines, and says what the journal says."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
EVENT_FILES = sorted(
    [
        *(ROOT / "examples").glob("*.jsonl"),
        *(ROOT / "tests" / "data").glob("*.jsonl"),
        *(ROOT / "tests" / "limits").glob("*.jsonl"),
    ]
)


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / "events.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_every_shipped_events_file_is_valid(path: Path) -> None:
    validator = _validator()
    lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    assert lines
    for n, line in enumerate(lines, 1):
        errors = [e.message for e in validator.iter_errors(json.loads(line))]
        assert errors == [], f"{path.name}:{n}: {errors}"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "teleport"},
        {"type": "equity", "timestamp": None},
        {"type": "equity", "equity": -5, "timestamp": None},
        {"type": "mode", "mode": "risk off!", "timestamp": None},
        # the core refuses a reason over 1,000 characters: the schema says so too
        {"type": "mode", "mode": "risk_off", "reason": "x" * 1001, "timestamp": None},
        {"type": "tick"},
        {"type": "close", "timestamp": "2026-01-05T09:00:00Z"},
    ],
)
def test_malformed_events_are_refused(event: dict[str, Any]) -> None:
    assert list(_validator().iter_errors(event)), event


def test_the_events_file_and_the_journal_share_one_format() -> None:
    """A journal is an events file whose lines also end with their `chain` value, with
    `checkpoint` lines besides: the two schemas define the same events, and the journal's
    differs by exactly that (docs/operations.md)."""
    events = json.loads((SCHEMAS / "events.schema.json").read_text("utf-8"))
    journal = json.loads((SCHEMAS / "journal.schema.json").read_text("utf-8"))
    expected = copy.deepcopy(events)
    chain = {"$ref": "#/$defs/chain"}
    expected["properties"]["type"]["enum"].append("checkpoint")
    expected["properties"]["chain"] = chain
    expected["oneOf"].append({"$ref": "#/$defs/checkpoint"})
    for definition in expected["$defs"].values():
        # every closed event definition names `chain` (an intent's free inputs are typed
        # by additionalProperties, so it is closed too)
        if "additionalProperties" in definition:
            definition["properties"]["chain"] = chain
    for added in ("chain", "checkpoint"):
        assert added not in expected["$defs"]
        expected["$defs"][added] = journal["$defs"][added]
    for key in ("type", "required", "properties", "oneOf", "$defs"):
        assert expected[key] == journal[key], key
