"""Drop-in for the replaced redirector, as its operators would try it: its rendered config
file, validated by `fedredirect check-config` and served by a real checker and router."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedredirect.cli import LEGACY_CONFIG_PATH
from fedredirect.simulator import MemberSimState
from shared.config import effective_config, read_config
from tests.support.members import running_members
from tests.support.procs import checker, fedredirect, router, run_cli, status, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROD = FIXTURES / "mybinder-prod-config.json"
BADGE = "https://static.mybinder.org/badge.svg"


def test_check_config_accepts_the_rendered_production_config() -> None:
    result = run_cli("check-config", str(PROD))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {PROD}: ignored keys the redirector does not use: "
        "enabled, host, image, nodeSelector, resources"
    ]
    effective = json.loads(result.stdout)
    assert effective == effective_config(read_config(PROD).config)
    assert effective["check"]["retries"] == 4 and effective["load_balancer"] == "random"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"hosts": {"a": {"url": "https://a.example.org", "weight": "x"}}}, "hosts.a.weight"),
        ({"members": {"a": {"url": "https://a.example.org", "weight": 1}}, "image": {}}, "image"),
        ({"hosts": {}}, "no members"),
    ],
)
def test_check_config_fails_with_the_checkers_own_messages(
    tmp_path: Path, doc: Any, message: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    checked = run_cli("check-config", str(path))
    served = run_cli("checker", "--config", str(path), "--redis-url", "redis://127.0.0.1:1/0")
    assert (checked.returncode, served.returncode) == (2, 2)
    assert message in checked.stderr
    assert checked.stderr.splitlines()[1:] == served.stderr.splitlines()[1:]
    assert checked.stderr.splitlines()[0] == "fedredirect check-config: invalid configuration"
    assert checked.stdout == ""


def test_check_config_on_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = run_cli("check-config", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "cannot read the file" in result.stderr


def legacy_config(members: dict[str, str]) -> dict[str, Any]:
    """The production file's shape (deployment keys, nulls) for members on 127.0.0.1."""
    doc: dict[str, Any] = json.loads(PROD.read_text())
    doc["check"].update(period=0.3, timeout=1, failed_period=1, jitter=0)
    doc["load_balancer"] = "rendezvous"
    doc["redirects"] = {"/badge.svg": BADGE}
    doc["hosts"] = {
        name: {
            "prime": i == 0,
            "url": url,
            "weight": 50,
            "health": f"{url}/health",
            "versions": f"{url}/versions",
            "cordoned": None,
        }
        for i, (name, url) in enumerate(members.items())
    }
    doc["hosts"]["retired"] = None
    return doc


@pytest.fixture(scope="module")
def legacy_stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("dropin")
    with running_members(MemberSimState("alpha"), MemberSimState("beta")) as servers:
        members = {"alpha": servers[0].url, "beta": servers[1].url}
        config = tmp / "config.json"
        config.write_text(json.dumps(legacy_config(members)))
        with (
            checker(config, redis_url, "dropin", tmp / "checker.log"),
            router(redis_url, "dropin") as url,
        ):
            wait_for(lambda: len(status(url)["targets"]) == 2, what="both members eligible")
            yield {"router": url, "members": members, "log": tmp / "checker.log"}


def test_the_rendered_config_serves_launches(legacy_stack: dict[str, Any]) -> None:
    url = legacy_stack["router"]
    answer = httpx.get(f"{url}/build/gh/org/repo/HEAD", follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"].startswith(tuple(legacy_stack["members"].values()))
    log = legacy_stack["log"].read_text()
    assert "ignored keys the redirector does not use" in log
    assert "hosts.alpha: ignored keys set to null: cordoned" in log


def test_fixed_redirects_are_answered_by_the_router(legacy_stack: dict[str, Any]) -> None:
    answer = httpx.get(f"{legacy_stack['router']}/badge.svg", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (301, BADGE)
    assert "x-fedredirect-member" not in answer.headers
    # any other page still comes from the home member, through the proxy
    page = httpx.get(f"{legacy_stack['router']}/about", follow_redirects=False)
    assert page.headers["x-fedredirect-member"] == "alpha"


def test_checker_reads_the_replaced_redirectors_path_by_default(
    redis_url: str, key_prefix: str
) -> None:
    """With neither --config nor FEDREDIRECT_CONFIG, /etc/federation-redirect/config.json
    (an existing ConfigMap mount) is read."""
    folder = Path(LEGACY_CONFIG_PATH).parent
    if folder.exists():
        pytest.fail(f"{folder} exists on this machine; the test would overwrite it")
    if os.geteuid() != 0:
        pytest.skip(f"needs root to create {folder} (CI runs as root)")
    with running_members(MemberSimState("alpha")) as (alpha,):
        folder.mkdir()
        try:
            Path(LEGACY_CONFIG_PATH).write_text(json.dumps(legacy_config({"alpha": alpha.url})))
            env_config = os.environ.pop("FEDREDIRECT_CONFIG", None)
            try:
                with (
                    fedredirect("checker", "--redis-url", redis_url, "--key-prefix", key_prefix),
                    router(redis_url, key_prefix) as url,
                ):
                    wait_for(lambda: status(url)["targets"] == ["alpha"], what="alpha eligible")
            finally:
                if env_config is not None:
                    os.environ["FEDREDIRECT_CONFIG"] = env_config
        finally:
            shutil.rmtree(folder)


def test_checker_without_any_config_says_where_it_looked() -> None:
    if Path(LEGACY_CONFIG_PATH).exists():
        pytest.fail(f"{LEGACY_CONFIG_PATH} exists on this machine")
    result = run_cli("checker", "--redis-url", "redis://127.0.0.1:1/0")
    assert result.returncode == 2
    assert LEGACY_CONFIG_PATH in result.stderr and "--config" in result.stderr
