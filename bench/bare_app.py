"""The bare ASGI 307 app: what any redirector's cost is measured against (router_bench.py).

Run as ``python bench/bare_app.py PORT`` it serves on the router's own server and settings
(``router.serve.serve_on``: uvicorn, httptools, uvloop); router_bench.py also calls ``app``
in process, to show what its harness costs.
"""

from __future__ import annotations

import socket
import sys
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """307 to http://127.0.0.1:9 plus the request's path; a lifespan with nothing to do."""
    if scope["type"] == "http":
        await send(
            {
                "type": "http.response.start",
                "status": 307,
                "headers": [
                    (b"location", b"http://127.0.0.1:9" + scope["raw_path"]),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


if __name__ == "__main__":
    from router.serve import serve_on

    listening = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=2048)
    sys.exit(serve_on(app, listening))
