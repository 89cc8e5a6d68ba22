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

from support.hostile import garbage_inputs  # noqa: E402

LIMIT_SECONDS = 1.0
LIMIT_MB = 500


def _check_file(content: bytes) -> Callable[[], object]:
    """`policy-check` on a file with this content (the file is written before timing)."""
    from click.testing import CliRunner

    from policy_engine.cli import check_command

    path = Path(tempfile.mkdtemp()) / "hostile.yaml"
    path.write_bytes(content)
    return lambda: CliRunner().invoke(check_command, [str(path), "--format", "json"]).exit_code


def cases() -> dict[str, Callable[[], Callable[[], object]]]:
    """Each case: a setup (untimed) returning the timed operation."""
    found: dict[str, Callable[[], Callable[[], object]]] = {}
    for name, content in garbage_inputs().items():
        found[f"garbage {name}"] = lambda content=content: _check_file(content)  # type: ignore[misc]
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
