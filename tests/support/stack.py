"""A running federation for end-to-end tests: members, their config, a checker and routers.

    with named_members("alpha", "beta") as members, running_stack(
        members, redis_url, key_prefix, tmp_path, routers=2
    ) as stack:
        launch(client, stack.router, "/build/gh/org/repo/HEAD")

Tests with a set-up of their own (two checkers, a legacy config) keep writing it out with
tests/support/procs.py; this is the shape most of them share. ``running_workers`` is the
same federation with one router of several worker processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedredirect.simulator import MemberServer, MemberSimState
from tests.support.members import running_members
from tests.support.procs import checker, router, router_workers, status, wait_for, write_config

#: alpha (the prime), beta and gamma, by weight: the federation most end-to-end tests run.
THREE = {"alpha": 50.0, "beta": 50.0, "gamma": 30.0}


@dataclass(frozen=True)
class Stack:
    """What a test talks to: routers by URL, members by name, the store by URL and prefix."""

    redis_url: str
    prefix: str
    members: dict[str, MemberServer]
    config: Path
    checker: subprocess.Popen[bytes]
    routers: tuple[str, ...]
    workdir: Path  # its config and logs

    @property
    def router(self) -> str:
        """The first router's base URL."""
        return self.routers[0]

    @property
    def store_args(self) -> tuple[str, ...]:
        """The CLI options that point a `fedredirect` command at this stack's store."""
        return ("--redis-url", self.redis_url, "--key-prefix", self.prefix)

    @property
    def checker_log(self) -> Path:
        return self.workdir / "checker.log"

    def router_log(self, index: int = 0) -> Path:
        return self.workdir / f"router{index + 1}.log"

    def member_urls(self) -> set[str]:
        return {m.url for m in self.members.values()}


@contextlib.contextmanager
def named_members(*names: str) -> Iterator[dict[str, MemberServer]]:
    """One simulated member per name, all healthy, by name."""
    with running_members(*(MemberSimState(n) for n in names)) as servers:
        yield dict(zip(names, servers, strict=True))


@contextlib.contextmanager
def running_stack(
    members: Mapping[str, MemberServer] | Sequence[MemberServer],
    redis_url: str,
    prefix: str,
    tmp: Path,
    *,
    weights: Mapping[str, float] | None = None,
    prime: str | None = None,
    routers: int = 1,
    eligible: int | None = None,
    timeout: float = 15.0,
    checker_args: Sequence[str] = (),
    **settings: Any,
) -> Iterator[Stack]:
    """Write a config for ``members`` (by name, or named as their state), start a checker and
    ``routers`` routers on it.

    Weights default to 10 each and the prime to the first member; ``settings`` go into the
    config. Yields once every router sees ``eligible`` targets (default: every member; 0 to
    not wait). Logs go to ``tmp``: checker.log, router1.log, ...
    """
    if not isinstance(members, Mapping):
        members = {m.state.name: m for m in members}
    prime = next(iter(members)) if prime is None else prime
    config = write_config(
        tmp / "federation.yaml",
        {n: (m, (weights or {}).get(n, 10.0), n == prime) for n, m in members.items()},
        **settings,
    )
    with contextlib.ExitStack() as running:
        proc = running.enter_context(
            checker(config, redis_url, prefix, tmp / "checker.log", *checker_args)
        )
        urls = tuple(
            running.enter_context(router(redis_url, prefix, tmp / f"router{i + 1}.log"))
            for i in range(routers)
        )
        want = len(members) if eligible is None else eligible
        for url in urls if want else ():
            wait_for(functools.partial(_sees, url, want), timeout, f"{url} sees {want} eligible")
        yield Stack(redis_url, prefix, dict(members), config, proc, urls, tmp)


@contextlib.contextmanager
def running_workers(
    weights: Mapping[str, float],
    redis_url: str,
    prefix: str,
    tmp: Path,
    workers: int,
    **settings: Any,
) -> Iterator[tuple[Stack, subprocess.Popen[bytes]]]:
    """Members named and weighted by ``weights`` (the first prime) and a checker, as
    ``running_stack`` starts them, and one ``fedredirect router --workers N`` (its
    multiprocess directory tmp/metrics, its log tmp/router1.log): the stack and the router's
    process. Yields once every worker serves every member: each has a view of its own, so
    a run of answers, three a worker, must all see them."""
    metrics, log = tmp / "metrics", tmp / "router1.log"
    with (
        named_members(*weights) as members,
        running_stack(
            members, redis_url, prefix, tmp, weights=weights, routers=0, **settings
        ) as stack,
        router_workers(workers, redis_url, prefix, metrics, log) as (url, proc),
    ):
        sees_all = functools.partial(_sees, url, len(members))
        wait_for(lambda: all(sees_all() for _ in range(3 * workers)), 20, "every worker")
        yield dataclasses.replace(stack, routers=(url,)), proc


@contextlib.contextmanager
def weighted_stack(
    weights: Mapping[str, float],
    redis_url: str,
    prefix: str,
    tmp: Path,
    *,
    states: Sequence[MemberSimState] = (),
    **settings: Any,
) -> Iterator[Stack]:
    """Members named and weighted by ``weights`` (as ``states`` set them up, by name, else
    healthy ones), a checker and routers on them, as ``running_stack`` starts them."""
    given = {state.name: state for state in states}
    with (
        running_members(*(given.get(n) or MemberSimState(n) for n in weights)) as members,
        running_stack(members, redis_url, prefix, tmp, weights=weights, **settings) as stack,
    ):
        yield stack


#: The ``start_stack`` fixture (tests/conftest.py): ``weighted_stack`` on a test's own store.
StartStack = Callable[..., AbstractContextManager[Stack]]


def _sees(router_url: str, eligible: int) -> bool:
    return len(status(router_url)["targets"]) == eligible
