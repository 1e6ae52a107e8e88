"""Listening sockets for the commands that serve: a taken port is a clear message, not a
traceback. Every command that binds a port names the port and the flag that moves it."""

from __future__ import annotations

import errno
import socket


class PortUnavailable(Exception):
    """A port a command needs cannot be bound; the message is what the user reads."""


def describe(host: str, port: int, exc: OSError, flag: str) -> str:
    """What went wrong binding ``host:port``, and which flag picks another port."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; choose another with {flag}"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another with {flag}"


def listen(host: str, port: int, flag: str, backlog: int = 2048) -> socket.socket:
    """A socket listening on ``host:port``, or :class:`PortUnavailable` naming ``flag``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise PortUnavailable(describe(host, port, exc, flag)) from None
    return sock


def check_free(host: str, port: int, flag: str) -> None:
    """Raise :class:`PortUnavailable` if ``host:port`` cannot be listened on now."""
    listen(host, port, flag, backlog=1).close()
