"""Loading a policy is safe against hostile and careless files: budgets, YAML 1.1, integrity.

Every problem is a positioned PolicyError (never a ValueError, OverflowError or a hang):
oversized files and sections are refused before they are checked, a policy whose
estimated evaluation cost is over budget is refused at its costliest rule, YAML 1.1
scalars that YAML 1.2 reads otherwise are refused with a fix, a file that does not
hold what its `integrity` declares is refused, ids and names with a trailing newline
are refused, and a policy path naming /dev/zero is read no further than the size limit.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import PolicyError, load_policy, load_policy_text
from policy_engine.control.events import EventError, policy_from_event
from policy_engine.document.budgets import MAX_COST, MAX_PARAMS, MAX_RULES, evaluation_cost
from policy_engine.document.build import content_digest

ROOT = Path(__file__).resolve().parent.parent
HEAD = "api_version: policy-engine/v1\nname: t\nversion: 1\n"


def codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    return [d.code for d in info.value.diagnostics]


def test_sixteen_thousand_rules_are_refused_by_the_size_budget() -> None:
    rules = "".join(f"  - id: r{i}\n    require: portfolio.heat >= {i}\n" for i in range(16_000))
    with pytest.raises(PolicyError) as info:
        load_policy_text(HEAD + "rules:\n" + rules, "p.yaml")
    (only,) = info.value.diagnostics
    assert only.code == "PT116" and f"the budget is {MAX_RULES}" in only.message
    assert (only.span.line, only.span.col) == (4, 1)


def test_thirty_thousand_params_are_refused_by_the_size_budget() -> None:
    params = "".join(f"  p{i}: {i}\n" for i in range(30_000))
    text = HEAD + "params:\n" + params + "rules:\n  - id: r\n    require: params.p1 > 0\n"
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    assert [d.code for d in info.value.diagnostics] == ["PT116"]
    assert f"the budget is {MAX_PARAMS}" in info.value.diagnostics[0].message


def test_a_policy_over_the_evaluation_cost_budget_is_refused_at_its_costliest_rule() -> None:
    terms = " + ".join(["portfolio.heat"] * 60)
    cheap = "  - id: cheap\n    require: portfolio.heat >= 0\n"
    costly = "".join(f"  - id: r{i}\n    require: {terms} >= 0\n" for i in range(60))
    with pytest.raises(PolicyError) as info:
        load_policy_text(HEAD + "rules:\n" + cheap + costly, "p.yaml")
    (only,) = info.value.diagnostics
    assert only.code == "PT116" and "`r0`" in only.message
    assert only.span.line == 7  # rules[1], the first costliest rule
    fits = load_policy_text(HEAD + "rules:\n" + cheap + costly[: costly.index("  - id: r40")])
    assert evaluation_cost(fits.checked)[0] <= MAX_COST


def test_a_membership_test_over_a_long_param_list_costs_its_length() -> None:
    symbols = json.dumps([f"S{i}" for i in range(7_000)])
    text = (
        HEAD
        + f"params:\n  banned: {symbols}\nrules:\n  - id: r\n    require: intent.symbol not in params.banned\n"
    )
    assert codes(text) == ["PT116"]


def test_a_megabyte_of_base_60_is_refused_without_being_built() -> None:
    """PyYAML took 29 s to build a 1 MB base-60 integer; it is refused before that."""
    big = "1" + ":0" * 450_000
    text = HEAD + f"params:\n  x: {big}\nrules:\n  - id: r\n    require: params.x > 0\n"
    assert len(text) < 1_000_000
    assert codes(text) == ["PT106"]


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ("on", "write `true`"),
        ("No", "write `false`"),
        ("010", "decimal"),
        ("0x1F", "decimal"),
        ("1:30", "base-60"),
    ],
)
def test_yaml_1_1_scalars_are_refused_with_a_fix(value: str, fix: str) -> None:
    text = HEAD + f"params:\n  x: {value}\nrules:\n  - id: r\n    require: params.x == params.x\n"
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    (only,) = info.value.diagnostics
    assert only.code == "PT106" and fix in only.message
    assert (only.span.line, only.span.col) == (5, 6)
    quoted = text.replace(f"x: {value}", f'x: "{value}"')
    load_policy_text(quoted)  # quoted, it is what it says (text, or a decimal number)


def test_an_integer_of_thousands_of_digits_is_refused() -> None:
    text = (
        HEAD
        + f"params:\n  x: {'9' * 4_300}\nrules:\n  - id: r\n    require: params.x * params.x > 0\n"
    )
    assert codes(text) == ["PT116"]


def test_ids_and_names_with_a_trailing_newline_are_refused() -> None:
    assert codes(
        HEAD.replace("name: t", 'name: "t\\n"') + "rules:\n  - id: r\n    require: true\n"
    ) == ["PT111"]
    assert codes(HEAD + 'rules:\n  - id: "r\\n"\n    require: true\n') == ["PT111"]


def _numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(
            ["1e400", "-1e400", ".inf", ".nan", "1e-400", "6%", "600%", "1_500", "0.1e309"]
        ),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=_numbers(),
    where=st.sampled_from(
        ["param", "min_risk_abs", "ttl", "version", "max_trades", "risk_multiplier"]
    ),
)
def test_any_number_anywhere_loads_or_is_a_policy_error(value: str, where: str) -> None:
    """Oversized, non-finite and odd numbers in every numeric position: a PolicyError or a
    policy, never another exception."""
    body = {
        "param": f"params:\n  x: {value}\n",
        "min_risk_abs": f"min_risk_abs: {value}\n",
        "ttl": f"reservation_ttl_sec: {value}\n",
        "version": "",
        "max_trades": f"strategies:\n  S: {{max_trades: {value}}}\n",
        "risk_multiplier": f"modes:\n  normal: {{risk_multiplier: {value}}}\n",
    }[where]
    head = HEAD.replace("version: 1", f"version: {value}") if where == "version" else HEAD
    text = head + body + "rules:\n  - id: r\n    limit: 100\n"
    with contextlib.suppress(PolicyError):
        load_policy_text(text, "p.yaml")


def _seal_at_top(text: str, block: str) -> str:
    """``text`` with the integrity ``block`` right after its `version:` line."""
    at = text.index("\nversion:")
    end = text.index("\n", at + 1) + 1
    return text[:end] + block + text[end:]


def test_integrity_catches_a_file_cut_at_a_rule_boundary(tmp_path: Path) -> None:
    """A file cut after its first rule is valid YAML; the seal at the top survives the cut
    and its declared rule count and digest refuse it."""
    text = (ROOT / "policies" / "portfolio.yaml").read_text()
    data = yaml.safe_load(text)
    count = len(data["rules"])
    digest = content_digest(data)
    sealed = _seal_at_top(text, f'integrity:\n  rules: {count}\n  digest: "{digest}"\n')
    policy = load_policy_text(sealed, "sealed.yaml")
    assert len(policy.rules) == count
    cut = sealed[: sealed.index("  - id: symbol-cap")]
    with pytest.raises(PolicyError) as info:
        load_policy_text(cut, "cut.yaml")
    assert [d.code for d in info.value.diagnostics] == ["PT113", "PT113"]
    edited = sealed.replace("heat_cap: 6%", "heat_cap: 60%")
    with pytest.raises(PolicyError, match=r"does not match `integrity\.digest`"):
        load_policy_text(edited, "edited.yaml")
    assert load_policy_text(edited.replace(digest, content_digest(yaml.safe_load(edited))))


def test_a_seal_at_the_end_is_refused_because_a_truncation_removes_it() -> None:
    """Pasted at the end (where `policy integrity` used to say), a truncation cut the block
    off with the caps and the cut file loaded: a block after the header is refused."""
    text = (ROOT / "policies" / "portfolio.yaml").read_text()
    count = len(yaml.safe_load(text)["rules"])
    with pytest.raises(PolicyError, match="must be at the top of the file") as info:
        load_policy_text(text + f"integrity:\n  rules: {count}\n", "end.yaml")
    assert [d.code for d in info.value.diagnostics] == ["PT113"]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_policy_event_naming_dev_zero_is_refused_not_read_forever() -> None:
    event: dict[str, Any] = {
        "type": "policy",
        "name": "x",
        "version": 1,
        "hash": "sha256:0",
        "path": "/dev/zero",
    }
    from policy_engine.document.yaml_source import read_policy_bytes

    with pytest.raises(EventError, match="not a regular file"):
        policy_from_event(event, read_policy_bytes)
    with pytest.raises(PolicyError, match="PT001"):
        load_policy("/dev/zero")


def test_policy_integrity_prints_a_block_that_seals_the_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import cli

    path = tmp_path / "p.yaml"
    path.write_text((ROOT / "policies" / "portfolio.yaml").read_text())
    result = CliRunner().invoke(cli, ["integrity", str(path)])
    assert result.exit_code == 0 and result.stdout.startswith("integrity:\n  rules: ")
    assert f"paste this block at the top of {path}, right after `version:`" in result.stderr
    path.write_text(_seal_at_top(path.read_text(), result.stdout))
    assert load_policy(path).name == "portfolio-default"
    path.write_text(path.read_text().replace("max_positions: 5", "max_positions: 50"))
    with pytest.raises(PolicyError, match="PT113"):
        load_policy(path)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a YAML document: containers and leaves."""
    found = [at] if at else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*at, i))
    return found


def _replaced(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = _replaced(node[path[0]], path[1:], value)
    return copy


@pytest.mark.parametrize("example", ["portfolio.yaml", "strategy_limits.yaml"])
def test_every_value_of_the_examples_replaced_by_the_wrong_shape_is_a_positioned_error(
    example: str,
) -> None:
    """Each path of a real policy (section, entry or scalar) replaced by null, a list, a map
    or text: checked without an internal error, and never loaded when refused. (A cohort in
    its short list form once crashed the checker when anything else in the file was wrong.)"""
    from policy_engine.analysis.check import check_bytes

    data = yaml.safe_load((ROOT / "policies" / example).read_text())
    tried = 0
    shapes: tuple[Any, ...] = (None, [], {}, "x")
    for path in _paths(data):
        for wrong in shapes:
            text = yaml.safe_dump(_replaced(data, path, wrong), sort_keys=False)
            result = check_bytes(text.encode(), example)
            codes = [x.code for x in result.diagnostics]
            assert "PT499" not in codes, (path, wrong, result.diagnostics)
            if result.checked is None:
                with pytest.raises(PolicyError):
                    load_policy_text(text, example)
            tried += 1
    assert tried > 100
