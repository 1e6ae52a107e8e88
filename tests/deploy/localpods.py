"""Run the pods of a rendered Helm release as real processes on this machine, as a kubelet would.

Each pod gets a loopback address of its own (127.X.Y.Z, a /24 picked at random per run),
so every container listens on the very port its manifest names, as in a cluster. What a
cluster supplies and this machine does not is mapped, and only that:

- DNS: every StatefulSet pod's name (``POD.SERVICE.NAMESPACE.svc.cluster.local``) becomes
  that pod's address, wherever it appears in an environment value or an argument;
- inside a pod, the wildcard ``0.0.0.0`` and ``127.0.0.1``/``localhost`` become the pod's
  own address (a pod has its own network namespace; here they share the host's);
- volumes: each ``mountPath`` becomes a directory of the pod's; a ConfigMap volume holds
  the rendered ConfigMap's files, an emptyDir is empty, and a StatefulSet's claim
  (``volumeClaimTemplates``) is a directory kept across the pod's restarts, as a
  PersistentVolumeClaim is, until :meth:`LocalCluster.lose_claims`;
- environment: ``fieldRef`` (pod name, namespace, IP) and ``secretKeyRef`` (from the
  secrets the test gives) are resolved and ``$(VAR)`` is expanded in values, commands and
  arguments by the kubelet's rules; the container gets that environment and nothing else
  but PATH (this virtualenv's bin, for the image's ``fedredirect``, then the system's, for
  ``sh``, ``redis-server``, ``redis-cli``) and the fedredirect image's own ENV.

The command and arguments themselves are run unchanged otherwise, so a manifest naming a
flag that does not exist, a wrong path or a broken start-up script fails here.
"""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fedredirect.dev import child

# ENV of the fedredirect image (Dockerfile); PATH is set separately.
IMAGE_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Manifest = dict[str, Any]


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` is a ``$``,
    anything else is left as it is."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(replace, text)


def _pick_subnet() -> str:
    """A random 127.X.Y.0/24 on which nothing listens at this run's ports, most likely."""
    return f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"


@dataclass
class Pod:
    """One planned pod: its name, address, DNS name (StatefulSets) and working directory."""

    name: str
    ip: str
    spec: Manifest
    workload: Manifest
    root: Path
    dns: str | None = None
    volumes: dict[str, Path] = field(default_factory=dict)

    def container(self, name: str | None = None) -> Manifest:
        containers: list[Manifest] = self.spec["containers"]
        if name is None:
            (only,) = containers
            return only
        return next(c for c in containers if c["name"] == name)

    def port(self, container: Manifest, port: int | str) -> int:
        """A container port by number or by name."""
        if isinstance(port, int):
            return port
        return int(next(p["containerPort"] for p in container["ports"] if p["name"] == port))

    def url(self, port: int | str, path: str = "", container: str | None = None) -> str:
        return f"http://{self.ip}:{self.port(self.container(container), port)}{path}"


class LocalCluster:
    """Plans and runs the pods of a rendered release; every process ends with ``stack``."""

    def __init__(
        self,
        manifests: list[Manifest],
        workdir: Path,
        stack: contextlib.ExitStack,
        secrets: dict[tuple[str, str], str] | None = None,
        namespace: str = "default",
    ) -> None:
        self.manifests = manifests
        self.workdir = workdir
        self.stack = stack
        self.secrets = secrets or {}
        self.namespace = namespace
        self.subnet = _pick_subnet()
        self._next_host = 10
        self.pods: dict[str, Pod] = {}
        self.hosts: dict[str, str] = {}  # cluster DNS name -> pod address

    def get(self, kind: str, name: str) -> Manifest:
        return next(
            m for m in self.manifests if m["kind"] == kind and m["metadata"]["name"] == name
        )

    def configmap(self, name: str) -> dict[str, str]:
        data: dict[str, str] = self.get("ConfigMap", name)["data"]
        return data

    def plan(self, kind: str, name: str) -> list[Pod]:
        """The pods of a Deployment or StatefulSet, as many as it asks for, with addresses
        and (StatefulSets) DNS names, so every pod can name every other before any starts."""
        workload = self.get(kind, name)
        pods = []
        for ordinal in range(int(workload["spec"].get("replicas", 1))):
            pod_name = f"{name}-{ordinal}"
            ip = f"{self.subnet}.{self._next_host}"
            self._next_host += 1
            dns = None
            if kind == "StatefulSet":
                service = workload["spec"]["serviceName"]
                dns = f"{pod_name}.{service}.{self.namespace}.svc.cluster.local"
                self.hosts[dns] = ip
            pod = Pod(pod_name, ip, workload["spec"]["template"]["spec"], workload, Path())
            self.pods[pod_name] = pod
            pods.append(pod)
        return pods

    # -- what a kubelet does -----------------------------------------------------------

    def _mount(self, pod: Pod, fresh: bool) -> None:
        """Make the pod's volumes: a new pod gets new emptyDirs, a restarted container not."""
        if pod.volumes and not fresh:
            return
        pod.root = Path(tempfile.mkdtemp(prefix=f"{pod.name}-", dir=self.workdir))
        pod.volumes = {}
        for volume in pod.spec.get("volumes", []):
            path = pod.root / "volumes" / volume["name"]
            path.mkdir(parents=True)
            if "configMap" in volume:
                for key, text in self.configmap(volume["configMap"]["name"]).items():
                    (path / key).write_text(text, encoding="utf-8")
            else:
                assert "emptyDir" in volume, f"{pod.name}: volume kind not emulated: {volume}"
            pod.volumes[volume["name"]] = path
        for claim in pod.workload["spec"].get("volumeClaimTemplates", []):
            path = self.claim_path(pod, claim["metadata"]["name"])
            path.mkdir(parents=True, exist_ok=True)
            pod.volumes[claim["metadata"]["name"]] = path

    def claim_path(self, pod: Pod, claim: str) -> Path:
        """The directory standing for the pod's claim (StatefulSets name it CLAIM-POD)."""
        return self.workdir / "claims" / f"{claim}-{pod.name}"

    def lose_claims(self, pod: Pod) -> None:
        """The pod's persistent volumes are gone (a node lost with its local disk): its next
        start gets empty ones."""
        for claim in pod.workload["spec"].get("volumeClaimTemplates", []):
            shutil.rmtree(self.claim_path(pod, claim["metadata"]["name"]), ignore_errors=True)

    def _mounts(self, pod: Pod, container: Manifest) -> list[tuple[str, Path]]:
        mounts = [(m["mountPath"], pod.volumes[m["name"]]) for m in container["volumeMounts"]]
        return sorted(mounts, key=lambda m: -len(m[0]))

    def localize(self, pod: Pod, container: Manifest, text: str) -> str:
        """Map the cluster's names, this pod's own addresses and mount paths to this
        machine, in one pass (so nothing already mapped is mapped again)."""
        table = {**self.hosts, **dict.fromkeys(("0.0.0.0", "127.0.0.1", "localhost"), pod.ip)}
        table |= {mount: str(local) for mount, local in self._mounts(pod, container)}
        names = "|".join(re.escape(name) for name in sorted(table, key=len, reverse=True))
        return re.sub(rf"(?<![\w.-])({names})(?![\w.-])", lambda m: table[m[1]], text)

    def environment(self, pod: Pod, container: Manifest) -> tuple[dict[str, str], dict[str, str]]:
        """The container's environment, resolved and expanded as the kubelet does, then
        mapped; a Secret's value (given in this machine's terms) is not mapped, so it stands
        as a token in the result until :meth:`command` puts it in: (env, {token: value})."""
        env: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for var in container.get("env", []):
            if "value" in var:
                value = expand(str(var["value"]), env)
            else:
                source = var["valueFrom"]
                if "fieldRef" in source:
                    value = {
                        "metadata.name": pod.name,
                        "metadata.namespace": self.namespace,
                        "status.podIP": pod.ip,
                    }[source["fieldRef"]["fieldPath"]]
                elif "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    value = f"\0secret{len(secrets)}\0"
                    secrets[value] = self.secrets[(ref["name"], ref["key"])]
                else:
                    raise AssertionError(f"{pod.name}: env source not emulated: {source}")
            env[var["name"]] = value
        return {k: self.localize(pod, container, v) for k, v in env.items()}, secrets

    def command(self, pod: Pod, container: Manifest, argv: list[str]) -> list[str]:
        """``env -i`` so the process sees exactly the container's environment; it runs in
        the pod's own directory."""
        env, secrets = self.environment(pod, container)
        bin_dir = str(Path(sys.executable).parent)
        full_env = {**IMAGE_ENV, "PATH": f"{bin_dir}:{SYSTEM_PATH}", **env}
        args = [f"{k}={v}" for k, v in full_env.items()]
        args += [self.localize(pod, container, expand(str(a), env)) for a in argv]
        for token, value in secrets.items():
            args = [a.replace(token, value) for a in args]
        return ["env", "-i", "-C", str(pod.root), *args]

    @contextlib.contextmanager
    def run(
        self, pod: Pod, container_name: str | None = None, fresh: bool = True
    ) -> Iterator[subprocess.Popen[bytes]]:
        """Start a container's command + args; stop it (SIGTERM, then SIGKILL) on exit."""
        self._mount(pod, fresh)
        container = pod.container(container_name)
        for port in container.get("ports", []):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
                try:
                    probe.bind((pod.ip, port["containerPort"]))
                except OSError as exc:
                    raise AssertionError(
                        f"{pod.name}: cannot listen on {pod.ip}:{port['containerPort']} "
                        f"(does something listen on 0.0.0.0 at that port?): {exc}"
                    ) from None
        argv = [*container.get("command", []), *container.get("args", [])]
        assert argv, f"{pod.name}: the manifest must name the command (image defaults unseen)"
        log = pod.root / f"{container['name']}.log"
        with child(self.command(pod, container, argv), log=log) as proc:
            yield proc

    def start(self, pod: Pod, container_name: str | None = None) -> subprocess.Popen[bytes]:
        """Start a container for the rest of the test (it ends with the cluster's stack)."""
        return self.stack.enter_context(self.run(pod, container_name))

    def log(self, pod: Pod, container_name: str | None = None) -> str:
        container = pod.container(container_name)
        path = pod.root / f"{container['name']}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def probe(self, pod: Pod, kind: str, container_name: str | None = None) -> bool:
        """Run a probe of the manifest once (httpGet, exec or tcpSocket): did it pass?"""
        container = pod.container(container_name)
        probe = container[kind]
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://{pod.ip}:{pod.port(container, get['port'])}{get['path']}"
            try:
                status = httpx.get(url, timeout=timeout).status_code
            except httpx.HTTPError:
                return False
            return 200 <= status < 400
        if "exec" in probe:
            cmd = self.command(pod, container, probe["exec"]["command"])
            try:
                done = subprocess.run(cmd, capture_output=True, timeout=timeout + 2, check=False)
            except subprocess.TimeoutExpired:
                return False
            return done.returncode == 0
        if "tcpSocket" in probe:
            port = pod.port(container, probe["tcpSocket"]["port"])
            with contextlib.suppress(OSError), socket.create_connection((pod.ip, port), timeout):
                return True
            return False
        raise AssertionError(f"{pod.name}: probe kind not emulated: {probe}")

    def exec(
        self, pod: Pod, *argv: str, container_name: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl exec POD -- ARGV``: a command in the container's environment."""
        container = pod.container(container_name)
        self._mount(pod, fresh=False)
        cmd = self.command(pod, container, list(argv))
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
