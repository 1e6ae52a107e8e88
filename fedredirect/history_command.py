"""``fedredirect history``: print or export what the checker and routers recorded."""

from __future__ import annotations

import argparse
import json
import sys
import time

from fedredirect.store_access import open_store, redacted
from shared.history import context_before, describe, parse_since, select


async def run_history(args: argparse.Namespace) -> int:
    """Print (or export) the history the checker and routers keep in the store."""
    now = time.time()
    try:
        since = parse_since(args.since, now)
    except ValueError as exc:
        print(f"fedredirect history: {exc}", file=sys.stderr)
        return 2
    async with open_store(args.redis_url, args.key_prefix) as store:
        try:
            # An export starts with the context from before --since (config, where each
            # member stood), so replaying it needs nothing else: it reads the whole stream.
            available_since, events = await store.read_history(None if args.export else since)
        except Exception as exc:
            print(
                f"fedredirect history: cannot read {redacted(args.redis_url)}: {exc}",
                file=sys.stderr,
            )
            return 1
    context = select(context_before(events, since), member=args.member) if args.export else []
    events = context + select(events, since, args.member)
    if args.export:
        with open(args.export, "w", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
        print(f"wrote {len(events)} events to {args.export}", file=sys.stderr)
    elif args.json:
        doc = {"since": since, "available_since": available_since, "events": events}
        print(json.dumps(doc, indent=2))
    else:
        if available_since is None:
            print("no history recorded yet (is the checker running?)")
        elif available_since > since:
            print(f"history available since {_when(available_since)} only")
        for event in events:
            print(f"{_when(event['at'])}  {describe(event)}")
    return 0


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
