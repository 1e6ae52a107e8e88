"""Run simulated members for a test: `with running_members(MemberSimState("a")) as servers:`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fedredirect.simulator import MemberServer, MemberSimState


@contextlib.contextmanager
def running_members(*states: MemberSimState) -> Iterator[list[MemberServer]]:
    """Start one MemberServer per state; stop them all on exit, even if a start fails.

    Tests change a member's behaviour by mutating its state (or POST /_sim on `server.url`).
    """
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(MemberServer(state)) for state in states]
