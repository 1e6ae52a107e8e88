"""A launch as a real client makes it: BinderHub's build API behind the router, with CORS.

The module's ``stack`` is real: a redis-server, three simulated members, a checker and two
routers as processes. The browser tests run headless Chromium (a hard requirement, like
the status page test); the client tests run BinderHub's own client library,
``@jupyterhub/binderhub-client`` from the npm registry bundled with esbuild, on a page
served from a third origin (neither router nor member), exactly as a site embedding
launches would, and on the router's own ``/v2/`` page with that page's build token.

The members check build tokens as BinderHub does, origin check on: a launch from the
router's ``/v2/`` page reaches ``ready`` only if the router's proxy told the home member
the public origin when it served the page.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from fedredirect import buildtoken
from fedredirect.simulator import MemberServer
from tests.support.binderhub import page_config
from tests.support.chromium import browser, chromium
from tests.support.dom import Dom
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parents[2]
BROWSER = REPO / "tests" / "browser"  # package.json, package-lock.json, entry.js
BUNDLE_INPUTS = ("package.json", "package-lock.json", "entry.js")
CACHE = REPO / ".cache" / "browser"
BUILD_PHASES = ["waiting", "fetching", "building", "built", "launching", "ready"]
CACHED_PHASES = ["built", "launching", "ready"]


def _picked(router: str, path: str) -> tuple[str, str]:
    """The member (name, URL) that the router's /why names for a launch of ``path``."""
    pick = httpx.get(f"{router}/why", params={"path": path}, timeout=5).json()["pick"]
    return pick["member"], pick["url"]


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The ``data:`` events of an event stream, until ``ready`` or ``failed``."""
    for line in response.iter_lines():
        if line.startswith("data:"):
            event: dict[str, Any] = json.loads(line[5:])
            yield event
            if event["phase"] in ("ready", "failed"):
                return


def _launch(client: httpx.Client, url: str) -> tuple[str, list[dict[str, Any]]]:
    """Launch as a plain HTTP client: follow the redirect, read the events; (final URL, events)."""
    with client.stream("GET", url, follow_redirects=True, timeout=10) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return str(response.url), list(_events(response))


def test_preflight_and_launch_answers_allow_any_origin(stack: Stack) -> None:
    router = stack.router
    origin = {"Origin": "https://site.example"}
    preflight = httpx.options(
        f"{router}/build/gh/org/repo/HEAD",
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "cache-control",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-headers"] == "cache-control"
    assert "location" not in preflight.headers and "set-cookie" not in preflight.headers

    redirect = httpx.get(f"{router}/build/gh/org/repo/HEAD", headers=origin)
    assert redirect.status_code == 307
    assert redirect.headers["access-control-allow-origin"] == "*"
    too_long = httpx.get(f"{router}/build/gh/org/{'a' * 9000}/HEAD", headers=origin)
    assert too_long.status_code == 414
    assert too_long.headers["access-control-allow-origin"] == "*"
    # Other pages are not the build API: no CORS there, and OPTIONS is not allowed.
    assert httpx.options(f"{router}/status", headers=origin).status_code == 405
    assert "access-control-allow-origin" not in httpx.get(f"{router}/status.json").headers


def test_build_api_through_the_router_reaches_ready_on_the_picked_member(stack: Stack) -> None:
    router = stack.router
    path = "/build/gh/org/plain-client/HEAD"
    name, member_url = _picked(router, path)
    with httpx.Client() as client:
        final_url, first = _launch(client, router + path)
        _, second = _launch(client, router + path)
    assert final_url == member_url + path
    assert [e["phase"] for e in first] == BUILD_PHASES
    assert [e["phase"] for e in second] == CACHED_PHASES
    ready = first[-1]
    assert ready["url"].startswith(f"{member_url}/user/org-plain-client-"), ready
    assert ready["binder_launch_host"] == member_url + "/"
    assert ready["binder_request"] == "v2/gh/org/plain-client/HEAD"
    assert ready["binder_ref_url"].startswith("https://github.com/org/plain-client/tree/")
    assert ready["repo_url"] == "https://github.com/org/plain-client"
    assert ready["token"] and ready["image"] == first[3]["imageName"] == second[0]["imageName"]
    assert second[-1]["token"] != ready["token"]
    built_on = [n for n, m in stack.members.items() if ready["image"] in m.state.built]
    assert built_on == [name]
    server = httpx.get(ready["url"], params={"token": ready["token"]})
    assert server.status_code == 200
    assert server.headers["x-fedredirect-member"] == name


def test_launch_page_arrives_through_the_router_from_the_home_member(stack: Stack) -> None:
    router = stack.router
    response = httpx.get(f"{router}/v2/gh/org/repo/HEAD?urlpath=lab")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-fedredirect-member"] == "alpha"  # the prime, the home member
    dom = Dom(response.text)
    launch = dom.by_id("launch")
    assert launch is not None and launch[0]["data-build"] == "/build/gh/org/repo/HEAD"
    assert "gh/org/repo/HEAD" in launch[1]
    assert dom.by_id("phases") is not None and dom.by_id("result") is not None
    assert dom.scripts == 2  # window.pageConfig, then the launch
    external = [a for _t, a, _x in dom.elements if {"src", "href"} & set(a)]
    assert external == [], "the launch page must not load anything"
    key = buildtoken.secret_bytes(buildtoken.DEV_SECRET)
    claims = buildtoken.decode(page_config(response.text)["buildToken"], key, "gh/org/repo/HEAD")
    assert claims["origin"] == urlsplit(router).netloc  # the router's, not alpha's


def _build_requests(member: MemberServer, path: str) -> list[tuple[bytes, list[str]]]:
    """The launches of ``path`` the member received: (target, Origin values)."""
    prefix = path.encode()
    return [(r.target, r.values("origin")) for r in member.requests if r.target.startswith(prefix)]


def test_launch_page_shows_each_phase_and_the_member_in_chromium(
    stack: Stack, tmp_path: Path
) -> None:
    """The page's own script, run by a browser on the router's origin: the relative
    /build/ URL, with the page's build token, is redirected to another origin (a member),
    which checks the token's origin against the browser's and CORS lets the page read."""
    router = stack.router
    name, member_url = _picked(router, "/build/gh/org/page/HEAD")
    member = stack.members[name]
    assert member.state.build_token_check_origin  # BinderHub's default
    with browser(tmp_path / "profile", tmp_path / "chromium.log") as chrome:
        page = chrome.open(f"{router}/v2/gh/org/page/HEAD")
        done = "['ready', 'failed'].includes(document.getElementById('result')?.dataset.phase)"
        page.wait_for(done, 30, "the launch page to finish")
        dom = Dom(page.evaluate("document.documentElement.outerHTML"))
    result = dom.by_id("result")
    assert result is not None
    assert result[0]["data-phase"] == "ready", result
    assert result[0]["data-member"] == name
    assert result[0]["data-url"].startswith(f"{member_url}/user/")
    phases = [attrs["data-phase"] for _tag, attrs, _text in dom.elements if "data-phase" in attrs]
    assert phases == [*BUILD_PHASES, "ready"]  # one item per event, then #result
    [(target, origins)] = _build_requests(member, "/build/gh/org/page/HEAD")
    assert b"?build_token=" in target and origins == [router]


# A launch as BinderHub's client makes one: every event until ready or failed.
_EVENTS_OF = """async function eventsOf(repo) {
  const events = [];
  try {
    for await (const event of repo.fetch()) {
      events.push(event);
      if (event.phase === "ready" || event.phase === "failed") break;
    }
  } finally {
    repo.close();
  }
  return events;
}"""

# The launch of BinderHub's page, as its script runs it: BinderRepository with the page's
# window.pageConfig.buildToken and the build endpoint on the page's own origin. A first
# launch brings a token minted without the proxy's headers (one naming the home member's
# own host), as the router served pages before issue 16: BinderHub refuses it.
_LAUNCH_IN_PAGE = """
(async () => {
  %(events_of)s
  const launch = (token) => eventsOf(new BinderRepository(
    %(spec)s, new URL("/build/", location.href), { buildToken: token }));
  try {
    const stale = await launch(%(stale)s);
    const fresh = await launch(window.pageConfig.buildToken);
    window.clientReport = { stale, fresh };
  } catch (err) {
    window.clientReport = { error: String(err.stack || err) };
  }
})();
"""


@pytest.mark.timeout(420)  # a cold run installs the client from the npm registry
def test_binderhub_client_on_the_routers_page_launches_with_its_build_token(
    stack: Stack, tmp_path: Path
) -> None:
    chromium()
    bundle = client_bundle().read_text()
    router = stack.router
    spec = "gh/org/client-in-page/HEAD"
    name, member_url = _picked(router, f"/build/{spec}")
    member = stack.members[name]
    home = stack.members["alpha"]
    direct = httpx.get(f"{home.url}/v2/{spec}")  # no proxy: the token names alpha's host
    stale = page_config(direct.text)["buildToken"]
    with browser(tmp_path / "profile", tmp_path / "chromium.log") as chrome:
        page = chrome.open(f"{router}/v2/{spec}")
        done = "document.getElementById('result')?.dataset.phase === 'ready'"
        page.wait_for(done, 30, "the page's own launch")  # it builds the image
        page.evaluate(bundle)
        script = _LAUNCH_IN_PAGE % {
            "events_of": _EVENTS_OF,
            "spec": json.dumps(spec),
            "stale": json.dumps(stale),
        }
        page.evaluate(script)
        report = page.wait_for("window.clientReport", 60, "two launches by the client")
    assert "error" not in report, report
    [refused] = report["stale"]
    assert refused["phase"] == "failed", report
    assert refused["message"].startswith("Failed to connect to event stream: 403"), refused
    fresh = report["fresh"]
    assert [e["phase"] for e in fresh] == CACHED_PHASES, report
    assert fresh[-1]["url"].startswith(f"{member_url}/user/"), (name, fresh[-1])
    launches = _build_requests(member, f"/build/{spec}")
    assert [origins for _target, origins in launches] == [[router]] * 3
    assert all(b"build_token=" in target for target, _origins in launches)


# -- BinderHub's own client in Chromium, from a third origin ------------------------------


def client_bundle() -> Path:
    """BinderHub's client library bundled for a browser page, built once per lock file
    and entry file: reruns find it in .cache/ and skip npm and esbuild."""
    digest = hashlib.sha256()
    for name in BUNDLE_INPUTS:
        digest.update((BROWSER / name).read_bytes())
    bundle = CACHE / f"binderhub-client-{digest.hexdigest()[:20]}.js"
    if bundle.exists():
        return bundle
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are required to bundle the BinderHub client: run scripts/test")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="build-") as tmp:
        for name in BUNDLE_INPUTS:
            shutil.copy(BROWSER / name, tmp)
        steps = [
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            [
                str(Path(tmp) / "node_modules" / ".bin" / "esbuild"),
                "entry.js",
                "--bundle",
                "--format=iife",
                "--outfile=bundle.js",
            ],
        ]
        for step in steps:
            done = subprocess.run(step, cwd=tmp, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{step[:2]} failed:\n{done.stdout}\n{done.stderr}"
        os.replace(Path(tmp) / "bundle.js", bundle)  # atomic: a reader sees all or nothing
    return bundle


_CLIENT_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>A site embedding Binder launches</title>
<script src="binderhub-client.js"></script>
<script>
// Launch each ?spec= in turn through the BinderHub API at ?api= with BinderHub's own
// client, then leave every event seen in window.launchReport for the test to read.
%(events_of)s
const launch = (api, spec) => eventsOf(new BinderRepository(spec, new URL(api)));

(async () => {
  const params = new URLSearchParams(location.search);
  const launches = [];
  try {
    for (const spec of params.getAll("spec")) launches.push(await launch(params.get("api"), spec));
    window.launchReport = { origin: location.origin, launches };
  } catch (err) {
    window.launchReport = { origin: location.origin, launches, error: String(err.stack || err) };
  }
})();
</script>
"""


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def third_origin(directory: Path) -> Iterator[str]:
    """A site of its own on 127.0.0.1 (neither router nor member) serving ``directory``."""
    handler = functools.partial(_QuietFiles, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="third-origin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.timeout(420)  # a cold run installs the client from the npm registry
def test_binderhub_client_launches_through_the_router_from_another_site(
    stack: Stack, tmp_path: Path
) -> None:
    chromium()  # fail before building anything when the browser is missing
    started = time.monotonic()
    site_files = tmp_path / "site"
    site_files.mkdir()
    shutil.copy(client_bundle(), site_files / "binderhub-client.js")
    (site_files / "index.html").write_text(_CLIENT_PAGE % {"events_of": _EVENTS_OF})
    bundled = time.monotonic() - started
    router = stack.router
    spec = "gh/org/repo/HEAD"
    name, member_url = _picked(router, f"/build/{spec}")
    for member in stack.members.values():
        member.state.built.clear()  # the first launch builds, wherever it lands
    with (
        third_origin(site_files) as site,
        browser(tmp_path / "profile", tmp_path / "chromium.log") as chrome,
    ):
        assert len({urlsplit(u).netloc for u in (site, router, member_url)}) == 3
        api = quote(router + "/build/", safe="")
        page = chrome.open(f"{site}/index.html?api={api}&spec={spec}&spec={spec}")
        report = page.wait_for("window.launchReport", 60, "two launches by the client")
    assert "error" not in report, report
    assert report["origin"] == site
    first, second = report["launches"]
    seen = [[e["phase"] for e in launch] for launch in (first, second)]
    print(f"phases seen: {seen}; bundle ready in {bundled:.1f}s")
    assert seen == [BUILD_PHASES, CACHED_PHASES], report
    for ready in (first[-1], second[-1]):
        assert ready["url"].startswith(f"{member_url}/user/"), (name, ready)
        assert ready["binder_launch_host"] == member_url + "/"
        assert ready["binder_request"] == f"v2/{spec}"
        assert ready["token"] and ready["image"] and ready["binder_ref_url"]
    assert [n for n, m in stack.members.items() if m.state.built] == [name]
    assert httpx.get(first[-1]["url"]).headers["x-fedredirect-member"] == name
