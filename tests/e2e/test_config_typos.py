"""A misspelt config key, as an operator meets it: every command that reads the file exits 2
naming the key and the one meant, before it starts anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.support.procs import run_cli

GESIS = {"url": "https://gesis.example.org", "weight": 60}
WIEGHT = {"url": "https://gesis.example.org", "wieght": 60}

#: (file name, its document, the lines it must be refused with) in both formats.
TYPOS = [
    pytest.param(
        "prod.json",
        {"chek": {"period": 1}, "hosts": {"gesis": GESIS}},
        ["key 'chek': unknown key; did you mean 'check'?"],
        id="legacy-chek",
    ),
    pytest.param(
        "prod.json",
        {"hosts": {"gesis": WIEGHT}},
        [
            "key 'hosts.gesis.weight': Field required",
            "key 'hosts.gesis.wieght': unknown key; did you mean 'weight'?",
        ],
        id="legacy-wieght",
    ),
    pytest.param(
        "federation.yaml",
        {"chek": {"period": 1}, "members": {"gesis": GESIS}},
        ["key 'chek': unknown key; did you mean 'check'?"],
        id="native-chek",
    ),
    pytest.param(
        "federation.yaml",
        {"members": {"gesis": WIEGHT}},
        [
            "key 'members.gesis.weight': Field required",
            "key 'members.gesis.wieght': unknown key; did you mean 'weight'?",
        ],
        id="native-wieght",
    ),
]


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc) if path.suffix == ".json" else yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(("name", "doc", "lines"), TYPOS)
def test_the_checker_exits_2_before_it_publishes_anything(
    tmp_path: Path,
    redis_url: str,
    key_prefix: str,
    name: str,
    doc: dict[str, Any],
    lines: list[str],
) -> None:
    path = write(tmp_path / name, doc)
    done = run_cli(
        "checker", "--config", str(path), "--redis-url", redis_url, "--key-prefix", key_prefix
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "fedredirect checker: invalid configuration",
        *(f"{path}: {line}" for line in lines),
    ]
    with redis.Redis.from_url(redis_url) as client:
        assert client.keys(f"{key_prefix}*") == []


@pytest.mark.parametrize(("name", "doc", "lines"), TYPOS)
def test_check_config_exits_2_with_the_same_message(
    tmp_path: Path, name: str, doc: dict[str, Any], lines: list[str]
) -> None:
    path = write(tmp_path / name, doc)
    done = run_cli("check-config", str(path))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "fedredirect check-config: invalid configuration",
        *(f"{path}: {line}" for line in lines),
    ]
    assert done.stdout == ""


@pytest.mark.parametrize(("name", "doc", "lines"), TYPOS)
def test_replay_under_a_misspelt_config_exits_2(
    tmp_path: Path, name: str, doc: dict[str, Any], lines: list[str]
) -> None:
    path = write(tmp_path / name, doc)
    history = tmp_path / "history.jsonl"
    history.write_text("")
    done = run_cli("replay", "--from", str(history), "--config", str(path))
    assert done.returncode == 2
    first, *rest = (f"{path}: {line}" for line in lines)
    assert done.stderr.splitlines() == [f"fedredirect replay: {first}", *rest]
    assert done.stdout == ""
