"""``fedredirect drain`` and ``undrain``: an operator takes a member out of rotation, or
puts it back, on every router at once."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from fedredirect.store_access import open_store, redacted
from shared.records import Drain
from shared.store import Snapshot, Store

log = logging.getLogger("fedredirect")


async def run_drain(args: argparse.Namespace) -> int:
    """Record (or clear) a drain in the store; every router applies it on its next sync."""
    from shared.logs import setup_logging

    setup_logging("text", "INFO")
    async with open_store(args.redis_url, args.key_prefix) as store:
        try:
            snapshot = await store.read()
            if snapshot is None or args.member not in snapshot.config.members:
                known = ", ".join(snapshot.config.members) if snapshot else "none published yet"
                print(
                    f"fedredirect {args.command}: unknown member {args.member!r} "
                    f"(members: {known})",
                    file=sys.stderr,
                )
                return 2
            await _drain(store, snapshot, args)
        except Exception as exc:
            print(
                f"fedredirect {args.command}: cannot write to {redacted(args.redis_url)}: {exc}",
                file=sys.stderr,
            )
            return 1
    return 0


async def _drain(store: Store, snapshot: Snapshot, args: argparse.Namespace) -> None:
    """The drain (or undrain) itself: the record every router reads, then history."""
    if args.command == "drain":
        drain = Drain(args.member, args.reason, time.time())
        await store.set_drain(drain)
        await _remember(store, snapshot, {"event": "drain", **drain.to_json()})
        log.warning(
            "member %s drained by an operator: %s",
            args.member,
            args.reason or "-",
            extra={"event": "drain", "member": args.member, "reason": args.reason},
        )
    else:
        await store.clear_drain(args.member)
        event = {"event": "undrain", "member": args.member, "at": time.time()}
        await _remember(store, snapshot, event)
        log.warning(
            "member %s undrained by an operator",
            args.member,
            extra={"event": "undrain", "member": args.member},
        )


async def _remember(store: Store, snapshot: Snapshot, event: dict[str, Any]) -> None:
    """Add an operator's action to history; failing that is a warning, not a failure."""
    try:
        await store.append_history([event], snapshot.config.history.max_entries)
    except Exception as exc:
        log.warning("the %s is in effect but not in history: %s", event["event"], exc)
