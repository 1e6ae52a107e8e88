"""Serving a router: one process, or N forked workers accepting on one listening socket.

The caller binds the socket, so a taken port is a one-line message before anything starts.
With one worker the app is served in this process. With N, this process forks N workers
that all accept on that socket (the kernel hands each connection to one of them), starts a
new one when one dies, and stops them all on SIGTERM or SIGINT. Each worker builds its own
app after the fork: its own connection to the store and its own view. Their redirect
counters meet in prometheus-client's multiprocess files (:mod:`router.metrics`), in a
directory made here unless ``PROMETHEUS_MULTIPROC_DIR`` names one.

Every process serves the app with uvicorn's public API (:func:`serve_on`), with httptools
and uvloop named so that it never falls back to the pure-Python parser and event loop.
uvicorn's own process manager is not used: the socket stays the caller's and the
supervisor below stays ours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("fedredirect")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # router.metrics reads it
STARTUP_FAILURE = 3  # the exit status of a worker whose app cannot start (uvicorn's too)
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: A worker that exits within this many seconds of its start, twice in a row, is not
#: started again: the app cannot start (a bug, a bad setting), so the router exits.
CRASH_LOOP_SECONDS = 5.0
#: uvicorn listens again on the socket it is given: the backlog fedredirect.ports.listen
#: asks for, so that this second listen() does not shorten the queue.
LISTEN_BACKLOG = 2048
#: Longer than an ingress's idle timeout for its upstream connections (nginx's and the
#: cloud load balancers' default is 60 s): the proxy closes an idle connection, never the
#: router, whose close could cross a request the proxy is sending (a 502).
KEEP_ALIVE_SECONDS = 75
#: A worker still running this long after SIGTERM (past uvicorn's graceful shutdown) is
#: killed: a stop must end, whatever a stuck task does.
STOP_GRACE_SECONDS = 30.0
#: After SIGTERM, how long the requests in flight may take before they are cancelled and
#: the lifespan ends: within a pod's default 30 s grace before SIGKILL.
GRACEFUL_SHUTDOWN_SECONDS = 20


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
        from router.app import create_app
        from shared.logs import setup_logging

        setup_logging(log_format, log_level)
        app = create_app(redis_url=redis_url, key_prefix=key_prefix)
        return serve_on(app, sock)

    if workers == 1 and not os.environ.get(MULTIPROC_ENV):
        return run_worker()
    with _multiprocess_dir():  # also for one worker told to use one: emptied first
        if workers == 1:
            return run_worker()
        import router.app  # noqa: F401  imported once here, shared by every fork

        return Supervisor(run_worker, workers).run()


def serve_on(app: Any, sock: socket.socket) -> int:
    """Serve the ASGI ``app`` on the listening ``sock`` in this process until SIGTERM or
    SIGINT: lifespan startup, then uvicorn (httptools, uvloop) on the socket; on the signal
    it stops accepting, finishes the requests in flight, and runs the lifespan shutdown.
    The exit status: 0, or :data:`STARTUP_FAILURE` when the lifespan startup fails."""
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",  # an error in the lifespan is a failure to start, not "no lifespan"
        interface="asgi3",
        log_config=None,  # the process's own logging (shared.logs) stays in charge
        access_log=False,
        # The redirect reads X-Forwarded-Proto itself; nothing else uses the client address.
        proxy_headers=False,
        server_header=False,  # fewer bytes per answer; Date stays (RFC 9110 6.6.1)
        backlog=LISTEN_BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    # uvicorn handles the stop signals while it serves, and once it has stopped raises the
    # one it received again, for whatever handled it before. That is this server's own
    # handler too: a signal before uvicorn's handlers are in place stops it as soon as it
    # has started, and the signal raised again after a clean stop ends nothing (exit 0).
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in _STOP_SIGNALS}
    try:
        server.run(sockets=[sock])
    except SystemExit:  # how uvicorn stops when the lifespan startup fails
        if server.started:
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        log.error("the router cannot start (the error is logged above)")
        return STARTUP_FAILURE
    return 0


class Supervisor:
    """Keeps ``workers`` forked processes running ``run_worker`` until told to stop."""

    def __init__(
        self, run_worker: Callable[[], int], workers: int, stop_grace: float = STOP_GRACE_SECONDS
    ) -> None:
        self.run_worker = run_worker
        self.workers = workers
        self.stop_grace = stop_grace
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
                if started is None:
                    continue
                if self.stopping:  # each should finish its requests and its lifespan: 0
                    if code != 0:
                        log.warning("router worker %d stopped with %s", pid, _describe(code))
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
        """Stop every worker (each finishes its requests and its lifespan: serve_on), and
        kill those still running ``stop_grace`` seconds later."""
        if not self.stopping:
            killer = threading.Timer(self.stop_grace, self._signal, (signal.SIGKILL,))
            killer.daemon = True
            killer.start()
        self.stopping = True
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


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
