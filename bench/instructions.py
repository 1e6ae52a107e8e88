"""Instructions a redirect costs in process, counted by valgrind's callgrind: this tree's
rendezvous and bounded against the rendezvous of before issue 18, the baseline of its cost
goal (bench/balance_goals.py's ``cost`` part times the same calls; timings on a shared VM
drift by 20 % from run to run, instruction counts by well under 1 %).

Usage::

    python bench/instructions.py            # 3 and 100 members (about 4 minutes)
    python bench/instructions.py --members 3

Each count is router_bench's app called as a server calls it (``await app(scope, ...)``,
the full ASGI path) over its 5,000 distinct launch paths, warmed up first: the
instructions of 12,000 calls less those of 2,000, over 10,000. Needs ``valgrind``
(Debian: ``apt-get install valgrind``). Prints one line a case and its ratio to the
baseline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from balance_goals import BASELINE_GREP  # noqa: E402
from common import arguments, git, tree_at  # noqa: E402

DRIVER = """\
import asyncio, gc, sys, time
sys.path.insert(0, sys.argv[1] + "/bench")
sys.path.insert(0, sys.argv[1])
import router_bench as rb
balancer, members, calls = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
scopes = rb.scopes(rb.REPOSITORIES, [(b"host", b"127.0.0.1:8080"), (b"accept", b"*/*")])
if balancer == "rendezvous":
    app = rb.router_app(rb.synthetic_view(members))
else:
    app = rb.router_app(rb.synthetic_view(members, balancer), clock=time.time)
rb.time_asgi(app, scopes, 5000)  # every kept route in place
gc.disable()


async def calls_made():
    for i in range(calls):
        await app(scopes[i % len(scopes)], rb._receive, rb._send)


asyncio.run(calls_made())
"""
FEW, MANY = 2_000, 12_000


def instructions(tree: Path, balancer: str, members: int, calls: int) -> int:
    """Instructions callgrind counts for the driver making ``calls`` calls."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", DRIVER, str(tree), balancer, str(members), str(calls)],
        capture_output=True, text=True, env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind in {tree}: {done.stderr.strip()[-500:]}")
    return int(found.group(1))


def per_call(tree: Path, balancer: str, members: int) -> float:
    few, many = (instructions(tree, balancer, members, n) for n in (FEW, MANY))
    return (many - few) / (MANY - FEW)


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__)
    p.add_argument("--members", type=int, nargs="+", default=[3, 100])
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    first = git("log", "--reverse", "--format=%H", "-i", f"--grep={BASELINE_GREP}").split()[0]
    baseline = git("rev-parse", "--short", f"{first}^").strip()
    with tempfile.TemporaryDirectory(prefix="fedredirect-instructions-") as tmp:
        before = tree_at(baseline, Path(tmp))
        for members in args.members:
            base = per_call(before, "rendezvous", members)
            print(
                f"{members} members, rendezvous before issue 18 ({baseline}): {base:,.0f}",
                flush=True,
            )
            for balancer in ("rendezvous", "bounded"):
                now = per_call(ROOT, balancer, members)
                print(
                    f"{members} members, {balancer} now: {now:,.0f} ({now / base:.3f}x)", flush=True
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
