"""Run simulated members for a test: `with running_members(MemberSimState("a")) as servers:`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from fedredirect.simulator import MemberServer, MemberSimState


@contextlib.contextmanager
def running_members(*states: MemberSimState) -> Iterator[list[MemberServer]]:
    """Start one MemberServer per state; stop them all on exit, even if a start fails.

    Tests change a member's behaviour by mutating its state (or POST /_sim on `server.url`).
    """
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(MemberServer(state)) for state in states]


def refused_sim_update(url: str, body: object) -> str:
    """``POST /_sim`` with ``body`` (a str is sent as it is, anything else as JSON) is
    refused with a 400 and changes nothing: the error it gives."""
    before = httpx.get(f"{url}/_sim").json()
    if isinstance(body, str):
        answer = httpx.post(f"{url}/_sim", content=body)
    else:
        answer = httpx.post(f"{url}/_sim", json=body)
    assert answer.status_code == 400
    assert httpx.get(f"{url}/_sim").json() == before
    error: str = answer.json()["error"]
    return error
