"""Hostile request targets and headers, sent as raw bytes to a real router subprocess.

Whatever arrives, the router never answers 5xx and never redirects off the federation: a
Location is always a configured member URL followed by ``/``, and the only Set-Cookie is
its own ``host=<member URL>``. Requests are written by hand on a socket, since an HTTP
client would normalise exactly the input under test.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from fedredirect.simulator import MemberServer
from tests.support.rawhttp import Headers, raw_request
from tests.support.stack import Stack


@dataclass(frozen=True)
class Case:
    """One hostile request. ``{alpha}`` stands for alpha's URL, ``{alpha.netloc}`` for its
    host:port (every member is on http://127.0.0.1)."""

    id: str
    target: bytes
    headers: Sequence[bytes] = ()
    method: bytes = b"GET"
    host: bytes | None = b"127.0.0.1"  # None: send no Host header (or one in ``headers``)
    version: bytes = b"HTTP/1.1"
    status: int | None = None  # the exact status, where the outcome is certain
    natural: bytes | None = None  # the Location must be that of a clean GET of this target

    def render(self, members: dict[str, MemberServer]) -> bytes:
        lines = [self.method + b" " + self.target + b" " + self.version]
        if self.host is not None:
            lines.append(b"Host: " + self.host)
        lines += [*self.headers, b"Connection: close", b"", b""]
        request = b"\r\n".join(lines)
        for name, member in members.items():
            request = request.replace(b"{%s}" % name.encode(), member.url.encode())
            request = request.replace(b"{%s.netloc}" % name.encode(), member.url[7:].encode())
        return request


def _p(case: Case) -> object:
    return pytest.param(case, id=case.id)


LAUNCH = b"/build/gh/org/repo/HEAD"
EVIL_COOKIE = b"Set-Cookie: evil=1"

OPEN_REDIRECT = [
    Case("scheme-relative", b"//evil.example"),
    Case("scheme-relative-build", b"//evil.example/build/x"),
    Case("backslash-host", b"/\\evil.example"),
    Case("build-double-backslash", b"/build/\\\\evil.example"),
    Case("build-encoded-slashes", b"/build/%2F%2Fevil.example", status=307),
    Case("build-encoded-dotdot", b"/build/%2e%2e/%2e%2e/evil", status=307),
    Case("build-dotdot-encoded-slash", b"/build/..%2f..%2f", status=307),
    Case("build-dotdot", b"/build/../../evil.example"),
    Case("build-userinfo-only", b"/build/@evil.example", status=307),
    Case("build-userinfo", b"/build/gh/user:pass@evil.example/x", status=307),
    Case("build-absolute-url", b"/build/https://evil.example", status=307),
    Case("build-encoded-backslash", b"/build/%5C%5Cevil.example", status=307),
    Case("encoded-leading-slash", b"/%2Fbuild/x"),
    Case("query-and-fragment", LAUNCH + b"?x=//evil.example#frag", status=307),
    Case("query-absolute-url", LAUNCH + b"?next=https://evil.example&x=%40evil", status=307),
]

CRLF = [
    Case("target-encoded-crlf", LAUNCH + b"%0d%0aSet-Cookie:%20evil=1", status=307),
    Case("query-encoded-crlf", LAUNCH + b"?x=%0d%0aLocation:%20http://evil.example", status=307),
    Case("target-raw-crlf", LAUNCH + b"\r\n" + EVIL_COOKIE, status=400),
    Case("target-raw-lf", LAUNCH + b"\n" + EVIL_COOKIE, status=400),
    Case("target-raw-cr", LAUNCH + b"\rSet-Cookie:evil=1", status=400),
    Case("query-raw-cr", LAUNCH + b"?x=\rSet-Cookie:evil=1", status=400),
    Case("cookie-raw-cr", LAUNCH, [b"Cookie: host=x\rSet-Cookie: evil=1"], status=400),
    Case("header-raw-cr", LAUNCH, [b"X-Forwarded-Proto: https\rLocation: //evil"], status=400),
    # A bare LF in the header section, and an obs-fold, are refused by the parser (httptools),
    # as RFC 9112 2.2 and 5.2 allow: a header is never split in two nor glued to another.
    Case("header-raw-lf", LAUNCH, [b"X-Forwarded-Proto: https\n" + EVIL_COOKIE], status=400),
    Case("host-raw-cr", LAUNCH, host=b"evil.example\rLocation: http://evil.example", status=400),
    Case("header-folded", LAUNCH, [b"X-Forwarded-Host: a", b" " + EVIL_COOKIE], status=400),
]

ABSOLUTE_FORM = [
    Case("absolute-http", b"http://evil.example" + LAUNCH, status=307, natural=LAUNCH),
    Case("absolute-upper", b"HTTP://EVIL.EXAMPLE" + LAUNCH, status=307, natural=LAUNCH),
    Case("absolute-query", b"http://evil.example" + LAUNCH + b"?u=//e", natural=LAUNCH + b"?u=//e"),
    Case("absolute-https-double-slash", b"https://evil.example:443//evil2/build/x"),
    Case("absolute-userinfo", b"http://u:p@evil.example" + LAUNCH, status=307, natural=LAUNCH),
    Case("absolute-no-path", b"http://evil.example"),
    Case("absolute-javascript", b"javascript://evil.example/build/x"),
    Case("scheme-relative-target", b"//evil.example/build/x"),
    Case("no-leading-slash", b"evil.example/build/x"),
    Case("encoded-no-leading-slash", b"%2Fbuild/x"),
    Case("asterisk-form", b"*", method=b"OPTIONS"),
    Case("authority-form", b"evil.example:443", method=b"CONNECT"),
]

SPOOFING = [
    Case("host-evil", LAUNCH, host=b"evil.example", natural=LAUNCH),
    Case("host-userinfo", LAUNCH, host=b"user@evil.example", natural=LAUNCH),
    Case("host-ipv6-broken", LAUNCH, host=b"[", natural=LAUNCH),
    Case("host-twice", LAUNCH, [b"Host: evil.example"]),
    Case("host-missing", LAUNCH, host=None, status=400),
    Case("host-missing-http10", LAUNCH, host=None, version=b"HTTP/1.0", natural=LAUNCH),
    Case("x-forwarded-host", LAUNCH, [b"X-Forwarded-Host: evil.example"], natural=LAUNCH),
    Case("x-forwarded-proto", LAUNCH, [b"X-Forwarded-Proto: javascript"], natural=LAUNCH),
    Case(
        "x-forwarded-all",
        LAUNCH,
        [
            b"X-Forwarded-Host: evil.example",
            b"X-Forwarded-Proto: https",
            b"X-Forwarded-Port: 443",
            b"X-Forwarded-Prefix: //evil.example",
            b"X-Forwarded-For: 203.0.113.9",
        ],
        natural=LAUNCH,
    ),
    Case("forwarded", LAUNCH, [b"Forwarded: host=evil.example;proto=https"], natural=LAUNCH),
    Case("original-url", LAUNCH, [b"X-Original-URL: //evil.example"], natural=LAUNCH),
    Case("rewrite-url", LAUNCH, [b"X-Rewrite-URL: https://evil.example/"], natural=LAUNCH),
]

OVERSIZED_AND_BINARY = [
    Case("path-9KB", b"/build/gh/org/" + b"a" * 9000, status=414),  # over MAX_TARGET_BYTES
    Case("query-9KB", LAUNCH + b"?x=" + b"a" * 9000, status=414),
    Case("path-16KiB", b"/build/gh/org/" + b"a" * 16 * 1024),
    Case("path-100KiB", b"/build/gh/org/" + b"a" * 100 * 1024),
    Case("query-100KiB", LAUNCH + b"?x=" + b"%2F" * 34 * 1024),
    Case("cookie-64KiB", LAUNCH, [b"Cookie: host=" + b"a" * 64 * 1024]),
    Case("many-headers", LAUNCH, [b"X-H%d: %d" % (i, i) for i in range(500)]),
    Case("path-non-utf8", b"/build/gh/org/\xff\xfe/HEAD", status=400),
    Case("query-non-utf8", LAUNCH + b"?x=\xff\xfe", status=400),
    Case("path-nul", b"/build/gh/org/\x00/HEAD", status=400),
    Case("query-nul", LAUNCH + b"?x=\x00", status=400),
    Case("path-tab", b"/build/gh/org/\t/HEAD", status=400),
    Case("header-nul", LAUNCH, [b"Cookie: host=\x00"], status=400),
    Case("header-non-utf8", LAUNCH, [b"X-Forwarded-Host: \xff\xfe"], natural=LAUNCH),
    Case("path-encoded-non-utf8", b"/build/gh/org/%ff%fe/HEAD", status=307),
    Case("path-encoded-nul", b"/build/gh/org/%00/HEAD", status=307),
]

COOKIES = [
    Case("cookie-javascript", LAUNCH, [b"Cookie: host=javascript:alert(1)"], natural=LAUNCH),
    Case("cookie-quoted-evil", LAUNCH, [b'Cookie: host="https://evil.example"'], natural=LAUNCH),
    Case("cookie-member-dotdot", LAUNCH, [b"Cookie: host={alpha}/../.."], natural=LAUNCH),
    Case("cookie-member-at-evil", LAUNCH, [b"Cookie: host={alpha}@evil.example"], natural=LAUNCH),
    Case("cookie-member-prefix", LAUNCH, [b"Cookie: host={alpha}.evil.example"], natural=LAUNCH),
    Case("cookie-200", LAUNCH, [b"Cookie: " + b"; ".join(b"c%d=%d" % (i, i) for i in range(200))]),
    Case(
        "cookie-200-then-evil",
        LAUNCH,
        [
            b"Cookie: "
            + b"; ".join(b"c%d=%d" % (i, i) for i in range(200))
            + b"; host=https://evil.example"
        ],
        natural=LAUNCH,
    ),
    Case("cookie-10KiB", LAUNCH, [b"Cookie: host={alpha}; pad=" + b"x" * 10 * 1024]),
    Case("cookie-unbalanced-quote", LAUNCH, [b'Cookie: host="https://evil'], natural=LAUNCH),
    Case("cookie-unbalanced-member", LAUNCH, [b'Cookie: host="{alpha}'], natural=LAUNCH),
    Case("cookie-non-utf8", LAUNCH, [b"Cookie: host=\xff\xfe"], natural=LAUNCH),
    Case("cookie-empty", LAUNCH, [b"Cookie: host="], natural=LAUNCH),
    Case("cookie-no-value", LAUNCH, [b"Cookie: host"], natural=LAUNCH),
    Case("cookie-twice", LAUNCH, [b"Cookie: host=https://evil.example", b"Cookie: host=x"]),
    Case("cookie-crlf-escaped", LAUNCH, [b'Cookie: host="\\015\\012Set-Cookie: evil=1"']),
]

CASES = OPEN_REDIRECT + CRLF + ABSOLUTE_FORM + SPOOFING + OVERSIZED_AND_BINARY + COOKIES


def _if_400(status: int | None) -> int | None:
    """Only the parser's rejections carry over from a launch to a proxied page."""
    return 400 if status == 400 else None


# The same attacks on a page that is not a launch: the catch-all proxies it to the home
# member (alpha), so hostile headers travel on to a member and its answer travels back.
PAGE = b"/about/page"
PROXIED = (
    [
        Case(f"page-{c.id}", PAGE, c.headers, c.method, c.host, c.version, c.status)
        for c in CRLF + SPOOFING + OVERSIZED_AND_BINARY + COOKIES
        if c.target == LAUNCH
    ]
    + [
        Case(f"page-{c.id}", c.target.replace(b"/build/", b"/other/"), status=_if_400(c.status))
        for c in OPEN_REDIRECT + CRLF + OVERSIZED_AND_BINARY
        if c.target.startswith(b"/build/") and c.target != LAUNCH
    ]
    + [
        Case("page-root", b"/", status=200),
        # An encoded newline before a trailing slash once made Starlette's redirect_slashes
        # answer with a redirect to http://<Host header>/x%0A (the catch-all missed "\n").
        Case("page-encoded-lf-slash", b"/x%0A/", host=b"evil.example", status=400),
        Case("page-encoded-crlf-slash", b"/%0D%0A/", host=b"evil.example", status=400),
        Case("page-encoded-lf-inside", b"/a%0Ab?q=1", host=b"evil.example", status=400),
        # The target "%2F@host:port/x" starts with no slash once decoded: home URL + target
        # made http://127.0.0.1:HOME%2F@host:port/x, i.e. a proxied request to another host.
        Case("page-encoded-slash-userinfo", b"%2F@{beta.netloc}/x", status=400),
        Case("page-encoded-slash", b"%2Fabout", status=400),
        Case("page-content-length-bad", PAGE, [b"Content-Length: abc"], status=400),
        # The parser (httptools) refuses a list of Content-Length values, even equal ones
        # (RFC 9110 8.6 lets it): one less way for two parsers to disagree on a body.
        Case("page-content-length-list", PAGE, [b"Content-Length: 0, 0"], status=400),
        Case("page-post-launch", LAUNCH, method=b"POST", status=405),
        Case("page-trace", PAGE, method=b"TRACE", status=405),
    ]
)


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def _check(answer: tuple[int, Headers, bytes], members: dict[str, MemberServer]) -> str | None:
    """The invariants every answer keeps; returns the Location, if there is one."""
    status, headers, _ = answer
    assert status < 500, answer
    urls = tuple(m.url for m in members.values())
    for name, value in headers:
        assert "\r" not in value and "\n" not in value, (name, value)
        assert not name.startswith(" ") and "evil" not in name, (name, value)
    locations = [v for n, v in headers if n == "location"]
    assert len(locations) <= 1, locations
    for location in locations:
        assert location.startswith(tuple(u + "/" for u in urls)), location
    cookies = [v for n, v in headers if n == "set-cookie"]
    assert len(cookies) <= 1, cookies
    for cookie in cookies:
        assert cookie.startswith(tuple(f"host={u};" for u in urls)), cookie
    return locations[0] if locations else None


@pytest.fixture(scope="module")
def natural_location(stack: Stack) -> Callable[[bytes], str]:
    """Where a clean GET of a launch goes, to compare hostile variants against."""
    members = stack.members
    port = _port(stack.router)

    @functools.cache
    def natural(target: bytes) -> str:
        answer = raw_request(port, Case("clean", target).render(members))
        location = _check(answer, members)
        assert answer[0] == 307 and location is not None, answer
        return location

    return natural


@pytest.mark.parametrize("case", [_p(c) for c in CASES])
def test_hostile_launch_stays_on_the_federation(
    stack: Stack, natural_location: Callable[[bytes], str], case: Case
) -> None:
    members = stack.members
    port = _port(stack.router)
    answer = raw_request(port, case.render(members))
    location = _check(answer, members)
    if case.status is not None:
        assert answer[0] == case.status, answer
    if case.natural is not None:
        assert answer[0] == 307, answer
        assert location == natural_location(case.natural)


@pytest.mark.parametrize("case", [_p(c) for c in PROXIED])
def test_hostile_page_request_stays_on_the_federation(stack: Stack, case: Case) -> None:
    members = stack.members
    port = _port(stack.router)
    status, headers, _ = answer = raw_request(port, case.render(members))
    _check(answer, members)
    if case.status is not None:
        assert status == case.status, answer
    if status == 200:  # proxied: the page came from the home member, alpha
        assert ("x-fedredirect-member", "alpha") in headers, answer
