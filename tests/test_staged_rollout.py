"""Staged rollout (issue 11): `enforce_from` on a rule, refused where it cannot mean anything,
shown by `policy explain`, kept by `policy fmt`. Its decisions
are in tests/cases/staged_rollout_test.yaml and tests/limits/staged_cap.*."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import cli
from policy_engine.document.formatter import format_policy

from support.loading import problems

LIMITS = Path(__file__).resolve().parent / "limits"


def test_enforce_from_is_refused_where_it_means_nothing() -> None:
    assert problems(
        """\
        rules:
          - {id: a, limit: 5, enforcement: warn, enforce_from: 2026-03-01T00:00:00Z}
          - {id: b, allow: "true", enforce_from: 2026-03-01T00:00:00Z}
          - {id: c, limit: 5, enforce_from: "2026-03-01T00:00"}
          - {id: d, limit: 5, enforce_from: "1999-12-31T00:00:00Z"}
        """
    ) == [
        "t.yaml:5:56: PT111 `enforce_from` cannot apply to `enforcement: warn` (always shadow) (`a`)",
        "t.yaml:6:42: PT111 `enforce_from` cannot apply to an `allow` rule (`b`)",
        't.yaml:7:37: PT111 `"2026-03-01T00:00"` is not a valid value for `rules[2].enforce_from`',
        "t.yaml:8:37: PT308 `rules[3].enforce_from`: `1999-12-31T00:00:00Z` is not a timestamp with "
        "a UTC offset in [2000-01-01, 2200-01-01) (write it as 2026-03-01T00:00:00Z)",
    ]


def test_explain_says_which_side_of_its_date_an_intent_is(tmp_path: Path) -> None:
    intent = tmp_path / "intent.json"
    intent.write_text(
        json.dumps(
            {
                "intent_id": "x",
                "strategy": "S",
                "symbol": "BTC-USD",
                "side": "long",
                "requested_risk_abs": 800,
                "timestamp": "2026-02-28T12:00:00Z",
            }
        )
    )
    state = tmp_path / "state.json"
    state.write_text('{"equity": 100000}')
    result = CliRunner().invoke(
        cli,
        [
            "explain",
            str(LIMITS / "staged_cap.yaml"),
            "--intent",
            str(intent),
            "--state",
            str(state),
        ],
    )
    assert result.exit_code == 0, result.output
    shown = " 2. new-cap  fail (shadow) (enforced from 2026-03-01T00:00:00+00:00)"
    assert shown in result.output


def test_fmt_keeps_the_instant_as_written() -> None:
    text = (LIMITS / "staged_cap.yaml").read_text()
    assert format_policy(text) == text
