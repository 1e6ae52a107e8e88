"""One HTTP request written by hand on a socket, for input an HTTP client would normalise
(a repeated Host, a Host with userinfo, no Host at all)."""

from __future__ import annotations

import contextlib
import socket

Headers = list[tuple[str, str]]


def raw_request(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, Headers, bytes]:
    """Send ``request`` as is to 127.0.0.1:``port``; read the answer until the server closes.

    Returns (status, [(lowercased name, value)], body). Header values keep any stray CR or
    LF, so an injected header shows up as a header line of its own.
    """
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # Rejected before the whole request was read? The answer may still be there.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete HTTP answer: {data[:200]!r}"
    status_line, *lines = head.split(b"\r\n")
    version, status, *_ = status_line.split(b" ", 2)
    assert version in (b"HTTP/1.1", b"HTTP/1.0"), status_line
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        assert colon, f"malformed header line {line!r}"
        headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    return int(status), headers, body
