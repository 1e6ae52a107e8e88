"""One status model: the page and ``fedredirect status`` show the same banners for the same
document, and the router's /status.json is the view's document plus its own fields."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from typing import Any

import pytest

from fedredirect.status import render_status_document
from router.pages import render_status_page
from shared.evaluate import evaluate
from shared.status import banners, status_document, view_to_json
from tests.support.builders import NOW, federation
from tests.support.dom import Dom
from tests.support.status_doc import BASE

CONDITIONS: dict[str, tuple[str, Any]] = {
    "banner-outage": ("outage", {"policy": "keep", "active": True, "reason": "heartbeat 90s old"}),
    "banner-fallback": ("fallback", {"policy": "prime", "active": True, "reason": "nobody"}),
    "banner-gate": ("version_gate", {"suspended": True, "reason": "would exclude all"}),
    "banner-stale-reference": (
        "reference",
        {**BASE["reference"], "stale": True, "stale_reason": "prime versions 4000s old"},
    ),
    "banner-store": ("router", {**BASE["router"], "store_error": "ConnectionError: refused"}),
}


def _with(*idents: str) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc["outage"] = {"policy": "keep", "active": False, "reason": None}
    for ident in idents:
        key, value = CONDITIONS[ident]
        doc[key] = copy.deepcopy(value)
    return doc


@pytest.mark.parametrize(
    "idents",
    [(), *((i,) for i in CONDITIONS), *itertools.combinations(CONDITIONS, 2), tuple(CONDITIONS)],
)
def test_the_page_and_the_command_line_show_the_same_banners(idents: tuple[str, ...]) -> None:
    doc = _with(*idents)
    expected = banners(doc)
    assert {b.ident for b in expected} == set(idents)
    page = Dom(render_status_page(doc))
    on_page = [(attrs["id"], text) for attrs, text in page.by_class("banner")]
    assert on_page == [(b.ident, f"{b.title}: {b.reason}") for b in expected]
    text = render_status_document(doc)
    printed = [line for line in text.splitlines() if line.startswith("!! ")]
    assert printed == [f"!! {b.title}: {b.reason}" for b in expected]


def test_every_banner_says_what_is_wrong_most_severe_first() -> None:
    """The words an operator reads on /status and in ``fedredirect status``."""
    assert [(b.ident, b.title, b.reason) for b in banners(_with(*CONDITIONS))] == [
        ("banner-outage", "Checker outage", "heartbeat 90s old"),
        ("banner-fallback", "Fallback active", "nobody"),
        ("banner-gate", "Version gating suspended", "would exclude all"),
        ("banner-stale-reference", "Reference version is stale", "prime versions 4000s old"),
        (
            "banner-store",
            "This router cannot read the store; showing its last view",
            "ConnectionError: refused",
        ),
    ]


def test_a_banner_without_a_reason_says_so() -> None:
    doc = _with("banner-gate")
    doc["version_gate"]["reason"] = None
    assert [(b.title, b.reason) for b in banners(doc)] == [
        ("Version gating suspended", "no reason given")
    ]


def test_the_command_line_shows_the_outage_banner() -> None:
    text = render_status_document(_with("banner-outage"))
    assert text.splitlines()[0] == "!! Checker outage: heartbeat 90s old"


def test_the_router_document_is_the_view_plus_its_own_fields() -> None:
    config, observations, drains = federation()
    view = evaluate(config, observations, drains, None, NOW)
    router = {"view_age_seconds": 0.1, "store_error": None}
    doc = status_document(view, router, Counter({("b", "balancer"): 2, ("a", "cookie"): 1}))
    assert {k: v for k, v in doc.items() if k not in ("router", "redirects")} == view_to_json(view)
    assert doc["router"] == router
    assert doc["redirects"] == [
        {"member": "a", "reason": "cookie", "count": 1},
        {"member": "b", "reason": "balancer", "count": 2},
    ]
    assert status_document(view) == view_to_json(view)
