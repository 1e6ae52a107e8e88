"""Fetching one member endpoint: bounded in time and size, retried only when it helps.

Every failure comes back as a value with a reason; nothing here raises into the checker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from shared.payloads import PayloadError

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A parsed result, or the reason there is none (``transport`` says nobody answered)."""

    value: T | None
    error: str | None = None
    transport: bool = False
    attempts: int = 1
    duration: float = 0.0


class TransportError(Exception):
    """The member did not give a complete answer (refused, timed out, reset, TLS, DNS...)."""


async def fetch(client: httpx.AsyncClient, url: str, timeout: float, max_bytes: int) -> Answer:
    """GET ``url`` within ``timeout`` seconds overall, reading at most ``max_bytes``."""
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url) as response:
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > max_bytes:
                        raise PayloadError(f"body larger than {max_bytes} bytes")
                return Answer(response.status_code, bytes(body))
    except TimeoutError:
        raise TransportError(f"no complete answer within {timeout:g}s") from None
    except httpx.ConnectError as exc:
        raise TransportError(f"connection failed: {_describe(exc)}") from None
    except httpx.HTTPError as exc:
        raise TransportError(f"{type(exc).__name__}: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    text = str(exc) or repr(exc)
    return text.splitlines()[0][:200]


async def fetch_parsed(
    client: httpx.AsyncClient,
    url: str,
    parse: Callable[[Answer], T],
    *,
    timeout: float,
    max_bytes: int,
    retries: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    backoff: float = 0.2,
) -> Outcome[T]:
    """Fetch and parse, retrying transport errors and 5xx answers without a parsable body.

    Stops at the first success, after ``retries`` retries, or when another attempt could
    not finish before ``deadline`` (a monotonic time), so one slow member never makes its
    own next check late.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = await fetch(client, url, timeout, max_bytes)
        except TransportError as exc:
            error, transport, retryable = str(exc), True, True
        except PayloadError as exc:  # an answer we refuse to read (too large)
            error, transport, retryable = str(exc), False, False
        else:
            try:
                return Outcome(parse(answer), attempts=attempt, duration=clock() - started)
            except PayloadError as exc:
                error, transport, retryable = str(exc), False, answer.status >= 500
        delay = backoff * 2 ** (attempt - 1)
        if not retryable or attempt > retries or clock() + delay + timeout > deadline:
            return Outcome(None, error, transport, attempt, clock() - started)
        await asyncio.sleep(delay)
