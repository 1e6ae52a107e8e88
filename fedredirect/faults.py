"""The faults a simulated member can be told to show on /health and /versions: the answers
a checker must survive (an HTTP error, a body that is not JSON or not BinderHub's shape, a
huge or dripping body, a redirect away, a hang, a connection reset).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

#: The faults ``POST /_sim {"fault": ...}`` takes; they replace the answer of /health and
#: /versions only (launches and /metrics go on as before).
FAULTS = frozenset(
    {
        "http500",
        "http502",
        "http503",
        "not_json",
        "wrong_shape",
        "huge",
        "redirect",
        "hang",
        "drip",
        "reset",
    }
)
#: The ``huge`` fault's body: valid JSON, twice what a checker reads by default (1 MiB).
HUGE_BYTES = 2 * 1024 * 1024


class _SimulatedReset(ConnectionAbortedError):
    """Raised mid-body so that uvicorn drops the connection, as a crashing member would."""


def not_simulated_fault(record: logging.LogRecord) -> bool:
    """Keep uvicorn's log free of tracebacks for faults that were asked for: resets, and
    hanging requests cancelled at shutdown."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (
        isinstance(exc, _SimulatedReset | asyncio.CancelledError)
        or "timeout graceful shutdown exceeded" in record.getMessage()
    )


async def fault_response(fault: str, request: Request) -> Response:
    """The misbehaviour named by `fault`, in place of a proper answer."""
    if fault.startswith("http"):
        return Response(status_code=int(fault[4:]))
    if fault == "not_json":
        return HTMLResponse("<html>oops</html>")
    if fault == "wrong_shape":
        return JSONResponse({"hello": "world"})
    if fault == "redirect":
        return Response(status_code=302, headers={"Location": "http://127.0.0.1:1/"})
    if fault == "hang":
        while (await request.receive())["type"] != "http.disconnect":
            pass  # never answer; end only when the client gives up
        return Response(status_code=499)
    return StreamingResponse(_fault_body(fault), media_type="application/json")


async def _fault_body(fault: str) -> AsyncIterator[bytes]:
    """Bodies that stream: 2 MiB of valid JSON without Content-Length, a drip, a reset."""
    if fault == "huge":
        head, tail = b'{"ok": true, "checks": [], "padding": "', b'"}'
        left = HUGE_BYTES - len(head) - len(tail)
        yield head
        while left > 0:
            yield b"x" * min(left, 64 * 1024)
            left -= 64 * 1024
        yield tail
    elif fault == "drip":
        while True:
            yield b" "
            await asyncio.sleep(1.0)
    else:  # reset: headers and a first chunk, then the connection drops
        yield b'{"ok": tr'
        raise _SimulatedReset("simulated connection reset")
