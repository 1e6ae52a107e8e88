"""evaluate() of a 1,000-member view, for the code of one or more source trees, in turns.

Usage (the tree of an older commit beside this one, measured in the same run)::

    git worktree add /tmp/before COMMIT
    python bench/evaluate_ab.py /tmp/before . --rounds 4

Each round runs every tree in a fresh interpreter (so each imports its own ``shared``),
60 evaluations each with router_bench's ``evaluate_cost`` (its synthetic federation: every
member eligible, versions fresh); it prints the median and minimum in ms per tree and round.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

# router_bench's own measurement of evaluate(), as each tree has it.
MEASURE = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/bench"]
from router_bench import evaluate_cost
cost = evaluate_cost(1000, repeats=60)
print(f"median {cost['evaluate_ms_median']:6.2f} ms, min {cost['evaluate_ms_min']:6.2f} ms")
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
