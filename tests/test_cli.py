"""The command line: golden output for every diagnostic code, garbage inputs, exit codes.

Golden files live in tests/golden/lint/: `<CODE>.yaml` is a small policy that
triggers `<CODE>`, and `<CODE>.txt`, `<CODE>.json`, `<CODE>.github` are the
expected `policy-check` output in each format (run from that directory, so
paths are bare file names). The tests only compare; `UPDATE_GOLDEN=1 pytest
tests/test_cli.py` rewrites the expected files from the current output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine import load_policy
from policy_engine.cli import check_command, cli
from policy_engine.control.journal import read_events
from policy_engine.diagnostics import CODES, PolicyError, Severity

from support.hostile import garbage_inputs

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "lint"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FORMATS = {"text": ".txt", "concise": ".concise", "json": ".json", "github": ".github"}
# Inputs written by the test: too big to keep in the repository (PT002), or a folder of two
# files (PT436: an unsealed file checked with a sealed one, given as an extra argument).
GENERATED = {"PT002", "PT436"}
EXTRA_ARGS = {"PT436": ["sealed.yaml"]}


@pytest.fixture
def in_golden(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run from the golden directory so reported paths are bare file names."""
    monkeypatch.chdir(GOLDEN)
    yield GOLDEN


def normalise(text: str, fmt: str) -> str:
    """Replace the only non-deterministic part, the elapsed time."""
    if fmt == "json":
        data = json.loads(text)
        data["summary"]["seconds"] = 0
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return re.sub(r" in \d+\.\d+s", " in 0.00s", text)


def run_golden(name: str, fmt: str) -> tuple[int, str]:
    args = [f"{name}.yaml", *EXTRA_ARGS.get(name, []), "--format", fmt]
    if (Path.cwd() / f"{name}.old").exists():
        args += ["--against", f"{name}.old"]
    result = CliRunner().invoke(check_command, args, catch_exceptions=False)
    return result.exit_code, normalise(result.stdout, fmt)


def golden_names() -> list[str]:
    return sorted({p.stem for p in GOLDEN.glob("PT*.yaml")} | GENERATED)


def write_generated(name: str, folder: Path) -> None:
    if name == "PT002":
        header = b"api_version: policy-engine/v1\nname: big\nversion: 1\nrules: []\n"
        (folder / "PT002.yaml").write_bytes(header + b"# " + b"x" * 5_000_000 + b"\n")
    if name == "PT436":
        body = "rules:\n  - id: a\n    require: intent.reduce_only\n"
        head = "api_version: policy-engine/v1\nname: golden\nversion: 1\n"
        (folder / "PT436.yaml").write_text(head + body)
        (folder / "sealed.yaml").write_text(head + "integrity:\n  rules: 1\n" + body)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", golden_names())
def test_golden_output(
    name: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`policy-check <CODE>.yaml` prints exactly the stored output, in every format."""
    expected_file = GOLDEN / f"{name}{FORMATS[fmt]}"
    if name in GENERATED:
        write_generated(name, tmp_path)
        if (GOLDEN / f"{name}.old").exists():  # pragma: no cover
            (tmp_path / f"{name}.old").write_bytes((GOLDEN / f"{name}.old").read_bytes())
        monkeypatch.chdir(tmp_path)
    else:
        monkeypatch.chdir(GOLDEN)
    code, output = run_golden(name, fmt)
    if UPDATE:
        expected_file.write_text(output, "utf-8")
    assert expected_file.exists(), f"missing golden file {expected_file.name} (UPDATE_GOLDEN=1)"
    assert output == expected_file.read_text("utf-8")
    assert code == (1 if CODES[name].severity is Severity.ERROR else 0)
    assert name in output


def test_every_code_has_a_golden_policy() -> None:
    """Every registered code except the internal-error one has golden files."""
    covered = set(golden_names())
    missing = sorted(set(CODES) - covered - {"PT499"})
    assert missing == []


def test_golden_policies_load_exactly_when_policy_check_finds_no_core_error() -> None:
    """`policy-check` reports what `load_policy` refuses, and nothing it passes is refused."""
    for path in sorted(GOLDEN.glob("PT*.yaml")):
        core_error = int(path.stem[2]) < 4  # PT0xx..PT3xx are the runtime's own checks
        try:
            load_policy(path)
            loaded = True
        except PolicyError:
            loaded = False
        assert loaded != core_error, path.name


# --- exit codes, formats, options -----------------------------------------------------


def test_bundled_policies_pass_strict() -> None:
    """Every bundled policy passes `policy-check --strict` with a one-line summary."""
    result = CliRunner().invoke(check_command, [str(ROOT / "policies"), "--strict"])
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"checked \d+ files, \d+ rules in \d+\.\d\ds: no problems found", lines[0])


def test_warnings_pass_unless_strict(in_golden: Path) -> None:
    """A warning alone exits 0; `--strict` makes it exit 1."""
    runner = CliRunner()
    assert runner.invoke(check_command, ["PT404.yaml"]).exit_code == 0
    assert runner.invoke(check_command, ["PT404.yaml", "--strict"]).exit_code == 1


def test_directory_output_is_sorted_by_file_line_column(in_golden: Path) -> None:
    """Checking a directory reports every file, sorted by path, line and column."""
    result = CliRunner().invoke(check_command, [".", "--format", "concise"])
    assert result.exit_code == 1
    keys = []
    for line in result.stdout.splitlines()[:-1]:
        m = re.match(r"(.+?):(\d+):(\d+): (PT\d{3}) ", line)
        if m:
            keys.append((m.group(1), int(m.group(2)), int(m.group(3))))
    assert keys == sorted(keys)
    assert len({k[0] for k in keys}) >= 30


def test_json_format_is_machine_readable(in_golden: Path) -> None:
    """`--format json` gives path, line, col, code, severity, message and help per finding
    (the message is the one-line text, help included; `help` alone, or null)."""
    result = CliRunner().invoke(check_command, ["PT405.yaml", "--format", "json"])
    data = json.loads(result.stdout)
    first = data["diagnostics"][0]
    assert first == {
        "path": "PT405.yaml",
        "line": 9,
        "col": 30,
        "code": "PT405",
        "severity": "error",
        "message": "strategy `SCALPR` is not declared in `strategies` (did you mean `SCALPER`?)",
        "help": "did you mean `SCALPER`?",
    }
    assert data["summary"]["errors"] == 2


def test_github_format_annotations(in_golden: Path) -> None:
    """`--format github` prints one workflow command per finding, warnings as warnings."""
    result = CliRunner().invoke(check_command, ["PT404.yaml", "--format", "github"])
    assert result.stdout.splitlines()[0] == (
        "::warning file=PT404.yaml,line=6,col=3,title=PT404::PT404 param `symbol_cap` is never used"
    )


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """A missing path, an empty directory or a bad option is a usage error (exit 2)."""
    runner = CliRunner()
    assert runner.invoke(check_command, [str(tmp_path / "nope.yaml")]).exit_code == 2
    assert runner.invoke(check_command, [str(tmp_path)]).exit_code == 2
    assert runner.invoke(check_command, []).exit_code == 2
    policy = str(ROOT / "policies" / "portfolio.yaml")
    assert runner.invoke(check_command, [policy, "--format", "xml"]).exit_code == 2
    assert runner.invoke(check_command, [policy, "--against", "no-such-rev"]).exit_code == 2


def test_against_unchanged_file_is_clean(tmp_path: Path) -> None:
    """`--against` with an identical old version: no PT420 and no changes."""
    policy = ROOT / "policies" / "portfolio.yaml"
    old = tmp_path / "old.yaml"
    old.write_bytes(policy.read_bytes())
    result = CliRunner().invoke(check_command, [str(policy), "--against", str(old)])
    assert result.exit_code == 0
    assert f"no changes since {old}" in result.stdout


def test_against_comment_only_change_needs_no_bump(tmp_path: Path) -> None:
    """Reformatting or comments do not change the policy's meaning: no version bump needed."""
    text = (ROOT / "policies" / "strategy_limits.yaml").read_text()
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(text)
    new.write_text("# reviewed 2026-01-01\n" + text.replace("max_trades: 2}", "max_trades:  2 }"))
    result = CliRunner().invoke(check_command, [str(new), "--against", str(old)])
    assert result.exit_code == 0, result.stdout


def test_against_git_revision(tmp_path: Path) -> None:
    """`--against REV` reads the same path at a git revision; a bump makes it clean."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    policy = tmp_path / "p.yaml"
    text = (ROOT / "policies" / "strategy_limits.yaml").read_text()
    policy.write_text(text)
    subprocess.run(["git", "-C", str(tmp_path), "add", "p.yaml"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "v1"], check=True, env=env)
    policy.write_text(text.replace("max_trades: 2}", "max_trades: 3}"))
    runner = CliRunner()
    result = runner.invoke(check_command, [str(policy), "--against", "HEAD"])
    assert result.exit_code == 1
    assert "PT420" in result.stdout
    assert "~ strategies.SCALPER.max_trades: 2 -> 3" in result.stdout
    policy.write_text(
        text.replace("max_trades: 2}", "max_trades: 3}").replace("version: 2", "version: 3")
    )
    result = runner.invoke(check_command, [str(policy), "--against", "HEAD"])
    assert result.exit_code == 0, result.stdout
    assert "version 2 -> 3" in result.stdout


@pytest.mark.parametrize("value", ["--output=/tmp/pwned", "-p", "--upload-pack=touch x"])
def test_against_never_passes_an_option_to_git(tmp_path: Path, value: str) -> None:
    """`--against=--output=FILE` used to reach `git show` as an option (and write FILE)."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    policy = tmp_path / "p.yaml"
    policy.write_text((ROOT / "policies" / "strategy_limits.yaml").read_text())
    result = CliRunner().invoke(check_command, [str(policy), f"--against={value}"])
    assert result.exit_code == 2
    assert "cannot start with `-`" in result.output
    assert not Path("/tmp/pwned").exists()


def test_policy_check_subcommand_matches_console_script(in_golden: Path) -> None:
    """`policy check` and `policy-check` print the same thing."""
    a = CliRunner().invoke(check_command, ["PT403.yaml"])
    b = CliRunner().invoke(cli, ["check", "PT403.yaml"])
    assert normalise(a.stdout, "text") == normalise(b.stdout, "text")
    assert a.exit_code == b.exit_code == 0


def test_console_scripts_run_as_processes(tmp_path: Path) -> None:
    """The real entry points exit 0 / 1 / 2 as documented, with no traceback."""
    code = "import sys; from policy_engine.cli import check_main; check_main(sys.argv[1:])"
    clean = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "policies")], capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe garbage")
    found = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True)
    assert found.returncode == 1
    assert "PT001" in found.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "policy_engine.cli", "check"], capture_output=True, text=True
    )
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr


# --- garbage ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(garbage_inputs()))
def test_garbage_gives_a_diagnostic(name: str, tmp_path: Path) -> None:
    """Every garbage input exits 1 with a PT diagnostic (benchmarks/hostile.py times it)."""
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(garbage_inputs()[name])
    result = CliRunner().invoke(check_command, [str(path), "--format", "json"])
    assert result.exit_code == 1, result.stdout
    data = json.loads(result.stdout)
    assert data["diagnostics"], name
    assert all(re.fullmatch(r"PT\d{3}", x["code"]) for x in data["diagnostics"])
    assert not any(x["code"] == "PT499" for x in data["diagnostics"])


# --- explain and schema ---------------------------------------------------------------------


def write(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_explain_traces_every_rule(tmp_path: Path) -> None:
    """`policy explain` shows the decision and every rule's verdict with its values."""
    intent = write(
        tmp_path / "intent.json",
        {
            "intent_id": "i-1",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 2000,
            "timestamp": "2026-01-01T00:00:00Z",
        },
    )
    state = tmp_path / "state.yaml"
    state.write_text("equity: 100000\nstrategies:\n  SCALPER: {active_trades: 1}\n")
    policy = str(ROOT / "policies" / "portfolio.yaml")
    result = CliRunner().invoke(cli, ["explain", policy, "--intent", intent, "--state", str(state)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "decision approved_clipped (2000 -> 1500) by `symbol-cap`" in out
    assert " 6. symbol-cap" in out and "clip" in out
    assert "strategy.active_trades = 1" in out
    as_json = CliRunner().invoke(
        cli, ["explain", policy, "--intent", intent, "--state", str(state), "--json"]
    )
    data = json.loads(as_json.stdout)
    assert [r["rule_id"] for r in data["rules"]][:2] == ["risk-reducing-allowed", "flatten-only"]
    assert data["decision"]["decision_code"] == "approved_clipped"


def test_explain_refuses_a_bad_intent(tmp_path: Path) -> None:
    """A malformed intent is a usage error naming the bad field, not a traceback."""
    intent = write(tmp_path / "intent.json", {"intent_id": "x", "side": "up"})
    state = write(tmp_path / "state.json", {"equity": 1})
    policy = str(ROOT / "policies" / "portfolio.yaml")
    result = CliRunner().invoke(cli, ["explain", policy, "--intent", intent, "--state", state])
    assert result.exit_code == 2
    assert "side" in result.output


def test_explain_reports_a_broken_policy(in_golden: Path, tmp_path: Path) -> None:
    """A policy that does not load prints its diagnostics and exits 1."""
    intent = write(tmp_path / "i.json", {})
    state = write(tmp_path / "s.json", {})
    result = CliRunner().invoke(
        cli, ["explain", "PT301.yaml", "--intent", intent, "--state", state]
    )
    assert result.exit_code == 1
    assert "PT301" in result.output


def test_schema_prints_the_policy_schema() -> None:
    """`policy schema` prints the JSON Schema shipped with the package."""
    result = CliRunner().invoke(cli, ["schema", "policy"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["title"].startswith("policy-engine policy file")
    listed = CliRunner().invoke(cli, ["schema", "--list"])
    assert "policy\tpolicy.schema.json" in listed.stdout
    every = json.loads(CliRunner().invoke(cli, ["schema"]).stdout)
    # one schema shipped: printed as is; several: one object keyed by name
    assert every == data or every["policy"] == data
    assert CliRunner().invoke(cli, ["schema", "nope"]).exit_code == 2


# --- run and replay ----------------------------------------------------------------------------

EVENTS = ROOT / "tests" / "data" / "cli_events.jsonl"  # a fixed stream (examples/ may evolve)
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"


def test_run_prints_each_decision_and_a_summary(tmp_path: Path) -> None:
    """`policy run` prints one line per decision with its reason, then totals by rule."""
    journal = tmp_path / "run.jsonl"
    result = CliRunner().invoke(
        cli, ["run", str(PORTFOLIO), str(EVENTS), "--journal", str(journal)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "#2 scalp-1 SCALPER BTC-USD 400 -> 400 APPROVED approved_full"
    assert any(
        "scalp-3" in x
        and "REJECTED rejected_strategy_limit" in x
        and "strategy.active_trades=2 strategy.max_trades=2" in x
        for x in lines
    )
    assert "9 decisions: 5 approved, 2 clipped, 2 rejected" in lines
    assert "  rejected by strategy-max-trades: 1" in lines
    # 14 events + the policy and opening equity events, and the checkpoint written on close
    assert len(list(read_events(journal))) == 16
    assert journal.read_text().count("\n") == 17
    assert json.loads(journal.read_text().splitlines()[-1])["type"] == "checkpoint"


def test_run_json_prints_records(tmp_path: Path) -> None:
    """`policy run --json` prints JSON Lines decision records; the summary goes to stderr."""
    result = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(EVENTS), "--json"])
    assert result.exit_code == 0
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(records) == 9
    assert {r["kind"] for r in records} == {"decision"}
    assert json.loads(result.stderr)["summary"]["rejected_by_rule"] == {
        "flatten-only": 1,
        "strategy-max-trades": 1,
    }


def test_replay_reproduces_a_run(tmp_path: Path) -> None:
    """A journal written by `policy run` replays with zero differences, also vs its records."""
    journal, records = tmp_path / "run.jsonl", tmp_path / "records.jsonl"
    runner = CliRunner()
    run = runner.invoke(
        cli, ["run", str(PORTFOLIO), str(EVENTS), "--journal", str(journal), "--json"]
    )
    records.write_text(run.stdout)
    result = runner.invoke(cli, ["replay", str(journal)])
    assert result.exit_code == 0
    assert result.stdout.strip() == "all 9 decisions reproduced (matches an independent replay)"
    result = runner.invoke(cli, ["replay", str(journal), "--records", str(records)])
    assert result.exit_code == 0, result.output
    assert "matches the recorded decisions" in result.stdout


def test_replay_detects_a_tampered_record(tmp_path: Path) -> None:
    """A recorded decision that the replay does not reproduce makes replay exit 1."""
    journal, records = tmp_path / "run.jsonl", tmp_path / "records.jsonl"
    run = CliRunner().invoke(
        cli, ["run", str(PORTFOLIO), str(EVENTS), "--journal", str(journal), "--json"]
    )
    lines = run.stdout.splitlines()
    first = json.loads(lines[0])
    first["approved_risk_abs"] = 1.0
    records.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    result = CliRunner().invoke(cli, ["replay", str(journal), "--records", str(records)])
    assert result.exit_code == 1
    assert "1 of 9 decisions not reproduced" in result.stdout


def test_replay_what_if_reports_exactly_the_changed_decisions(tmp_path: Path) -> None:
    """With an edited policy, what-if lists each changed decision, how, and by which rule."""
    journal = tmp_path / "run.jsonl"
    CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(EVENTS), "--journal", str(journal)])
    edited = tmp_path / "v2.yaml"
    edited.write_text(
        PORTFOLIO.read_text()
        .replace(
            "SCALPER: {enabled: true, max_trades: 2}", "SCALPER: {enabled: true, max_trades: 3}"
        )
        .replace("version: 1", "version: 2")
    )
    result = CliRunner().invoke(cli, ["replay", str(journal), "--policy", str(edited)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "#5 scalp-3 SCALPER SOL-USD: rejected -> approved by strategy-max-trades "
        "(rejected_strategy_limit 0 -> approved_full 300)",
        # the third SCALPER trade now holds 300 of cohort L1's budget: a later L1 intent clips
        "#10 brk-1 BREAKOUT ETH-USD: approved -> clipped by cohort-cap "
        "(approved_full 1000 -> approved_clipped 700)",
        "what-if portfolio-default v2: 2 of 9 decisions would change",
        "  approved -> clipped: 1",
        "  rejected -> approved: 1",
        "  by cohort-cap: 1",
        "  by strategy-max-trades: 1",
        "  approved 5 -> 5, clipped 2 -> 3, rejected 2 -> 1",
    ]


def test_run_refuses_malformed_events(tmp_path: Path) -> None:
    """A line that is not JSON, or an unknown event type, is a usage error (exit 2)."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "equity", "equity": 1, "timestamp": null}\nnot json\n')
    result = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(bad)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output
    bad.write_text('{"type": "teleport"}\n')
    result = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(bad)])
    assert result.exit_code == 2
    assert "teleport" in result.output


def test_every_code_is_documented_with_its_severity() -> None:
    """docs/codes.md has one table row per registered code, with its registered severity."""
    text = (ROOT / "docs" / "codes.md").read_text("utf-8")
    for code, info in CODES.items():
        assert f"| {code} | {info.severity} |" in text, code


def test_against_an_old_version_that_does_not_load(tmp_path: Path) -> None:
    """Fixing a broken policy: the broken old version is noted, and the new one is checked."""
    old = tmp_path / "old.yaml"
    old.write_text("api_version: policy-engine/v1\nname: x\nversion: 1\nrules: [\n")
    policy = ROOT / "policies" / "strategy_limits.yaml"
    result = CliRunner().invoke(check_command, [str(policy), "--against", str(old)])
    assert result.exit_code == 0, result.output
    assert "does not load; nothing to compare" in result.stderr


def _run_with_terminal_stderr(args: list[str], stdout_path: Path) -> bytes:
    """Run the CLI with stderr on a pseudo-terminal (100 columns); return what it drew there."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with stdout_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "policy_engine.cli", *args], stdout=out, stderr=slave
        )
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    proc.wait(timeout=60)
    os.close(master)
    return drawn


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    """`policy run` draws a bar on a terminal's stderr; stdout (a file here) stays clean."""
    events = tmp_path / "events.jsonl"
    lines = [json.dumps({"type": "equity", "equity": 100000, "timestamp": None})]
    for i in range(3000):
        lines.append(
            json.dumps(
                {
                    "type": "intent",
                    "intent_id": f"i{i}",
                    "strategy": "SCALPER",
                    "symbol": "BTC-USD",
                    "side": "flat",
                    "requested_risk_abs": 0,
                    "timestamp": "2026-01-05T09:00:01Z",
                }
            )
        )
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.txt"
    drawn = _run_with_terminal_stderr(["run", str(PORTFOLIO), str(events)], out)
    assert b"running" in drawn and b"events" in drawn
    text = out.read_text()
    assert "running" not in text and "\r" not in text
    assert "3000 decisions: 3000 approved, 0 clipped, 0 rejected" in text
    piped = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(events)])
    assert "running" not in piped.output
