"""``fedredirect replay``: history re-evaluated under a config, beside what happened."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from fedredirect.replay_text import render
from fedredirect.store_access import open_store, redacted
from shared.config import ConfigError, FederationConfig, load_config
from shared.history import parse_since
from shared.replay import ReplayError, replay
from shared.replay_alerts import alert_durations

#: The alert rules whose ``for:`` replay applies: deploy/prometheus/alerts.yml, the file
#: Prometheus loads, through a link that the package (and so the image) carries as a file.
ALERT_RULES = Path(__file__).parent / "alerts.yml"


def read_alert_durations(path: Path = ALERT_RULES) -> dict[str, float]:
    """Each alert's ``for:`` in seconds from the rule file; none where there is no file,
    and then replay evaluates no alert."""
    if not path.is_file():
        return {}
    return alert_durations(yaml.safe_load(path.read_text(encoding="utf-8")))


def _fail(message: str, code: int = 2) -> int:
    print(f"fedredirect replay: {message}", file=sys.stderr)
    return code


async def run_replay(args: argparse.Namespace) -> int:
    """Replay recorded history under the recorded (or another) config: the report."""
    try:
        since = None if args.since is None else parse_since(args.since, time.time())
        config: FederationConfig | None = load_config(args.config) if args.config else None
    except (ValueError, ConfigError) as exc:
        return _fail(str(exc))
    config_from, served = args.config, None
    if args.source == "redis":
        try:
            events, served = await _from_store(args.redis_url, args.key_prefix)
        except Exception as exc:
            return _fail(f"cannot read {redacted(args.redis_url)}: {exc}", 1)
        if config is None and served is not None:
            config, config_from = served, "the store"
    else:
        try:
            with open(args.source, encoding="utf-8") as lines:
                events = [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read {args.source}: {exc}")
    try:
        report = replay(
            events,
            config,
            since,
            alert_for=read_alert_durations(),
            config_from=config_from,
            served=served,
        )
    except ReplayError as exc:
        return _fail(str(exc), 1)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


async def _from_store(
    redis_url: str, key_prefix: str
) -> tuple[list[dict[str, Any]], FederationConfig | None]:
    """All of the store's history (what was recorded before --since says where each state
    stood) and the config it serves."""
    async with open_store(redis_url, key_prefix) as store:
        _, events = await store.read_history()
        snapshot = await store.read()
    return events, snapshot.config if snapshot else None
