"""Headless Chromium for the browser tests: a hard requirement (Debian package ``chromium``).

A missing browser fails the test, so CI cannot go green without ever running a page.
Pages whose script works on after loading are driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no port to pick, no websocket library), so a test waits for
a condition in the page with a deadline instead of sleeping.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Headless, as root, with no network beyond 127.0.0.1: all of these are needed here.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    """The browser's path, or fail the test saying how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "headless Chromium is required for this test: install Debian's `chromium` package "
            "(apt-get install -y chromium), or run scripts/test, which installs it"
        )
    return found


def run_chromium(profile: Path, *args: str, timeout: float = 90) -> str:
    """Run Chromium to completion (``--dump-dom URL``, ``--screenshot``...); its stdout."""
    answer = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert answer.returncode == 0, f"chromium failed: {answer.stderr[-2000:]}"
    return answer.stdout


class DevToolsError(AssertionError):
    """Chromium refused a command (e.g. an evaluation while the page is navigating)."""


def _high_fd(fd: int) -> int:
    """``fd`` moved to 10 or above, so placing the pipe at 3 and 4 cannot clobber it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One Chromium process and its DevTools pipe: JSON messages ending in NUL, commands
    on the child's fd 3, answers and events on its fd 4."""

    def __init__(self, profile: Path, log: Path) -> None:
        child_in, self._commands = map(_high_fd, os.pipe())
        self._answers, child_out = map(_high_fd, os.pipe())
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        # bash places the pipe ends at 3 and 4 (Python can only keep fds at their number).
        place = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                ["bash", "-c", place, chromium(), *flags, "about:blank"],
                pass_fds=(child_in, child_out),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        os.close(child_in)
        os.close(child_out)
        self.log = log
        self.console: list[str] = []  # the pages' console messages and uncaught exceptions
        self._buffer = b""
        self._last_id = 0

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and return its result (events read meanwhile are kept as
        console lines when they are console messages or exceptions)."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            while b"\0" in self._buffer:
                raw, _, self._buffer = self._buffer.partition(b"\0")
                answer = json.loads(raw)
                if answer.get("id") == self._last_id:
                    if "error" in answer:
                        raise DevToolsError(f"chromium: {method} failed: {answer['error']}")
                    result: dict[str, Any] = answer["result"]
                    return result
                self._keep_console(answer)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise AssertionError(f"chromium did not answer {method} in 30 s; {self.tail()}")
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                raise AssertionError(f"chromium exited during {method}; {self.tail()}")
            self._buffer += chunk

    def _keep_console(self, event: dict[str, Any]) -> None:
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled":
            args = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            self.console.append(f"console.{params['type']}: {' '.join(args)}")
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.console.append(f"exception: {details.get('exception', details)}")

    def open(self, url: str) -> Page:
        """A new tab showing ``url`` (navigation starts; nothing is waited for)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, attached["sessionId"])
        self.call("Runtime.enable", session=page.session)
        self.call("Page.navigate", {"url": url}, session=page.session)
        return page

    def tail(self) -> str:
        log = self.log.read_text(errors="replace").splitlines()
        noise = ("dbus", "unexpected operator")  # the headless machine has no D-Bus
        lines = [line for line in log if not any(n in line for n in noise)]
        return f"console: {self.console[-20:]}; chromium log: {lines[-20:]}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._commands)
        os.close(self._answers)


class Page:
    """One tab of a ``Browser``."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (None before it exists)."""
        params = {"expression": expression, "returnByValue": True}
        answer = self.browser.call("Runtime.evaluate", params, session=self.session)
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll ``expression`` until it is truthy; fail naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except DevToolsError as exc:  # the page is between documents: not yet
                last = exc
            if last and not isinstance(last, DevToolsError):
                return last
            time.sleep(0.05)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; last: {last!r}; {self.browser.tail()}"
        )


@contextlib.contextmanager
def browser(profile: Path, log: Path) -> Iterator[Browser]:
    """A headless Chromium for the block, terminated (then killed) at its end."""
    chromium()  # fail with the install hint before starting anything
    started = Browser(profile, log)
    try:
        yield started
    finally:
        started.close()
