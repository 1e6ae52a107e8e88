"""evaluate() of a 1,000-member view, for the code of one or more source trees, in turns.

Usage (the tree of an older commit beside this one, measured in the same run)::

    git worktree add /tmp/before COMMIT
    python bench/evaluate_ab.py /tmp/before . --rounds 4

Each round runs every tree in a fresh interpreter (so each imports its own ``shared``),
60 evaluations each; it prints the median and minimum in ms per tree and round. The view
is router_bench's synthetic federation (every member eligible, versions fresh).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

MEASURE = """
import statistics, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/bench"]
from router_bench import federation, observations
from shared.evaluate import evaluate
from shared.records import CheckerHeartbeat
now = time.time()
config = federation(1000)
obs = observations(config, now)
heartbeat = CheckerHeartbeat("bench", now, now, 1)
out = []
for _ in range(60):
    t0 = time.perf_counter()
    evaluate(config, obs, {}, heartbeat, now)
    out.append((time.perf_counter() - t0) * 1000)
print(f"median {statistics.median(out):6.2f} ms, min {min(out):6.2f} ms")
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("trees", nargs="+", type=Path, help="source trees (repository roots)")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    for r in range(args.rounds):
        for tree in args.trees:
            result = subprocess.run(
                [sys.executable, "-c", MEASURE, str(tree.resolve())],
                capture_output=True,
                text=True,
                check=True,
            )
            print(f"round {r + 1}  {tree!s:<24} {result.stdout.strip()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
