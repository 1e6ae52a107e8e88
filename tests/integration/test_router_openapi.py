"""Schemathesis against the router's own OpenAPI document, served and answered in-process.

Every operation FastAPI documents (/health, /active_hosts, /status.json, /status, /why and
whatever is added later) is called with generated valid and invalid input; the view is set
by hand (every member eligible, see tests/support/inprocess.py), so nothing is deliberately 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import settings

from tests.support.inprocess import router_with_view, without_lifespan


@pytest.fixture(scope="module")
def router_schema(redis_url: str) -> Iterator[Any]:
    router = router_with_view(redis_url, other_paths="404")
    yield schemathesis.openapi.from_asgi("/openapi.json", without_lifespan(router))
    # /history.json read the store from schemathesis' own event loops, so the client's
    # connections belong to loops that are gone: drop them without awaiting those loops.
    router.holder.store.client.connection_pool.reset()


schema = schemathesis.pytest.from_fixture("router_schema")


@schema.parametrize()
@settings(max_examples=50, deadline=None)
def test_every_documented_operation(case: schemathesis.Case) -> None:
    case.call_and_validate()
