"""`policy verify` on the bundled policies: the seconds each built-in property takes.

    .venv/bin/python benchmarks/verify_bench.py [--rounds N]

Each property of each policy is verified N times (a fresh solver context each time) and
the table gives the median and the slowest wall-clock time, the status, and whether every
one is decided (proved or violated) in under 5 s. The machine is shared: the slowest round
is what to compare with the budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from policy_engine.engine.policy import load_policy
from policy_engine.verify import BUILTIN, verify

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 5.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    paths = sorted(p for p in (ROOT / "policies").glob("*.yaml") if not p.stem.endswith("_test"))
    print("| policy | property | status | median s | slowest s |")
    print("| --- | --- | --- | ---: | ---: |")
    ok = True
    for path in paths:
        policy = load_policy(path)
        for name in BUILTIN:
            runs = [verify(policy, [name], timeout=60)[0] for _ in range(args.rounds)]
            seconds = [r.seconds for r in runs]
            status = {r.status for r in runs}
            decided = status <= {"proved", "violated"} and max(seconds) < BUDGET
            ok = ok and decided
            print(
                f"| {path.name} | {name} | {'/'.join(sorted(status))} |"
                f" {statistics.median(seconds):.2f} | {max(seconds):.2f} |",
                flush=True,
            )
    print(f"\nevery property decided in under {BUDGET:.0f} s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
