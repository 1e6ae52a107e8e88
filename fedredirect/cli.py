"""The ``fedredirect`` command: one entry point for every process and operator tool."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from fedredirect.ports import PortUnavailable, check_free, describe, listen
from shared.config import ConfigError, effective_config, read_config
from shared.store import DEFAULT_PREFIX, DEFAULT_REDIS_URL, Store, connect

log = logging.getLogger("fedredirect")

#: Where the replaced redirector read its config, so an existing ConfigMap mount works as is.
LEGACY_CONFIG_PATH = "/etc/federation-redirect/config.json"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=_env("FEDREDIRECT_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis to publish to / read from (env FEDREDIRECT_REDIS_URL; default %(default)s)",
    )
    parser.add_argument(
        "--key-prefix",
        default=_env("FEDREDIRECT_KEY_PREFIX", DEFAULT_PREFIX),
        help="prefix of every Redis key, so federations can share a Redis "
        "(env FEDREDIRECT_KEY_PREFIX; default %(default)s)",
    )


def _add_log_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text, or json for one JSON object a line",
    )
    parser.add_argument("--log-level", default="INFO", help="default %(default)s")


def build_parser() -> argparse.ArgumentParser:
    from fedredirect import simulator

    parser = argparse.ArgumentParser(
        prog="fedredirect", description="Health-checked redirector for a federation of services."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("checker", help="poll every member and publish observations to Redis")
    p.add_argument(
        "--config",
        default=_env("FEDREDIRECT_CONFIG"),
        help="federation config file, legacy JSON or YAML (env FEDREDIRECT_CONFIG; "
        f"default {LEGACY_CONFIG_PATH} when it exists)",
    )
    _add_store_args(p)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for the metrics server (default %(default)s)",
    )
    _add_log_args(p)

    p = sub.add_parser(
        "check-config",
        help="validate a config file (legacy JSON or YAML) without Redis and print the "
        "effective configuration as JSON",
    )
    p.add_argument("path", help="the config file")

    p = sub.add_parser("router", help="serve redirects from the view published in Redis")
    _add_store_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default %(default)s)")
    p.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes serving the port, each with its own view of the store; their "
        "redirect counts add up on /metrics (default %(default)s)",
    )
    _add_log_args(p)

    p = sub.add_parser("status", help="print what the routers consider now")
    _add_store_args(p)
    p.add_argument("--json", action="store_true", help="print the view as JSON")

    p = sub.add_parser(
        "dev", help="run a local stack: Redis, 3 simulated members, checker, 2 routers"
    )
    p.add_argument(
        "--port", type=int, default=8080, help="first router's port (default %(default)s)"
    )
    p.add_argument("--redis-port", type=int, default=0, help="port for the dev Redis (0: any free)")
    p.add_argument("--period", type=float, default=2.0, help="check period in seconds (default 2)")
    _add_log_args(p)

    p = sub.add_parser("why", help="explain where a launch of PATH goes now, as JSON")
    p.add_argument("path", help="request path, e.g. /build/gh/org/repo/HEAD")
    p.add_argument("--cookie", default=None, help="value of a sticky `host` cookie to consider")
    _add_store_args(p)

    p = sub.add_parser(
        "history", help="what happened: transitions, drains, observations, launch counts"
    )
    p.add_argument(
        "--since", default="24h", help="a duration (6h, 90m, 2d) or a UNIX time (default 24h)"
    )
    p.add_argument("--member", default=None, help="only what concerns this member")
    p.add_argument("--json", action="store_true", help="the events as one JSON document")
    p.add_argument(
        "--export", metavar="FILE.jsonl", default=None, help="write the events, one JSON a line"
    )
    _add_store_args(p)

    p = sub.add_parser(
        "replay",
        help="what happened, and what would have happened under a config, from history",
    )
    p.add_argument(
        "--from",
        dest="source",
        default="redis",
        metavar="redis|FILE.jsonl",
        help="the store's history, or a file written by `history --export` (default redis)",
    )
    p.add_argument(
        "--since", default=None, help="a duration (6h, 90m, 2d) or a UNIX time (default: all)"
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="OTHER.yaml",
        help="replay under this config (default: the latest config in the history, or the "
        "store's with --from redis)",
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    _add_store_args(p)

    p = sub.add_parser("drain", help="take a member out of rotation on every router")
    p.add_argument("member")
    p.add_argument("--reason", default="", help="shown in the status view and logs")
    _add_store_args(p)

    p = sub.add_parser("undrain", help="put a drained member back into rotation")
    p.add_argument("member")
    _add_store_args(p)

    p = sub.add_parser("member-sim", help="run one simulated BinderHub member")
    simulator.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except PortUnavailable as exc:
        print(f"fedredirect {args.command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "member-sim":
        from fedredirect import simulator

        if args.port:
            check_free(args.host, args.port, "--port")
        return simulator.run_from_args(args)
    if args.command == "checker":
        return run_checker(args)
    if args.command == "check-config":
        return run_check_config(args)
    if args.command == "router":
        return run_router(args)
    if args.command in ("status", "why"):
        return asyncio.run(run_status(args))
    if args.command == "history":
        return asyncio.run(run_history(args))
    if args.command == "replay":
        return asyncio.run(run_replay(args))
    if args.command in ("drain", "undrain"):
        return asyncio.run(run_drain(args))
    if args.command == "dev":
        from fedredirect.dev import run_dev

        return run_dev(args)
    raise AssertionError(args.command)


def _setup_logs(args: argparse.Namespace) -> None:
    from fedredirect.logs import setup_logging

    setup_logging(args.log_format, args.log_level.upper())


def config_path(given: str | None, legacy: str = LEGACY_CONFIG_PATH) -> str | None:
    """The config file to read: the one given, else the replaced redirector's path if it
    exists there (an existing ConfigMap mount), else None."""
    if given:
        return given
    return legacy if os.path.isfile(legacy) else None


def run_check_config(args: argparse.Namespace) -> int:
    """Validate like the checker does, without Redis: warnings on stderr, the effective
    config as JSON on stdout; exit 2 on the checker's own error messages."""
    try:
        loaded = read_config(args.path)
    except ConfigError as exc:
        print(f"fedredirect check-config: invalid configuration\n{exc}", file=sys.stderr)
        return 2
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(effective_config(loaded.config), indent=2))
    return 0


def run_checker(args: argparse.Namespace) -> int:
    _setup_logs(args)
    path = config_path(args.config)
    if path is None:
        print(
            "fedredirect checker: no config: give --config PATH or FEDREDIRECT_CONFIG, or "
            f"mount one at {LEGACY_CONFIG_PATH}",
            file=sys.stderr,
        )
        return 2
    try:
        loaded = read_config(path)
    except ConfigError as exc:
        print(f"fedredirect checker: invalid configuration\n{exc}", file=sys.stderr)
        return 2
    for warning in loaded.warnings:
        log.warning("%s", warning)
    config = loaded.config
    from checker.service import Checker

    _raise_open_files_limit()

    async def run() -> None:
        store = Store(connect(args.redis_url), args.key_prefix)
        checker = Checker(config, store)
        if args.metrics_port is not None:
            from prometheus_client import start_http_server

            try:
                start_http_server(args.metrics_port, args.metrics_host, checker.metrics.registry)
            except OSError as exc:
                raise PortUnavailable(
                    describe(args.metrics_host, args.metrics_port, exc, "--metrics-port")
                ) from None
            log.info(
                "checker metrics on http://%s:%d/metrics", args.metrics_host, args.metrics_port
            )
        log.info(
            "checker %s: %s, %d members, period %gs, publishing to %s (prefix %s)",
            checker.checker_id,
            path,
            len(config.members),
            config.check.period,
            _redacted(args.redis_url),
            args.key_prefix,
        )
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, main.cancel)  # stop cleanly: release the lease
        with contextlib.suppress(asyncio.CancelledError):
            await checker.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _raise_open_files_limit() -> None:
    """Up to the hard limit: a checker holds a connection or two per member origin."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_router(args: argparse.Namespace) -> int:
    _setup_logs(args)
    from router.serve import serve

    sock = listen(args.host, args.port, "--port")
    log.info(
        "router listening on http://%s:%d (%d worker%s), reading %s (prefix %s)",
        args.host,
        args.port,
        args.workers,
        "" if args.workers == 1 else "s",
        _redacted(args.redis_url),
        args.key_prefix,
    )
    return serve(
        sock,
        redis_url=args.redis_url,
        key_prefix=args.key_prefix,
        workers=args.workers,
        log_format=args.log_format,
        log_level=args.log_level.upper(),
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


async def run_status(args: argparse.Namespace) -> int:
    from fedredirect.status import render_status
    from shared.evaluate import evaluate
    from shared.status import view_to_json

    store = Store(connect(args.redis_url), args.key_prefix)
    try:
        snapshot = await store.read()
    except Exception as exc:
        print(
            f"fedredirect status: cannot read {_redacted(args.redis_url)}: {exc}", file=sys.stderr
        )
        return 1
    finally:
        await store.client.aclose()
    if snapshot is None:
        print(
            f"fedredirect status: nothing published under prefix {args.key_prefix!r} yet "
            "(is the checker running?)",
            file=sys.stderr,
        )
        return 1
    view = evaluate(
        snapshot.config, snapshot.observations, snapshot.drains, snapshot.heartbeat, time.time()
    )
    if args.command == "why":
        from shared.explain import explain

        print(json.dumps(explain(view, args.path, args.cookie), indent=2))
    elif args.json:
        print(json.dumps(view_to_json(view), indent=2))
    else:
        print(render_status(view))
    return 0


async def run_history(args: argparse.Namespace) -> int:
    """Print (or export) the history the checker and routers keep in the store."""
    from shared.history import context_before, describe, parse_since, select

    now = time.time()
    try:
        since = parse_since(args.since, now)
    except ValueError as exc:
        print(f"fedredirect history: {exc}", file=sys.stderr)
        return 2
    store = Store(connect(args.redis_url), args.key_prefix)
    try:
        # An export starts with the context from before --since (config, where each member
        # stood), so replaying it needs nothing else: it reads the whole stream.
        available_since, events = await store.read_history(None if args.export else since)
    except Exception as exc:
        print(
            f"fedredirect history: cannot read {_redacted(args.redis_url)}: {exc}", file=sys.stderr
        )
        return 1
    finally:
        await store.client.aclose()
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


async def run_replay(args: argparse.Namespace) -> int:
    """Replay recorded history under the recorded (or another) config: the report."""
    from shared.config import FederationConfig, load_config
    from shared.history import parse_since
    from shared.replay import ReplayError, render, replay

    def fail(message: str, code: int = 2) -> int:
        print(f"fedredirect replay: {message}", file=sys.stderr)
        return code

    try:
        since = None if args.since is None else parse_since(args.since, time.time())
        config: FederationConfig | None = load_config(args.config) if args.config else None
    except (ValueError, ConfigError) as exc:
        return fail(str(exc))
    config_from, served = args.config, None
    if args.source == "redis":
        store = Store(connect(args.redis_url), args.key_prefix)
        try:
            # all of it: what was recorded before --since says where each state stood
            _, events = await store.read_history()
            snapshot = await store.read()
        except Exception as exc:
            return fail(f"cannot read {_redacted(args.redis_url)}: {exc}", 1)
        finally:
            await store.client.aclose()
        served = snapshot.config if snapshot else None
        if config is None and served is not None:
            config, config_from = served, "the store"
    else:
        try:
            with open(args.source, encoding="utf-8") as lines:
                events = [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError) as exc:
            return fail(f"cannot read {args.source}: {exc}")
    try:
        report = replay(
            events, config, since, alert_for=_alert_for(), config_from=config_from, served=served
        )
    except ReplayError as exc:
        return fail(str(exc), 1)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def _alert_for() -> dict[str, float]:
    """The ``for:`` of each replayed alert in deploy/prometheus/alerts.yml, when this runs
    from a checkout; the values replay knows otherwise."""
    from pathlib import Path

    import yaml

    from shared.replay import REPLAYED_ALERTS

    rules = Path(__file__).resolve().parent.parent / "deploy/prometheus/alerts.yml"
    if not rules.is_file():
        return dict(REPLAYED_ALERTS)
    units = {"s": 1, "m": 60, "h": 3600}
    found = dict(REPLAYED_ALERTS)
    for group in yaml.safe_load(rules.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            name, text = rule.get("alert"), str(rule.get("for", "0s"))
            if name in found:
                found[name] = sum(float(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))
    return found


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


async def run_drain(args: argparse.Namespace) -> int:
    """Record (or clear) a drain in the store; every router applies it on its next sync."""
    from shared.records import Drain

    _setup_logs_plain()
    store = Store(connect(args.redis_url), args.key_prefix)
    try:
        snapshot = await store.read()
        if snapshot is None or args.member not in snapshot.config.members:
            known = ", ".join(snapshot.config.members) if snapshot else "none published yet"
            print(
                f"fedredirect {args.command}: unknown member {args.member!r} (members: {known})",
                file=sys.stderr,
            )
            return 2
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
    except Exception as exc:
        print(
            f"fedredirect {args.command}: cannot write to {_redacted(args.redis_url)}: {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        await store.client.aclose()
    return 0


async def _remember(store: Store, snapshot: Any, event: dict[str, Any]) -> None:
    """Add an operator's action to history; failing that is a warning, not a failure."""
    try:
        await store.append_history([event], snapshot.config.history.max_entries)
    except Exception as exc:
        log.warning("the %s is in effect but not in history: %s", event["event"], exc)


def _setup_logs_plain() -> None:
    from fedredirect.logs import setup_logging

    setup_logging("text", "INFO")


def _redacted(url: str) -> str:
    """The Redis URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


if __name__ == "__main__":
    raise SystemExit(main())
