"""The simulated member's build tokens follow BinderHub's rule, over real HTTP.

A ``/v2/`` page carries a token for the origin the request names (``Origin``, else
``Host``); a launch with a bad token, or one from another origin, is refused with ``403
Invalid build token``; a launch without one is allowed until the client address's rate
limit is spent. The first tests pin the stdlib JWT against the reference encoding.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fedredirect import buildtoken
from fedredirect.simulator import MemberServer, MemberSimState, apply_update
from tests.support.binderhub import page_config

SPEC = "gh/org/repo/HEAD"
KEY = buildtoken.secret_bytes(buildtoken.DEV_SECRET)
INVALID = b'data: {"phase": "failed", "status_code": 403, "message": "Invalid build token\\n"}\n\n'


def test_encoding_is_the_reference_one() -> None:
    """jwt.io's example token, which PyJWT produces byte for byte."""
    claims = {"sub": "1234567890", "name": "John Doe", "iat": 1516239022}
    assert buildtoken.encode(claims, b"your-256-bit-secret") == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )


def test_decode_checks_what_pyjwt_checks() -> None:
    now = 1_700_000_000.0
    token = buildtoken.mint(KEY, SPEC, "router.example", now)
    claims = buildtoken.decode(token, KEY, SPEC, now)
    assert claims == {"exp": int(now) + 300, "aud": SPEC, "origin": "router.example"}
    header, payload, signature = token.split(".")
    unsigned = buildtoken.encode({"alg": "none"}, KEY).split(".")[1]
    refused = {
        "expired": (token, KEY, SPEC, now + 300),
        "another spec": (token, KEY, "gh/org/other/HEAD", now),
        "another key": (token, b"another key", SPEC, now),
        "tampered": (f"{header}.{payload}x.{signature}", KEY, SPEC, now),
        "alg none": (f"{unsigned}.{payload}.", KEY, SPEC, now),
        "two segments": (f"{header}.{payload}", KEY, SPEC, now),
        "not base64": ("!!.!!.!!", KEY, SPEC, now),
        "no aud": (buildtoken.encode({"exp": now + 60}, KEY), KEY, SPEC, now),
        "exp not a number": (buildtoken.encode({"exp": "x", "aud": SPEC}, KEY), KEY, SPEC, now),
    }
    for why, args in refused.items():
        with pytest.raises(buildtoken.InvalidToken):
            buildtoken.decode(*args)
            pytest.fail(f"accepted a token: {why}")
    listed = buildtoken.encode({"aud": ["x", SPEC]}, KEY)
    assert buildtoken.decode(listed, KEY, SPEC, now)["aud"] == ["x", SPEC]


def test_a_secret_must_be_hex() -> None:
    state = MemberSimState("m")
    with pytest.raises(ValueError, match="hex"):
        apply_update(state, {"build_token_secret": "not hex"})
    apply_update(state, {"build_token_secret": "00ff"})
    assert state.build_token_secret == "00ff"


@pytest.fixture(scope="module")
def members() -> Iterator[tuple[MemberServer, MemberServer]]:
    """Two members sharing the dev secret, as ``fedredirect dev`` runs them."""
    with (
        MemberServer(MemberSimState("alpha", build_delay=0)) as alpha,
        MemberServer(MemberSimState("beta", build_delay=0)) as beta,
    ):
        yield alpha, beta


@pytest.fixture
def alpha(members: tuple[MemberServer, MemberServer]) -> MemberServer:
    server = members[0]
    server.state.build_token_check_origin = True
    server.state.build_token_secret = buildtoken.DEV_SECRET
    return server


def page_token(url: str, headers: dict[str, str] | None = None) -> str:
    """The build token of the ``/v2/`` page at ``url``, as its script reads it."""
    page = httpx.get(url, headers=headers)
    assert page.status_code == 200
    token: str = page_config(page.text)["buildToken"]
    return token


def launch(
    url: str, token: str | None, origin: str | None
) -> tuple[int, httpx.Headers, bytes, list[dict[str, Any]]]:
    """A launch as a browser makes it: (status, headers, raw body, events up to the last)."""
    params = {"build_token": token} if token else None
    headers = {"Origin": origin} if origin else None
    events: list[dict[str, Any]] = []
    body = b""
    with httpx.stream("GET", url, params=params, headers=headers, timeout=10) as response:
        for chunk in response.iter_bytes():
            body += chunk
            events = [json.loads(line[6:]) for line in body.splitlines() if line[:6] == b"data: "]
            if events and events[-1]["phase"] in ("ready", "failed"):
                break  # the member holds the stream open after ready
    return response.status_code, response.headers, body, events


@pytest.mark.parametrize(
    ("origin", "host", "expected"),
    [
        ("https://my.host", "my.host", "my.host"),
        ("https://my.origin", "my.host", "my.origin"),
        ("http://my.origin:8080", "my.host", "my.origin:8080"),
        (None, "my.host", "my.host"),
    ],
)
def test_the_page_token_names_the_origin_else_the_host(
    alpha: MemberServer, origin: str | None, host: str, expected: str
) -> None:
    """BinderHub's own test_build_token_origin, against the simulated member."""
    headers = {"Host": host} | ({"Origin": origin} if origin else {})
    before = int(time.time())
    token = page_token(f"{alpha.url}/v2/{SPEC}", headers)
    claims = buildtoken.decode(token, KEY, SPEC)
    assert claims["aud"] == SPEC and claims["origin"] == expected
    assert before + 300 <= claims["exp"] <= time.time() + 300


def test_a_token_launches_from_the_origin_it_names(alpha: MemberServer) -> None:
    token = page_token(f"{alpha.url}/v2/{SPEC}", {"Origin": "http://router.example:8080"})
    status, headers, _, events = launch(
        f"{alpha.url}/build/{SPEC}", token, "http://router.example:8080"
    )
    assert status == 200 and events[-1]["phase"] == "ready"
    assert "x-ratelimit-remaining" not in headers  # a valid token is not rate-limited


def test_a_page_fetched_from_the_member_itself_cannot_launch_from_the_router(
    alpha: MemberServer,
) -> None:
    """The bug of issue 16: a proxy that sends no Origin gets a token naming the member's
    own host; the browser then launches with the router's origin and is refused."""
    token = page_token(f"{alpha.url}/v2/{SPEC}")
    assert buildtoken.decode(token, KEY, SPEC)["origin"] == alpha.url.removeprefix("http://")
    built = list(alpha.state.built)
    status, headers, body, events = launch(
        f"{alpha.url}/build/{SPEC}", token, "http://router.example"
    )
    assert (status, body) == (403, INVALID)
    assert events == [{"phase": "failed", "status_code": 403, "message": "Invalid build token\n"}]
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["access-control-allow-origin"] == "*"  # the page can read why
    assert alpha.state.built == built
    # BinderHub's build_token_check_origin: false lets it through.
    alpha.state.build_token_check_origin = False
    status, _, _, events = launch(f"{alpha.url}/build/{SPEC}", token, "http://router.example")
    assert status == 200 and events[-1]["phase"] == "ready"


def test_bad_tokens_are_refused(alpha: MemberServer) -> None:
    origin = "http://router.example"
    now = time.time()
    tokens = {
        "expired": buildtoken.mint(KEY, SPEC, "router.example", now - 301),
        "another spec": buildtoken.mint(KEY, "gh/org/other/HEAD", "router.example", now),
        "another key": buildtoken.mint(b"another key", SPEC, "router.example", now),
        "garbage": "not.a.token",
    }
    for why, token in tokens.items():
        status, _, body, _ = launch(f"{alpha.url}/build/{SPEC}", token, origin)
        assert (status, body) == (403, INVALID), why


def test_members_sharing_the_secret_accept_each_others_tokens(
    members: tuple[MemberServer, MemberServer], alpha: MemberServer
) -> None:
    _, beta = members
    origin = "http://router.example"
    token = page_token(f"{alpha.url}/v2/{SPEC}", {"Origin": origin})
    status, _, _, events = launch(f"{beta.url}/build/{SPEC}", token, origin)
    assert status == 200 and events[-1]["phase"] == "ready"
    alpha.state.build_token_secret = "00" * 32  # alpha alone changes its secret
    token = page_token(f"{alpha.url}/v2/{SPEC}", {"Origin": origin})
    assert launch(f"{beta.url}/build/{SPEC}", token, origin)[:3:2] == (403, INVALID)


def test_launches_without_a_token_are_rate_limited_per_address() -> None:
    """BinderHub's RateLimiter: a fixed window per client address; a valid token is exempt."""
    state = MemberSimState("limited", build_delay=0, rate_limit=3, rate_limit_period=600)
    with MemberServer(state) as server:
        url = f"{server.url}/build/{SPEC}"
        started = int(time.time())
        for remaining in (2, 1, 0):
            status, headers, _, events = launch(url, None, None)
            assert status == 200 and events[-1]["phase"] == "ready"
            assert headers["x-ratelimit-remaining"] == str(remaining)
            assert headers["x-ratelimit-limit"] == "3"
            assert started + 600 <= int(headers["x-ratelimit-reset"]) <= time.time() + 600
        status, headers, _, events = launch(url, None, None)
        assert status == 429
        message = "Rate limit exceeded. Try again in 600 seconds.\n"
        assert events == [{"phase": "failed", "status_code": 429, "message": message}]
        assert headers["access-control-allow-origin"] == "*"
        token = page_token(f"{server.url}/v2/{SPEC}")
        status, _, _, events = launch(url, token, None)  # no Origin: checked against Host
        assert status == 200 and events[-1]["phase"] == "ready"
        state.rate_limit = 0  # no limit
        assert launch(url, None, None)[0] == 200
