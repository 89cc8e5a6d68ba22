"""Hostile inputs and volumes, timed: each must be decided or refused within 1 s and 500 MB.

The tests (tests/test_cli.py, tests/test_hostile_volumes.py) assert the behaviour (a clear
diagnostic, bounded state, no quadratic growth); this script proves the speed. Each case runs
in a fresh process so its peak RSS is its own::

    .venv/bin/python benchmarks/hostile.py            # every case, a Markdown table
    .venv/bin/python benchmarks/hostile.py alias-bomb # one case

Wall time is measured (this is what a user waits for); on a loaded machine it is an upper bound.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.hostile import (  # noqa: E402
    fmt_inputs,
    garbage_inputs,
    many_inputs,
    slow_parser_expressions,
    unknown_keys,
    unknown_placeholders,
)

LIMIT_SECONDS = 1.0
LIMIT_MB = 500


def _check_file(content: bytes) -> Callable[[], object]:
    """`policy-check` on a file with this content (the file is written before timing)."""
    from click.testing import CliRunner

    from policy_engine.cli import check_command

    path = Path(tempfile.mkdtemp()) / "hostile.yaml"
    path.write_bytes(content)
    return lambda: CliRunner().invoke(check_command, [str(path), "--format", "json"]).exit_code


def _load(text: str) -> Callable[[], object]:
    """`load_policy_text` on ``text`` (a refusal is an answer too)."""
    from policy_engine import PolicyError, load_policy_text

    def run() -> object:
        try:
            return load_policy_text(text, "hostile.yaml")
        except PolicyError as exc:
            return exc

    return run


def _fmt_file(text: str) -> Callable[[], object]:
    """`policy fmt --check` on a file with this content."""
    from click.testing import CliRunner

    from policy_engine.cli import cli

    path = Path(tempfile.mkdtemp()) / "hostile.yaml"
    path.write_text(text)
    return lambda: CliRunner().invoke(cli, ["fmt", "--check", str(path)]).exit_code


def cases() -> dict[str, Callable[[], Callable[[], object]]]:
    """Each case: a setup (untimed) returning the timed operation."""
    found: dict[str, Callable[[], Callable[[], object]]] = {}
    for name, content in garbage_inputs().items():
        found[f"garbage {name}"] = lambda content=content: _check_file(content)  # type: ignore[misc]
    for n in (5_000, 20_000):
        found[f"load {n} inputs"] = lambda n=n: _load(many_inputs(n))  # type: ignore[misc]
        found[f"policy-check {n} inputs"] = lambda n=n: _check_file(many_inputs(n).encode())  # type: ignore[misc]
    found["load 20k unknown keys in one rule"] = lambda: _load(unknown_keys(20_000))
    found["load 70k placeholders"] = lambda: _load(unknown_placeholders(70_000))
    found["load 60 expressions on Lark"] = lambda: _load(slow_parser_expressions(60))
    for name, text in fmt_inputs().items():
        found[f"fmt {name}"] = lambda text=text: _fmt_file(text)  # type: ignore[misc]
    return found


def run_one(name: str) -> dict[str, float]:
    operation = cases()[name]()
    started = time.perf_counter()
    operation()
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "peak_mb": peak_mb}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(run_one(argv[1])))
        return 0
    names = [n for n in cases() if not argv or any(a in n for a in argv)]
    print("| case | seconds | peak RSS (MB) | within 1 s / 500 MB |")
    print("| --- | ---: | ---: | --- |")
    failed = 0
    for name in names:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name], capture_output=True, text=True
        )
        if out.returncode != 0:
            print(f"| {name} | error | | {out.stderr.strip().splitlines()[-1:]} |")
            failed += 1
            continue
        data = json.loads(out.stdout.strip().splitlines()[-1])
        ok = data["seconds"] < LIMIT_SECONDS and data["peak_mb"] < LIMIT_MB
        failed += not ok
        print(
            f"| {name} | {data['seconds']:.3f} | {data['peak_mb']:.0f} | {'yes' if ok else 'NO'} |"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
