"""`policy verify`: the bundled policies' properties decided, a planted defect per property
found with a counterexample that replays through `policy test`, the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import z3
from click.testing import CliRunner

from policy_engine.cli import cli
from policy_engine.engine.policy import load_policy
from policy_engine.testing.runner import run_file
from policy_engine.verify import BUILTIN, verify

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted((ROOT / "policies").glob("*.yaml"))
BUNDLED = [p for p in BUNDLED if not p.name.endswith("_test.yaml")]

BASE = """\
api_version: policy-engine/v1
name: planted
version: {version}
params: {{cap: {cap}, heat_cap: 6%}}
strategies: {{A: {{max_trades: 2}}, B: {{max_trades: 1}}}}
modes:
  normal: {{risk_multiplier: 1.0}}
  defensive: {{risk_multiplier: 0.5, when: "portfolio.drawdown >= 5%"}}
  risk_off: {{risk_multiplier: 0.0, flatten_only: true, when: "portfolio.drawdown >= 10%"}}
rules:
{rules}
"""
EXITS = """\
  - id: exits
    allow: intent.risk_reducing
"""
FLATTEN = """\
  - id: flatten-only
    require: not mode.flatten_only
    code: rejected_risk_off
"""
TRADES = """\
  - id: max-trades
    require: strategy.active_trades < strategy.max_trades
    code: rejected_strategy_limit
"""
SYMBOL_CAP = """\
  - id: symbol-cap
    limit: params.cap * mode.risk_multiplier - symbol.heat
    on_exceed: clip
    code: rejected_symbol_cap
"""
HEAT = """\
  - id: portfolio-heat
    limit: params.heat_cap * portfolio.equity * mode.risk_multiplier - portfolio.heat
    on_exceed: clip
    code: rejected_heat
"""
SOUND = EXITS + FLATTEN + TRADES + SYMBOL_CAP + HEAT


def write(tmp: Path, rules: str, name: str = "p.yaml", version: int = 1, cap: int = 1500) -> Path:
    path = tmp / name
    path.write_text(BASE.format(version=version, cap=cap, rules=rules), encoding="utf-8")
    return path


def run(*args: str, stdout: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", *args])
    return result.exit_code, result.stdout if stdout else result.output


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_every_builtin_property_of_the_bundled_policies_is_decided(path: Path) -> None:
    results = verify(load_policy(path), list(BUILTIN), timeout=60)
    assert {r.property: r.status for r in results if r.status == "unknown"} == {}
    assert {r.property: r.status for r in results} == dict.fromkeys(BUILTIN, "proved")


def test_a_switch_of_the_constants_is_noted_not_reported_as_shadowed() -> None:
    # every strategy of portfolio.yaml is enabled: `strategy-enabled` never decides, even
    # first in the chain; no earlier rule shadows it
    (result,) = verify(load_policy(ROOT / "policies/portfolio.yaml"), ["rules-reachable"], 60)
    assert result.status == "proved"
    assert "`strategy-enabled` never decides with the declared constants" in result.reason
    (day,) = verify(load_policy(ROOT / "policies/day_trading.yaml"), ["rules-reachable"], 60)
    assert day.status == "proved"
    assert "switch" not in day.reason


def test_the_sound_planted_policy_proves_every_property(tmp_path: Path) -> None:
    code, out = run(str(write(tmp_path, SOUND)))
    assert code == 0, out
    assert "5 proved, 0 violated, 0 unknown" in out


PLANTED = {
    "caps-hold": (
        "an allow that bypasses a cap",
        SOUND.replace(EXITS, EXITS + '  - id: vip\n    allow: intent.strategy == "B"\n'),
    ),
    "flatten-only-holds": (
        "an allow before flatten-only",
        EXITS + '  - id: vip\n    allow: intent.strategy == "B"\n' + FLATTEN + TRADES + SYMBOL_CAP,
    ),
    "modes-monotonic": (
        "a gate that loosens a severe mode",
        EXITS
        + '  - id: normal-small\n    require: mode.name != "normal" or intent.risk <= 100\n'
        + TRADES
        + HEAT,
    ),
    "rules-reachable": (
        "a shadowed rule",
        SOUND + "  - id: shadowed\n    require: intent.risk <= params.cap\n",
    ),
    "never-errors": (
        "a division by a live count",
        SOUND + "  - id: per-trade\n    require: intent.risk <= 1000 / strategy.active_trades\n",
    ),
}


@pytest.mark.parametrize("prop", sorted(PLANTED))
def test_a_planted_defect_is_found_and_its_counterexample_replays(
    prop: str, tmp_path: Path
) -> None:
    _what, rules = PLANTED[prop]
    policy = write(tmp_path, rules)
    emitted = tmp_path / "found_test.yaml"
    code, out = run(
        str(policy),
        *("--property", prop, "--emit-tests", str(emitted), "--format", "json"),
        stdout=True,
    )
    assert code == 1, out
    (result,) = json.loads(out)["results"]
    assert result["status"] == "violated"
    if prop == "rules-reachable":  # unreachability has no trade to show, only the rule
        assert "shadowed" in result["reason"] and "before it" in result["reason"]
        assert not emitted.exists()  # no trade to write
        return
    assert result["counterexample"]
    report = run_file(str(emitted))
    assert report.error is None
    assert report.results and all(t.passed for t in report.results)


def test_a_loosened_cap_is_wider_and_a_refactor_is_equivalent(tmp_path: Path) -> None:
    old = write(tmp_path, SOUND, "old.yaml")
    looser = write(tmp_path, SOUND, "new.yaml", version=2, cap=2000)
    emitted = tmp_path / "new_test.yaml"
    code, out = run(str(looser), "--against", str(old), "--emit-tests", str(emitted))
    assert code == 1, out
    assert "no-wider: violated" in out and "equivalent: violated" in out
    assert all(t.passed for t in run_file(str(emitted)).results)
    # the same rules with the cap written differently
    refactor = (
        EXITS
        + FLATTEN
        + TRADES
        + SYMBOL_CAP.replace(
            "params.cap * mode.risk_multiplier - symbol.heat",
            "mode.risk_multiplier * params.cap - symbol.active_risk - symbol.reserved_risk",
        )
        + HEAT
    )
    same = write(tmp_path, refactor, "same.yaml", version=2)
    code, out = run(str(same), "--against", str(old))
    assert code == 0, out
    assert "no-wider: proved" in out and "equivalent: proved" in out


def test_usage_errors_and_an_inconclusive_property(tmp_path: Path) -> None:
    assert run()[0] == 2
    assert run(str(tmp_path / "missing.yaml"))[0] == 2
    sound = write(tmp_path, SOUND)
    assert run(str(sound), "--property", "no-such")[0] == 2
    assert run(str(sound), "--property", "no-wider")[0] == 2  # needs --against
    rounding = SOUND + "  - id: rounded\n    limit: round(portfolio.equity / 7)\n"
    code, out = run(str(write(tmp_path, rounding, "r.yaml")), "--property", "caps-hold")
    assert code == 3, out
    assert "`round` has no solver semantics" in out
    # of constants only, a function without solver semantics is computed like the engine does
    constant = SOUND + "  - id: rounded\n    limit: round(params.cap / 7) * 7 - portfolio.heat\n"
    code, out = run(str(write(tmp_path, constant, "c.yaml")), "--property", "caps-hold")
    assert code == 0, out
    assert "3 cap(s) hold" in out


PROPERTIES = """\
properties:
  - id: one-percent
    assert: not decision.approved or decision.approved_risk_abs <= 1% * portfolio.equity
  - id: nothing-new-in-risk-off
    assert: mode.name != "risk_off" or not decision.approved or intent.risk_reducing
  - id: caps-name-themselves
    assert: decision.rule != "symbol-cap" or decision.approved_risk_abs <= params.cap
"""


def test_a_policys_own_properties_are_proved_or_shown_violated(tmp_path: Path) -> None:
    path = write(tmp_path, SOUND + PROPERTIES)
    # the engine ignores them: the policy loads and decides as without them
    assert load_policy(path).rules == load_policy(write(tmp_path, SOUND, "plain.yaml")).rules
    emitted = tmp_path / "own_test.yaml"
    code, out = run(
        str(path),
        "--property",
        "one-percent",
        "--property",
        "nothing-new-in-risk-off",
        "--property",
        "caps-name-themselves",
        "--emit-tests",
        str(emitted),
    )
    assert code == 1, out
    assert "one-percent: violated" in out
    assert "nothing-new-in-risk-off: proved" in out
    assert "caps-name-themselves: proved" in out
    assert all(t.passed for t in run_file(str(emitted)).results)


def test_a_property_reading_an_unknown_decision_field_does_not_load(tmp_path: Path) -> None:
    bad = SOUND + "properties:\n  - id: p\n    assert: decision.approve\n"
    code, out = run(str(write(tmp_path, bad)))
    assert code == 2
    assert "decision.approve" in out


def test_policy_check_verify_lints_then_proves(tmp_path: Path) -> None:
    sound = write(tmp_path, SOUND)
    result = CliRunner().invoke(cli, ["check", "--verify", str(sound)])
    assert result.exit_code == 0, result.output
    assert "caps-hold: proved" in result.output
    planted = write(tmp_path, PLANTED["caps-hold"][1], "planted.yaml")
    result = CliRunner().invoke(cli, ["check", "--verify", str(planted)])
    assert result.exit_code == 1, result.output
    assert "caps-hold: violated" in result.output
    result = CliRunner().invoke(cli, ["check", "--verify", "--format", "json", str(sound)])
    verified = json.loads(result.stdout)["verify"]
    assert {r["property"]: r["status"] for r in verified} == dict.fromkeys(BUILTIN, "proved")


def test_a_model_the_engine_does_not_reproduce_is_unknown_never_a_violation(
    tmp_path: Path,
) -> None:
    # The solver finds a trade the looser version approves; replaying that prediction on
    # the stricter version (as a translation bug would) is refused, not reported.
    from policy_engine.verify.chain import ChainModel
    from policy_engine.verify.properties import Query, solve
    from policy_engine.verify.world import Unknown, World

    strict = load_policy(write(tmp_path, SOUND, "strict.yaml"))
    loose = load_policy(write(tmp_path, SOUND, "loose.yaml", version=2, cap=2000))
    world = World.of([strict.checked, loose.checked])
    new = ChainModel(world, loose.checked, loose.data).decide()
    old = ChainModel(world, strict.checked, strict.data).decide()
    wider = z3.And(new.status == 0, z3.Or(old.status != 0, new.amount > old.amount))
    assert solve(world, Query(wider, [(loose, new, None)], ""), 30)  # the real violation
    with pytest.raises(Unknown, match="translation bug"):
        solve(world, Query(wider, [(strict, new, None)], ""), 30)


def test_a_lock_is_any_state_and_a_composite_key_is_unknown_by_name() -> None:
    """Issue 22: `lock.NAME` is a free boolean per key (its counterexamples replay with a
    lock that ends after the intent); a scope with a composite key is not modelled."""
    cookbook = ROOT / "docs" / "cookbook"
    results = verify(load_policy(cookbook / "cooldown_lock.yaml"), list(BUILTIN), timeout=60)
    assert {r.property: r.status for r in results} == dict.fromkeys(BUILTIN, "proved")
    (reach,) = verify(load_policy(cookbook / "pair_side_guard.yaml"), ["rules-reachable"], 60)
    assert reach.status == "unknown"
    assert "scope `pair_side` has a composite key" in reach.reason


def test_a_sum_window_is_a_signed_amount_to_the_verifier(tmp_path: Path) -> None:
    """Issue 22: a sum of realized P&L may be negative (a count may not), so the first loss
    limit can decide and only the looser one after it is shadowed."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "api_version: policy-engine/v1\nname: agg\nversion: 1\n"
        "strategies: {A: {max_trades: 2}}\nwindows:\n"
        "  pnl: {count: closes, per: portfolio, over: 1h, sum: realized_pnl}\n"
        "  fall: {count: closes, per: portfolio, over: 1h, drawdown: realized_pnl}\n"
        "rules:\n"
        "  - {id: loss, require: portfolio.pnl > -100}\n"
        "  - {id: looser-loss, require: portfolio.pnl > -200}\n"
        "  - {id: fall, require: portfolio.fall < 50}\n",
        encoding="utf-8",
    )
    (reach,) = verify(load_policy(path), ["rules-reachable"], 60)
    assert reach.status == "violated"
    assert "rule `looser-loss` never decides" in reach.reason


def test_without_z3_verify_says_which_extra_to_install() -> None:
    """A base install (no `verify` extra) gets a usage error naming the extra, not a
    traceback: z3 is made unimportable in a fresh interpreter."""
    code = (
        "import sys; sys.modules['z3'] = None\n"
        "from policy_engine.cli import main\n"
        "main(['verify', 'policies/portfolio.yaml'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'policy-engine[verify]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_window_of_risk_or_notional_is_never_negative_and_of_fees_may_be(
    tmp_path: Path,
) -> None:
    """Issue 22: the verifier types each aggregate by its quantity: a max of approved risk,
    a sum of the notional fills moved, a min of what closes took off are amounts from 0 up
    (a rule requiring one at least 0 never decides), a sum of fees a signed one (a rebate),
    so a rule bounding it from below can decide."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "api_version: policy-engine/v1\nname: agg\nversion: 1\n"
        "strategies: {A: {max_trades: 2}}\nwindows:\n"
        "  fees: {count: fills, per: portfolio, over: 1h, sum: fee}\n"
        "  biggest: {count: approvals, per: portfolio, over: 1h, max: risk}\n"
        "  traded: {count: fills, per: portfolio, over: 1h, sum: notional}\n"
        "  unwound: {count: closes, per: portfolio, over: 1h, min: notional}\n"
        "rules:\n"
        "  - {id: rebates, require: portfolio.fees > -10}\n"
        "  - {id: never, require: portfolio.biggest >= 0}\n"
        "  - {id: never_traded, require: portfolio.traded >= 0}\n"
        "  - {id: never_unwound, require: portfolio.unwound > -1}\n",
        encoding="utf-8",
    )
    (reach,) = verify(load_policy(path), ["rules-reachable"], 60)
    never = "`never`, `never_traded`, `never_unwound` never decides"
    assert never in reach.reason, reach.reason
    assert "`rebates` never decides" not in reach.reason
