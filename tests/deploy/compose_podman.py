"""docker-compose.yml started for real with podman and podman-compose, on images made here.

No container registry is reachable from these machines, so the images come from Debian's
mirror: debootstrap writes a minimal bookworm with python3, python3-venv, ca-certificates and
redis-server, and ``podman import`` makes it the base of the fedredirect image (the
Dockerfile's BASE_IMAGE) and the Redis image (REDIS_IMAGE). Podman keeps everything (images,
build cache, containers, networks) in a store of its own under CACHE_DIR, so a second run
reuses the base image (tagged with a hash of what made it) and the build cache, and nothing
touches the host's own podman. docs/compose.md explains the podman settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fedredirect.dev import free_port

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
FEDERATION_CONFIG = REPO / "deploy" / "compose" / "federation.yaml"
CACHE_DIR = Path(os.environ.get("FEDREDIRECT_TEST_CACHE", "/var/cache/fedredirect-test"))
RUN_DIR = Path("/run/fedredirect-test")  # podman's per-boot state for the store above

# The base image: what debootstrap installs, and what is left out of the image (apt's
# package lists and downloaded packages, ~95 MB). Its tag is a hash of all of this.
DEBOOTSTRAP = (
    "debootstrap",
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates,redis-server",
    "bookworm",
)
MIRROR = "http://deb.debian.org/debian"
TAR_EXCLUDES = ("--exclude=./var/cache/apt/*", "--exclude=./var/lib/apt/lists/*")
BASE_REPOSITORY = "localhost/fedredirect-test-base"

# What this test needs besides root (scripts/test-tools installs them with apt): netavark
# and aardvark-dns give the stack's network its DNS, so containers find each other by name.
COMMANDS = ("podman", "debootstrap")
HELPERS = ("/usr/lib/podman/netavark", "/usr/lib/podman/aardvark-dns", "/usr/sbin/runc")

# Known settings that make rootful podman 4.3 run here: no default ulimits (podman's
# nofile of 1048576 is above this sandbox's hard limit: runc fails with "error setting
# rlimit"), runc, cgroupfs and a file event log (no systemd).
CONTAINERS_CONF = f"""\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{RUN_DIR}/libpod"

[network]
network_backend = "netavark"
network_config_dir = "{CACHE_DIR}/networks"
"""
STORAGE_CONF = f"""\
[storage]
driver = "overlay"
graphroot = "{CACHE_DIR}/storage"
runroot = "{RUN_DIR}/storage"
"""


def missing_prerequisites() -> str | None:
    """Why the stack cannot start on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (rootful podman, debootstrap)"
    for tool in [*COMMANDS, *HELPERS]:
        if shutil.which(tool) is None:
            return f"needs {tool}: scripts/test-tools installs it (as root, with apt)"
    if importlib.util.find_spec("podman_compose") is None:
        return "needs podman-compose: pip install -e '.[test]'"
    return None


def run(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; fail with its output when it fails."""
    proc = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(argv)}` exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
    return proc


def podman_env() -> dict[str, str]:
    """The environment that points podman (and podman-compose) at the test's own store."""
    conf = CACHE_DIR / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "containers.conf").write_text(CONTAINERS_CONF)
    (conf / "storage.conf").write_text(STORAGE_CONF)
    return {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "CONTAINERS_CONF": str(conf / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
    }


def podman(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    return run(["podman", *args], env=env, timeout=timeout).stdout


@contextlib.contextmanager
def exclusive(timeout: float = 900) -> Iterator[None]:
    """One stack test at a time on this machine: they share the store and the build cache."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with open(CACHE_DIR / "lock", "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{CACHE_DIR}/lock held for {timeout}s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def base_image(env: dict[str, str]) -> str:
    """The Debian base image, built by debootstrap unless an image of the same inputs exists."""
    inputs = json.dumps([DEBOOTSTRAP, MIRROR, TAR_EXCLUDES]).encode()
    tag = f"{BASE_REPOSITORY}:{hashlib.sha256(inputs).hexdigest()[:16]}"
    exists = subprocess.run(["podman", "image", "exists", tag], env=env, check=False)
    if exists.returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        run([*DEBOOTSTRAP, str(root), MIRROR], timeout=600)
        with subprocess.Popen(
            ["tar", "-C", str(root), *TAR_EXCLUDES, "-c", "."], stdout=subprocess.PIPE
        ) as tar:
            run(["podman", "import", "-", tag], env=env, stdin=tar.stdout, timeout=300)
        assert tar.returncode == 0, f"tar of the debootstrap root exited {tar.returncode}"
    # Bases made from other inputs are no longer used: keep the store from growing.
    listed = podman(env, "images", "--format", "{{.Repository}}:{{.Tag}}", BASE_REPOSITORY)
    for old in set(listed.split()) - {tag}:
        subprocess.run(["podman", "rmi", old], env=env, capture_output=True, check=False)
    return tag


@dataclass
class Stack:
    """A running docker-compose.yml project: its name, environment and published ports."""

    project: str
    env: dict[str, str]
    ports: dict[str, int]  # service -> its port published on 127.0.0.1
    members: list[str]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def member_at(self, url: str) -> str | None:
        """The member whose published URL ``url`` is on, if any."""
        return next((m for m in self.members if url.startswith(self.url(m) + "/")), None)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "podman_compose", "-p", self.project]
        return run([*argv, "-f", str(COMPOSE_FILE), *args], env=self.env, cwd=REPO, timeout=timeout)

    def containers(self) -> list[str]:
        label = f"label=io.podman.compose.project={self.project}"
        return podman(self.env, "ps", "-a", "--filter", label, "--format", "{{.Names}}").split()

    def diagnostics(self) -> str:
        """`podman ps` and each container's last log lines, for a failure message."""
        text = [podman(self.env, "ps", "-a", "--format", "{{.Names}} {{.Status}} {{.Ports}}")]
        for name in self.containers():
            logs = subprocess.run(
                ["podman", "logs", "--tail", "20", name],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
            text.append(f"--- {name}\n{logs.stdout}{logs.stderr}")
        return "\n".join(text)

    def remove(self) -> None:
        """Stop and remove every container and the network, even after a failed start."""
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.compose("down", "-t", "5", timeout=120)
        leftover = self.containers()
        if leftover:
            podman(self.env, "rm", "-f", "-t", "0", *leftover)
        subprocess.run(
            ["podman", "network", "rm", "-f", f"{self.project}_default"],
            env=self.env,
            capture_output=True,
            check=False,
        )


def _one_service_per_image() -> list[str]:
    """A service of each image the compose file builds: the fedredirect services share one
    image, and podman-compose would otherwise build it once for each, all at once."""
    services = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    first: dict[str, str] = {}
    for name, service in services.items():
        if "build" in service:
            first.setdefault(service.get("image", name), name)
    return sorted(first.values())


def _federation_config(path: Path, ports: dict[str, int]) -> list[str]:
    """deploy/compose/federation.yaml with each member's URL on the test's own port."""
    doc = yaml.safe_load(FEDERATION_CONFIG.read_text(encoding="utf-8"))
    for name, member in doc["members"].items():
        assert member["url"].startswith("http://127.0.0.1:"), member["url"]
        member["url"] = f"http://127.0.0.1:{ports[name]}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    path.chmod(0o644)  # read by the checker's unprivileged user
    return list(doc["members"])


@contextlib.contextmanager
def compose_stack(workdir: Path) -> Iterator[Stack]:
    """Build the images and start docker-compose.yml under a project name and ports of its
    own; remove it all afterwards, whatever happened."""
    with exclusive():
        env = podman_env()
        # Leftovers of a run that was killed: the store and its networks are ours alone.
        stale = podman(env, "ps", "-a", "-q").split()
        if stale:
            podman(env, "rm", "-f", "-t", "0", *stale)
        podman(env, "network", "prune", "-f")

        base = base_image(env)
        members = yaml.safe_load(FEDERATION_CONFIG.read_text(encoding="utf-8"))["members"]
        ports = {service: free_port() for service in ["router-1", "router-2", *members]}
        config = workdir / "federation.yaml"
        stack = Stack(
            project=f"fedredirect-test-{os.getpid()}",
            env={
                **env,
                "REDIS_IMAGE": base,
                "ROUTER1_PORT": str(ports["router-1"]),
                "ROUTER2_PORT": str(ports["router-2"]),
                **{f"{name.upper()}_PORT": str(ports[name]) for name in members},
                "FEDERATION_CONFIG": str(config),
            },
            ports=ports,
            members=_federation_config(config, ports),
        )
        # pip in the image build reaches PyPI through the host's network, trusting the
        # host's certificate authorities.
        build_args = "--network host"
        if Path("/etc/ssl/certs").is_dir():
            build_args += " --volume /etc/ssl/certs:/etc/ssl/certs:ro"
        try:
            stack.compose(
                f"--podman-build-args={build_args}",
                "build",
                "--build-arg",
                f"BASE_IMAGE={base}",
                *_one_service_per_image(),
                timeout=900,
            )
            # Images of earlier builds: the current image's layers keep the build cache.
            podman(env, "image", "prune", "-f")
            stack.compose("up", "-d")
            yield stack
        finally:
            stack.remove()
