"""A large federation filling up, in process: what a router pays when its members' rooms run
out one after the other, this tree against an older one (default: the commit before
``shared.keeper.rejudge``), in turns within one run.

Usage (every benchmark under the lock, taken exclusively, so nothing else runs beside it)::

    flock -x /tmp/fedredirect-bench.lock .venv/bin/python bench/fill_up.py
    python bench/fill_up.py --members 1000 --launches 20000 --rounds 3 --before REV

A router of ``--members`` members (weights 10..16, each reporting 0 pods of a quota of 20,
``pod_headroom: 2``, so room for 18 launches each) built in process from a snapshot, as the
router serves one (``router.snapshot.SnapshotHolder``, ``router.redirect.RedirectApp``),
takes ``--launches`` launches of twice as many repositories as members, in turn, through its
ASGI app. Each member's 18th launch makes it ``full`` for this router: the view changes and
so do the targets. It
prints per tree the time per launch, the evaluations, and the members full at the end;
then the ratio of the older tree's time per launch to this one's, round by round (the
order of the trees swapped each round, so drift hits both alike).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, arguments, git, tree_at

#: Who, in the older tree too, builds a router from a snapshot and sends it launches.
RUN = """\
import asyncio, json, sys, time
sys.path.insert(0, ".")
from router.redirect import RedirectApp
from router.snapshot import SnapshotHolder
from shared.config import parse_config
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation
from shared.store import Snapshot

members, launches, repos = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
T0 = 1_700_000_000.0
names = [f"m{i:04d}" for i in range(members)]
config = parse_config({
    "pod_headroom": 2, "slow_start": 0,
    "members": {n: {"url": f"https://{n}.example.org", "weight": 10 + i % 7, "prime": i == 0}
                for i, n in enumerate(names)},
}, "fill_up")
records = {n: MemberObservation(member=n, checked_at=T0,
                                health=HealthObservation("ok", (), 0, 20, T0),
                                versions={"binderhub": "1.0"}, versions_at=T0) for n in names}
holder = SnapshotHolder(None, clock=lambda: T0)
holder.load(Snapshot(config, records, CheckerHeartbeat("bench", T0), generation=1))

async def nothing(scope, receive, send):
    raise AssertionError("not a launch")

app = RedirectApp(holder, nothing)
sent = []

async def send(message):
    sent.append(message)

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def run():
    for i in range(launches):
        path = f"/build/gh/org/repo{i % repos}/HEAD"
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "headers": [(b"host", b"router.example.org")],
                 "http_version": "1.1", "scheme": "http"}
        await app(scope, receive, send)
        del sent[:]

before = holder.evaluations
started = time.perf_counter()
asyncio.run(run())
seconds = time.perf_counter() - started
view = holder.view
full = sum(1 for m in view.members if m.state == "full")
print(json.dumps({"us_per_launch": seconds / launches * 1e6,
                  "evaluations": holder.evaluations - before, "full": full}))
"""


def before_rejudge() -> str:
    """The commit before the first that judges only the members whose launches moved."""
    first = git("log", "--reverse", "--format=%H", "-S", "def rejudge(", "--", "shared/keeper.py")
    return git("rev-parse", "--short", f"{first.split()[0]}^").strip()


def run(tree: Path, members: int, launches: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(members), str(launches), str(2 * members)],
        cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"fill_up in {tree}: {done.stderr.strip()[-800:]}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def measure(before: str, old: Path, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    """Each tree's runs, in turns, the order swapped each round; printed as they come."""
    print(f"fill_up: {args.members} members, {args.launches} launches a run, this tree "
          f"against {before}", flush=True)  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {"this tree": [], before: []}
    for r in range(args.rounds):
        order = [("this tree", ROOT), (before, old)]
        for name, tree in order if r % 2 == 0 else reversed(order):
            runs[name].append(run(tree, args.members, args.launches))
            got = runs[name][-1]
            print(f"  round {r + 1}: {name:<10} {got['us_per_launch']:>9.1f} µs a launch, "
                  f"{got['evaluations']:.0f} evaluations, {got['full']:.0f} members full",
                  flush=True)  # fmt: skip
    return runs


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, quick="a short smoke run", json=True)
    p.add_argument("--members", type=int, default=1000, help="members in the federation")
    p.add_argument("--launches", type=int, default=20_000, help="launches a run")
    p.add_argument("--rounds", type=int, default=3, help="runs of each tree, in turns")
    p.add_argument("--before", default=None, help="the older tree's commit (default: above)")
    args = p.parse_args(argv)
    if args.quick:
        args.members, args.launches, args.rounds = 200, 4000, 1
    before = args.before or before_rejudge()
    with tempfile.TemporaryDirectory() as tmp:
        old = tree_at(before, Path(tmp))
        runs = measure(before, old, args)
    ratios = [
        o["us_per_launch"] / n["us_per_launch"]
        for o, n in zip(runs[before], runs["this tree"], strict=True)
    ]
    print(f"  {before} / this tree, time a launch: {statistics.median(ratios):.2f}x "
          f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"before": before, "runs": runs, "ratios": ratios}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
