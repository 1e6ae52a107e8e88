"""Fetching one member endpoint: bounded in time and size, retried only when it helps.

Every failure comes back as a value with a reason; nothing here raises into the checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import aiohttp

from shared.payloads import PayloadError

T = TypeVar("T")

#: Why a fetch failed, a bounded set: the ``reason`` label of ``fedredirect_check_failures``
#: (with the checker's ``member_unhealthy``).
FailureKind = Literal[
    "timeout", "connect", "transport", "http_status", "invalid_payload", "too_large"
]

#: Redirects followed from a member's /health or /versions URL before giving up.
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    url: str  # the URL that answered, after any redirects


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A parsed result, or the reason there is none (``transport`` says nobody answered)."""

    value: T | None
    error: str | None = None
    transport: bool = False
    duration: float = 0.0
    kind: FailureKind | None = None
    url: str | None = None  # the URL that gave the last answer (after redirects), if any


class TransportError(Exception):
    """The member did not give a complete answer (refused, timed out, reset, TLS, DNS...)."""

    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind = kind


class TooLarge(PayloadError):
    """An answer larger than the configured cap: refused unread."""


class TooManyRedirects(PayloadError):
    """More than MAX_REDIRECTS redirects: the member answers, but never with a result."""


async def fetch(
    client: aiohttp.ClientSession,
    url: str,
    timeout: float,
    max_bytes: int,
    gate: asyncio.Semaphore | None = None,
) -> Answer:
    """GET ``url`` within ``timeout`` seconds overall, reading at most ``max_bytes``,
    following at most MAX_REDIRECTS redirects. ``gate`` bounds the requests in flight;
    waiting for it does not count against ``timeout``."""
    async with gate or contextlib.nullcontext():
        return await _fetch(client, url, timeout, max_bytes)


async def _fetch(client: aiohttp.ClientSession, url: str, timeout: float, max_bytes: int) -> Answer:
    try:
        async with asyncio.timeout(timeout):
            # aiohttp gives up on its max_redirects-th redirect: + 1 follows MAX_REDIRECTS.
            async with client.get(url, max_redirects=MAX_REDIRECTS + 1) as response:
                body = bytearray()
                async for chunk in response.content.iter_any():
                    body += chunk
                    if len(body) > max_bytes:
                        raise TooLarge(f"body larger than {max_bytes} bytes")
                return Answer(response.status, bytes(body), str(response.url))
    except TimeoutError:
        raise TransportError(f"no complete answer within {timeout:g}s", "timeout") from None
    except aiohttp.TooManyRedirects:
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects") from None
    except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError) as exc:
        raise TransportError(f"connection failed: {_describe(exc)}", "connect") from None
    except aiohttp.ClientError as exc:  # disconnects, bad answers, an unusable URL...
        raise TransportError(f"{type(exc).__name__}: {_describe(exc)}", "transport") from None


def _describe(exc: Exception) -> str:
    text = str(exc) or repr(exc)
    return text.splitlines()[0][:200]


async def fetch_parsed(
    client: aiohttp.ClientSession,
    url: str,
    parse: Callable[[Answer], T],
    *,
    timeout: float,
    max_bytes: int,
    retries: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    backoff: float = 0.2,
    gate: asyncio.Semaphore | None = None,
) -> Outcome[T]:
    """Fetch and parse, retrying transport errors and 5xx answers without a parsable body.

    Stops at the first success, after ``retries`` retries, or when another attempt could
    not finish before ``deadline`` (a monotonic time), so one slow member never makes its
    own next check late.
    """
    started = clock()
    attempt = 0
    answered: str | None = None  # the URL of the last answer
    while True:
        attempt += 1
        try:
            answer = await fetch(client, url, timeout, max_bytes, gate)
        except TransportError as exc:
            error, transport, retryable, kind = str(exc), True, True, exc.kind
        except TooLarge as exc:  # an answer we refuse to read
            error, transport, retryable, kind = str(exc), False, False, "too_large"
        except TooManyRedirects as exc:
            error, transport, retryable, kind = str(exc), False, False, "http_status"
        else:
            answered = answer.url
            try:
                value = parse(answer)
                return Outcome(value, duration=clock() - started, url=answered)
            except PayloadError as exc:
                error, transport = str(exc), False
                retryable = answer.status >= 500
                kind = "http_status" if answer.status != 200 else "invalid_payload"
        delay = backoff * 2 ** (attempt - 1)
        if not retryable or attempt > retries or clock() + delay + timeout > deadline:
            return Outcome(None, error, transport, clock() - started, kind, answered)
        await asyncio.sleep(delay)
