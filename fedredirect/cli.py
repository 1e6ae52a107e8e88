"""The ``fedredirect`` command: one entry point for every process and operator tool."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fedredirect.ports import PortUnavailable, check_free, describe, listen
from fedredirect.store_access import open_store, redacted
from shared.config import ConfigError, effective_config, read_config
from shared.store import DEFAULT_PREFIX, DEFAULT_REDIS_URL

if TYPE_CHECKING:
    from shared.status import LaunchCounts
    from shared.store import Store

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


#: ``add_parser`` of the command line's subcommands: a name and options give a parser.
AddParser = Callable[..., argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedredirect", description="Health-checked redirector for a federation of services."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        _checker_parser,
        _check_config_parser,
        _router_parser,
        _status_parser,
        _dev_parser,
        _why_parser,
        _history_parser,
        _replay_parser,
        _drain_parser,
        _undrain_parser,
        _member_sim_parser,
    ):
        add_command(sub.add_parser)
    return parser


def _checker_parser(add: AddParser) -> None:
    p = add("checker", help="poll every member and publish observations to Redis")
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


def _check_config_parser(add: AddParser) -> None:
    p = add(
        "check-config",
        help="validate a config file (legacy JSON or YAML) without Redis and print the "
        "effective configuration as JSON",
    )
    p.add_argument("path", help="the config file")


def _router_parser(add: AddParser) -> None:
    p = add("router", help="serve redirects from the view published in Redis")
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


def _status_parser(add: AddParser) -> None:
    p = add("status", help="print what the routers consider now")
    _add_store_args(p)
    p.add_argument("--json", action="store_true", help="print the view as JSON")


def _dev_parser(add: AddParser) -> None:
    p = add("dev", help="run a local stack: Redis, 3 simulated members, checker, 2 routers")
    p.add_argument(
        "--port", type=int, default=8080, help="first router's port (default %(default)s)"
    )
    p.add_argument("--redis-port", type=int, default=0, help="port for the dev Redis (0: any free)")
    p.add_argument("--period", type=float, default=2.0, help="check period in seconds (default 2)")
    _add_log_args(p)


def _why_parser(add: AddParser) -> None:
    p = add("why", help="explain where a launch of PATH goes now, as JSON")
    p.add_argument("path", help="request path, e.g. /build/gh/org/repo/HEAD")
    p.add_argument("--cookie", default=None, help="value of a sticky `host` cookie to consider")
    _add_store_args(p)


def _history_parser(add: AddParser) -> None:
    p = add("history", help="what happened: transitions, drains, observations, launch counts")
    p.add_argument(
        "--since", default="24h", help="a duration (6h, 90m, 2d) or a UNIX time (default 24h)"
    )
    p.add_argument("--member", default=None, help="only what concerns this member")
    p.add_argument("--json", action="store_true", help="the events as one JSON document")
    p.add_argument(
        "--export", metavar="FILE.jsonl", default=None, help="write the events, one JSON a line"
    )
    _add_store_args(p)


def _replay_parser(add: AddParser) -> None:
    p = add(
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


def _drain_parser(add: AddParser) -> None:
    p = add("drain", help="take a member out of rotation on every router")
    p.add_argument("member")
    p.add_argument("--reason", default="", help="shown in the status view and logs")
    _add_store_args(p)


def _undrain_parser(add: AddParser) -> None:
    p = add("undrain", help="put a drained member back into rotation")
    p.add_argument("member")
    _add_store_args(p)


def _member_sim_parser(add: AddParser) -> None:
    from fedredirect import simulator

    p = add("member-sim", help="run one simulated BinderHub member")
    simulator.add_arguments(p)


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
        from fedredirect.history_command import run_history

        return asyncio.run(run_history(args))
    if args.command == "replay":
        from fedredirect.replay_command import run_replay

        return asyncio.run(run_replay(args))
    if args.command in ("drain", "undrain"):
        from fedredirect.drain_command import run_drain

        return asyncio.run(run_drain(args))
    if args.command == "dev":
        from fedredirect.dev import run_dev

        return run_dev(args)
    raise AssertionError(args.command)


def _setup_logs(args: argparse.Namespace) -> None:
    from shared.logs import setup_logging

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
        async with open_store(args.redis_url, args.key_prefix) as store:
            checker = Checker(config, store)
            if args.metrics_port is not None:
                _serve_metrics(checker.metrics.registry, args.metrics_host, args.metrics_port)
            log.info(
                "checker %s: %s, %d members, period %gs, publishing to %s (prefix %s)",
                checker.checker_id,
                path,
                len(config.members),
                config.check.period,
                redacted(args.redis_url),
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


def _serve_metrics(registry: Any, host: str, port: int) -> None:
    """The checker's metrics at http://HOST:PORT/metrics, from a thread of their own."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, host, registry)
    except OSError as exc:
        raise PortUnavailable(describe(host, port, exc, "--metrics-port")) from None
    log.info("checker metrics on http://%s:%d/metrics", host, port)


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
        redacted(args.redis_url),
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


async def _recent_launches(store: Store, members: Sequence[str]) -> LaunchCounts | None:
    """Every router's launches over the recent window, as /status draws them from history
    (None, with a note, when history cannot be read: the status is printed all the same)."""
    from router.timeline import window_timeline
    from shared.status import RECENT_WINDOW, launch_counts

    pictures = await window_timeline(store, RECENT_WINDOW, members, time.time())
    if pictures.get("error"):
        print(f"fedredirect status: no recent launch shares: {pictures['error']}", file=sys.stderr)
    return launch_counts(pictures)


async def run_status(args: argparse.Namespace) -> int:
    from fedredirect.status import render_status
    from shared.status import view_to_json

    async with open_store(args.redis_url, args.key_prefix) as store:
        try:
            snapshot = await store.read()
        except Exception as exc:
            print(
                f"fedredirect status: cannot read {redacted(args.redis_url)}: {exc}",
                file=sys.stderr,
            )
            return 1
        launches = None
        if snapshot is not None and args.command == "status":
            launches = await _recent_launches(store, list(snapshot.config.members))
    if snapshot is None:
        print(
            f"fedredirect status: nothing published under prefix {args.key_prefix!r} yet "
            "(is the checker running?)",
            file=sys.stderr,
        )
        return 1
    view = snapshot.evaluate(time.time())
    if args.command == "why":
        from shared.explain import explain

        print(json.dumps(explain(view, args.path, args.cookie), indent=2))
    elif args.json:
        print(json.dumps(view_to_json(view, launches=launches), indent=2))
    else:
        print(render_status(view, launches))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
