"""The container deployment agrees with the product: docker-compose.yml, Dockerfile, config.

No Docker engine is needed: the compose file is checked against the Compose Specification
schema, and every command it runs is parsed by the real ``fedredirect`` argument parser.
The file is read as Docker reads it with none of its variables set (each has a default);
tests/deploy/test_compose_stack.py starts it for real.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from fedredirect.cli import build_parser
from shared.config import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_DEFAULTS = ("FEDREDIRECT_CONFIG", "FEDREDIRECT_REDIS_URL", "FEDREDIRECT_KEY_PREFIX")
# Service -> the fedredirect subcommand it runs: the same stack as `fedredirect dev`.
EXPECTED_COMMANDS = {
    "alpha": "member-sim",
    "beta": "member-sim",
    "gamma": "member-sim",
    "checker": "checker",
    "router-1": "router",
    "router-2": "router",
}


# ${NAME}, ${NAME:-default}, ${NAME-default}: compose's interpolation (no nesting used here).
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _load_compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "docker-compose.yml must be a mapping"
    return doc


def _with_defaults(value: Any) -> Any:
    """``value`` with every variable replaced by its default, as with an empty environment."""
    if isinstance(value, dict):
        return {key: _with_defaults(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_defaults(item) for item in value]
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: m.group(2) or "", value)
    return value


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = _with_defaults(COMPOSE)["services"]


def _built_from_repo(service: dict[str, Any]) -> bool:
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return context in (".", "./")


FEDREDIRECT_SERVICES = sorted(name for name, svc in SERVICES.items() if _built_from_repo(svc))


Parse = Callable[[str], argparse.Namespace]


@pytest.fixture
def parse(monkeypatch: pytest.MonkeyPatch) -> Parse:
    """Parse a service's command as the container would, ignoring this machine's env."""
    for name in ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)

    def parse(service: str) -> argparse.Namespace:
        command = SERVICES[service]["command"]
        assert isinstance(command, list), f"{service}: give `command` in list (exec) form"
        assert all(isinstance(arg, str) for arg in command), f"{service}: {command!r}"
        try:
            return build_parser().parse_args(command)
        except SystemExit as exc:
            pytest.fail(f"{service}: `fedredirect {' '.join(command)}` does not parse ({exc})")

    return parse


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        str(path),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _container_ports(service: dict[str, Any]) -> list[tuple[int | None, int]]:
    """(published, target) for each port, from the short ("[ip:]host:ctr") or long syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published = entry.get("published")
            ports.append((int(published) if published else None, int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        published = int(parts[-2]) if len(parts) >= 2 and parts[-2] else None
        ports.append((published, int(parts[-1])))
    return ports


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of each bind mount, short or long syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                mounts[entry["target"]] = entry["source"]
            continue
        source, target, *_ = str(entry).split(":")
        if source.startswith((".", "/")):
            mounts[target] = source
    return mounts


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with line continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


# --- The Compose Specification -----------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    result = _check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "version" not in COMPOSE, "the Compose Specification has no top-level `version:`"


@pytest.mark.parametrize(
    ("service", "offending"),
    [
        ({"image": "redis:7-alpine", "ports": 5}, "ports"),
        ({"image": "redis:7-alpine", "comand": ["router"]}, "comand"),
    ],
    ids=["ports-not-a-list", "unknown-service-key"],
)
def test_compose_validation_rejects_a_broken_file(
    tmp_path: Path, service: dict[str, Any], offending: str
) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump({"services": {"x": service}}), encoding="utf-8")
    result = _check_jsonschema(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema validation errors" in result.stdout
    assert offending in result.stdout


# --- Every command the stack runs ---------------------------------------------------------


def test_stack_has_the_dev_services() -> None:
    assert set(FEDREDIRECT_SERVICES) == set(EXPECTED_COMMANDS)
    assert set(SERVICES) == {*EXPECTED_COMMANDS, "redis"}


def test_every_variable_has_a_default() -> None:
    # `docker compose up --build` must work with nothing set.
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    variables = re.findall(r"\$\{[^}]*\}", text)
    assert variables, "the images and ports are configurable through variables"
    for variable in variables:
        match = _VARIABLE.fullmatch(variable)
        assert match and match.group(2), f"{variable} has no default"


def test_redis_image_is_configurable_and_serves_the_stack_network() -> None:
    assert COMPOSE["services"]["redis"]["image"] == "${REDIS_IMAGE:-redis:7-alpine}"
    command = SERVICES["redis"]["command"]
    assert command[0] == "redis-server"
    # Debian's redis-server (no entrypoint turning it off) refuses other hosts otherwise.
    assert command[command.index("--protected-mode") + 1] == "no"


@pytest.mark.parametrize("service", FEDREDIRECT_SERVICES)
def test_command_parses_as_a_fedredirect_subcommand(service: str, parse: Parse) -> None:
    # parse() fails unless the first word is a real subcommand and every option is known.
    assert parse(service).command == EXPECTED_COMMANDS.get(service)


@pytest.mark.parametrize("service", FEDREDIRECT_SERVICES)
def test_servers_listen_on_every_interface(service: str, parse: Parse) -> None:
    args = parse(service)
    if args.command in ("router", "member-sim"):
        # The defaults (127.0.0.1) would be unreachable from other containers.
        assert args.host == "0.0.0.0"


def test_members_are_named_after_their_service(parse: Parse) -> None:
    for service in FEDREDIRECT_SERVICES:
        args = parse(service)
        if args.command == "member-sim":
            assert args.name == service


def test_every_port_is_published_on_the_loopback_only() -> None:
    # Members' POST /_sim changes what they report; the members' redirect URLs are
    # 127.0.0.1 anyway, so the stack serves the host's own browser only.
    for name, service in SERVICES.items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), f"{name}: {entry}"


def test_router_ports_map_to_the_router_port(parse: Parse) -> None:
    published = set()
    routers = [s for s in FEDREDIRECT_SERVICES if parse(s).command == "router"]
    assert len(routers) == 2
    for service in routers:
        args = parse(service)
        ports = _container_ports(SERVICES[service])
        assert ports, f"{service} publishes no port"
        for host_port, target in ports:
            assert target == args.port, f"{service}: container port {target} != --port"
            published.add(host_port)
        probe = " ".join(SERVICES[service]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{args.port}/livez" in probe  # serving, not view-fresh
    assert published == {8080, 8081}


def test_checker_and_routers_share_the_compose_redis(parse: Parse) -> None:
    for service in FEDREDIRECT_SERVICES:
        args = parse(service)
        if args.command in ("checker", "router"):
            url = urlsplit(args.redis_url)
            assert url.hostname == "redis" and url.hostname in SERVICES
            assert (url.port or 6379) == 6379


def test_checker_config_is_a_mounted_repo_file(parse: Parse) -> None:
    args = parse("checker")
    assert args.config, "the checker needs --config"
    mounts = _bind_mounts(SERVICES["checker"])
    assert args.config in mounts, f"--config {args.config} is not a mounted path: {mounts}"
    source = (REPO / mounts[args.config]).resolve()
    assert source.is_relative_to(REPO) and source.is_file()
    load_config(source)


def test_depends_on_names_real_services_with_the_needed_healthcheck() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        for dep, spec in depends.items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep}'s healthcheck"
    assert "redis" in SERVICES["checker"]["depends_on"]
    for router in ("router-1", "router-2"):
        assert SERVICES[router]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


# --- The image ----------------------------------------------------------------------------


def test_dockerfile_builds_on_any_debian_python_in_a_virtualenv() -> None:
    instructions = _dockerfile_instructions()
    assert instructions[:2] == [("ARG", "BASE_IMAGE=python:3.12-slim"), ("FROM", "${BASE_IMAGE}")]
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    # A Debian base has python3 and its venv module but no `pip` command: the virtualenv
    # comes first, and every later `pip` is the virtualenv's, first on PATH.
    assert runs[0] == "python3 -m venv /opt/fedredirect"
    envs = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "PATH=/opt/fedredirect/bin:$PATH" in envs.split()


def test_dockerignore_lets_in_what_pip_install_reads() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def sent(path: str) -> bool:  # the last matching pattern wins, as in Docker
        included = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!")):
                included = negated
        return included

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    needed = ["pyproject.toml", project["project"]["readme"]]
    needed += project["tool"]["setuptools"]["packages"]
    assert [path for path in needed if not sent(path)] == []
    assert not sent(".git") and not sent(".venv") and not sent("tests")
    # fedredirect/alerts.yml links there: the image's replay applies the alerts' for:
    assert sent("deploy/prometheus/alerts.yml")


def test_dockerfile_runs_the_fedredirect_console_script() -> None:
    instructions = _dockerfile_instructions()
    entrypoints = [args for keyword, args in instructions if keyword == "ENTRYPOINT"]
    assert entrypoints, "Dockerfile has no ENTRYPOINT"
    # Exec (JSON) form, so SIGTERM from `docker stop` reaches fedredirect, not a shell.
    assert json.loads(entrypoints[-1]) == ["fedredirect"]
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    module, _, attr = scripts["fedredirect"].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


# --- The config the checker reads ---------------------------------------------------------


def test_config_members_are_the_compose_members(parse: Parse) -> None:
    args = parse("checker")
    source = REPO / _bind_mounts(SERVICES["checker"])[args.config]
    config = load_config(source)
    members = {s for s in FEDREDIRECT_SERVICES if parse(s).command == "member-sim"}
    assert set(config.members) == members
    for name, member in config.members.items():
        container_port = parse(name).port
        published = {target: host for host, target in _container_ports(SERVICES[name])}
        # A redirect sends the host's browser to `url`: the port published on the host.
        assert member.url == f"http://127.0.0.1:{published[container_port]}", name
        # The checker runs in the stack's network: it reaches the member by service name.
        assert member.health == f"http://{name}:{container_port}/health"
        assert member.versions == f"http://{name}:{container_port}/versions"
    # A router container cannot open the host's 127.0.0.1, so it must not proxy there.
    assert config.other_paths == "redirect"
    assert config.prime_name == "alpha"
    assert {n: m.weight for n, m in config.members.items()} == {
        "alpha": 50,
        "beta": 50,
        "gamma": 30,
    }
    assert config.check.period == 5
