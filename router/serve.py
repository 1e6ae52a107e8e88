"""Serving a router: one process, or N forked workers accepting on one listening socket.

The caller binds the socket, so a taken port is a one-line message before anything starts.
With one worker the app is served in this process. With N, this process forks N workers
that all accept on that socket (the kernel hands each connection to one of them), starts a
new one when one dies, and stops them all on SIGTERM or SIGINT. Each worker builds its own
app after the fork: its own connection to the store and its own view. Their redirect
counters meet in prometheus-client's multiprocess files (:mod:`router.metrics`), in a
directory made here unless ``PROMETHEUS_MULTIPROC_DIR`` names one.

Every process serves the app with granian (a Rust HTTP server) on a uvloop event loop:
measured side by side with uvicorn (httptools, uvloop), it served the router 1.2x as fast
on 2026-12-02 and 0.9-1.1x on 2026-12-03 (docs/benchmarks.md). It is driven here at the
level of its worker (:func:`serve_on`), not through its own process manager, so that the
socket stays the caller's and the supervisor below stays ours.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("fedredirect")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # router.metrics reads it
STARTUP_FAILURE = 3  # the exit status of a worker whose app cannot start
#: Requests one process lets into Python at a time; more wait in granian's and the
#: kernel's queues.
MAX_CONCURRENT_REQUESTS = 1024
#: The listening socket's backlog as fedredirect.ports.listen asks for it (granian only
#: records it: the socket is already listening).
LISTEN_BACKLOG = 2048
M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: A worker that exits within this many seconds of its start, twice in a row, is not
#: started again: the app cannot start (a bug, a bad setting), so the router exits.
CRASH_LOOP_SECONDS = 5.0
SWITCH_INTERVAL = 0.0001  # seconds a thread holds the GIL while another waits for it


def serve(
    sock: socket.socket,
    *,
    redis_url: str,
    key_prefix: str,
    workers: int = 1,
    log_format: str = "text",
    log_level: str = "INFO",
) -> int:
    """Serve the router on ``sock`` (listening) until stopped; the exit status."""

    def run_worker() -> int:
        from fedredirect.logs import setup_logging
        from router.app import create_app
        from shared.store import Store, connect

        setup_logging(log_format, log_level)
        app = create_app(Store(connect(redis_url), key_prefix))
        # Everything imported so far lives as long as the process: out of the garbage
        # collector's sight, a full collection scans only what came later (a 1,000-member
        # view every re-evaluation), 5 ms instead of 70 ms without a pause in serving.
        gc.collect()
        gc.freeze()
        # The view is evaluated in a thread (router.snapshot): with turns at the GIL of
        # 0.1 ms instead of 5 ms, a redirect waits at most that long for a turn.
        sys.setswitchinterval(SWITCH_INTERVAL)
        _fewer_malloc_arenas()
        return serve_on(app, sock)

    if workers == 1 and not os.environ.get(MULTIPROC_ENV):
        return run_worker()
    with _multiprocess_dir():  # also for one worker told to use one: emptied first
        if workers == 1:
            return run_worker()
        import router.app  # noqa: F401  imported once here, shared by every fork

        return Supervisor(run_worker, workers).run()


def _fewer_malloc_arenas() -> None:
    """At most two glibc malloc arenas, before granian's and the evaluation's threads
    start: each thread would otherwise get an arena of its own that keeps what it once
    held (5 MB less RSS for a 1,000-member router, docs/benchmarks.md)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 2)


def serve_on(app: Any, sock: socket.socket) -> int:
    """Serve the ASGI ``app`` on the listening ``sock`` in this process until SIGTERM or
    SIGINT: lifespan startup, then granian's worker on a uvloop loop; on the signal it
    stops accepting, finishes the requests in flight, and runs the lifespan shutdown.
    The exit status: 0, or :data:`STARTUP_FAILURE` when the lifespan startup fails."""
    import asyncio

    import uvloop
    from granian import _granian
    from granian._futures import _future_watcher_wrapper, _new_cbscheduler
    from granian.asgi import LifespanProtocol, _callback_wrapper

    native: Any = _granian  # its type stubs lag behind its signatures

    # Its only warning here would call a failed startup "continuing without lifespan".
    logging.getLogger("_granian").setLevel(logging.ERROR)

    async def run() -> int:
        loop = asyncio.get_running_loop()
        lifespan = LifespanProtocol(app)
        await lifespan.startup()
        # The router's app always has a lifespan: an error in it is a failure to start,
        # not (as granian would take it) an app without one.
        if lifespan.interrupt or lifespan.errored:
            log.error("the router cannot start", exc_info=lifespan.exc)
            return STARTUP_FAILURE
        stop = native.WorkerSignal()
        stopped = loop.create_future()
        stop.add_cb(lambda: loop.call_soon_threadsafe(stopped.set_result, None))
        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        # The arguments of granian's own ASGI worker (granian/server/embed.py), by position:
        # id, socket, IPC, Rust threads, their blocking pool, Python threads and their
        # idle timeout, backpressure, HTTP/1 only (and its settings; no HTTP/2), no
        # websockets, no static files, no TLS, no metrics.
        worker = native.ASGIWorker(
            1,
            (None, native.SocketHolder(sock.fileno(), False, LISTEN_BACKLOG)),
            None,
            1,
            512,
            1,
            30,
            MAX_CONCURRENT_REQUESTS,
            "1",
            None,
            None,
            False,
            None,
            False,
            None,
            None,
            None,
            "tls13",
            None,
            [],
            False,
            (None, None),
        )
        handler = _future_watcher_wrapper(_callback_wrapper(app, {}, lifespan.state, None))
        worker.serve_async(_new_cbscheduler(loop, handler, impl_asyncio=True), loop, stop)
        await stopped
        await lifespan.shutdown()
        return 0

    return uvloop.run(run())


class Supervisor:
    """Keeps ``workers`` forked processes running ``run_worker`` until told to stop."""

    def __init__(self, run_worker: Callable[[], int], workers: int) -> None:
        self.run_worker = run_worker
        self.workers = workers
        self.children: dict[int, float] = {}  # pid -> when it started
        self.stopping = False

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._stop) for sig in _STOP_SIGNALS}
        status = 0
        quick_exits = 0
        try:
            for _ in range(self.workers):
                self._start()
            while self.children:
                try:
                    pid, code = os.wait()
                except ChildProcessError:
                    break
                started = self.children.pop(pid, None)
                if started is None or self.stopping:
                    continue
                quick = time.monotonic() - started < CRASH_LOOP_SECONDS
                quick_exits = quick_exits + 1 if quick else 0
                log.warning(
                    "router worker %d exited (%s)%s",
                    pid,
                    _describe(code),
                    "; stopping: it cannot start" if quick_exits >= 2 else "; starting another",
                )
                if quick_exits >= 2:
                    status = 1
                    self._stop(signal.SIGTERM, None)
                else:
                    self._start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _start(self) -> None:
        # Signals wait until each side has its own handlers: a worker never runs ours.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker: serve_on's signal handling; never returns
            code = 1
            try:
                for sig in _STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
                code = self.run_worker()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        if self.stopping:  # told to stop while this one was being started
            os.kill(pid, signal.SIGTERM)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        """Stop every worker (each finishes its requests and its lifespan: serve_on)."""
        self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {os.waitstatus_to_exitcode(status)}"


@contextlib.contextmanager
def _multiprocess_dir() -> Iterator[Path]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers, emptied first: the one given in the
    environment, or a temporary one removed at the end."""
    given = os.environ.get(MULTIPROC_ENV)
    made = not given
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="fedredirect-router-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # a previous run's counts are not this run's
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    # prometheus-client picks its value store when first imported: pick again, in case it
    # was imported before the variable was set.
    from prometheus_client import values

    values.ValueClass = values.get_value_class()
    try:
        yield path
    finally:
        if made:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(path, ignore_errors=True)
