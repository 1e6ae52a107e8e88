"""The Helm chart (deploy/helm/fedredirect): it lints, renders valid Kubernetes objects, and
what it renders really runs.

helm v4 and helm v3 both lint and render every value set, to the same manifests, so the
chart needs nothing v4 adds. The manifests validate against the Kubernetes schemas of the
oldest version the chart supports and of the newest one `kubernetes-validate` knows. The
Prometheus Operator's kinds (ServiceMonitor, PrometheusRule) are custom resources that
those schemas do not include: they are checked against what they must point at instead
(the rendered Services and ports, deploy/prometheus/alerts.yml).

Then the pods of a rendered release are run on loopback addresses (127.X.Y.Z, one a pod)
by tests/deploy/localpods.py, command, arguments, environment and probes as rendered,
against a real redis-server or against the chart's own redis and sentinel pods, checking
simulated members.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from fedredirect.cli import build_parser
from fedredirect.simulator import MemberServer, MemberSimState
from shared.config import load_config, parse_config
from shared.store import parse_sentinel_url
from tests.deploy.chart import (
    ALERTS,
    CHART,
    EXISTING_SECRET,
    HELMS,
    LEGACY_CONFIG,
    MONITORING,
    MYBINDER_PROD_CONFIG,
    NAMESPACE,
    NATIVE_CONFIG,
    REPO,
    VARIANTS,
    Manifest,
    find,
    helm_with_values,
    name,
    one,
    pod_specs,
    render,
    render_variant,
    template_text,
)
from tests.deploy.localpods import LocalCluster, Pod
from tests.support.members import running_members
from tests.support.procs import run_cli, wait_for

# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest known.
MIN_KUBE = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["kubeVersion"]
KUBE_VERSIONS = (
    MIN_KUBE.removeprefix(">=").removesuffix("-0"),
    kubernetes_validate.latest_version(),
)
CUSTOM_RESOURCE_GROUP = "monitoring.coreos.com/"
IMAGE = {"repository": "registry.example.org/binder/fedredirect", "tag": "2025.1.0"}
FEDREDIRECT_CONTAINERS = ("router", "checker")


def containers(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for workload, spec in pod_specs(manifests):
        for container in spec["containers"]:
            yield workload, container


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {var["name"]: var for var in container.get("env", [])}


# --- helm lint and template --------------------------------------------------------------


@pytest.mark.parametrize("binary", HELMS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_passes_strictly(variant: str, binary: str) -> None:
    done = helm_with_values("lint", VARIANTS[variant], "--strict", binary=binary)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_v3_renders_what_helm_v4_renders(variant: str) -> None:
    assert render_variant(variant, binary="helm3") == render_variant(variant)


def test_resources_by_kind() -> None:
    def kinds(variant: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in render_variant(variant):
            counts[m["kind"]] = counts.get(m["kind"], 0) + 1
        return counts

    base = {"ConfigMap": 1, "Deployment": 2, "Service": 2, "PodDisruptionBudget": 2}
    bundled = {
        "ConfigMap": 2,  # + the redis and sentinel start-up scripts
        "Deployment": 2,
        "StatefulSet": 2,  # redis x3, sentinel x3
        "Service": 5,  # + redis and sentinel headless, sentinel
        "PodDisruptionBudget": 4,
        "NetworkPolicy": 1,
    }
    extras = {
        "Ingress": 1,
        "HorizontalPodAutoscaler": 1,
        "ServiceMonitor": 2,
        "PrometheusRule": 1,
    }
    assert kinds("default") == bundled
    assert kinds("existing-secret") == base
    assert kinds("all-options-sentinel") == {**bundled, **extras}
    assert kinds("all-options-existing-secret") == {**base, **extras}
    # the router's and checker's PodDisruptionBudgets and the NetworkPolicy switched off
    switched_off = {k: n for k, n in bundled.items() if k != "NetworkPolicy"}
    assert kinds("every-default-changed") == {**switched_off, "PodDisruptionBudget": 2}


def test_bundled_redis_persists_on_a_claim_unless_switched_off() -> None:
    """By default each redis pod keeps its append-only file on a claim of its own (size and
    class as given); switched off, an emptyDir and no append-only file."""

    def redis_set(variant: str) -> tuple[Manifest, Manifest]:
        statefulset = one(render_variant(variant), "StatefulSet", name("redis"))
        (container,) = statefulset["spec"]["template"]["spec"]["containers"]
        return statefulset, container

    statefulset, container = redis_set("default")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default
    volumes = statefulset["spec"]["template"]["spec"]["volumes"]
    assert "data" not in [v["name"] for v in volumes]
    assert env_of(container)["APPENDONLY"]["value"] == "yes"

    statefulset, _ = redis_set("all-options-sentinel")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "4Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"

    off = one(render_variant("every-default-changed"), "StatefulSet", "binder-redirect-redis")
    assert "volumeClaimTemplates" not in off["spec"]
    (data,) = [v for v in off["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"]
    assert "emptyDir" in data
    (container,) = off["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["APPENDONLY"]["value"] == "no"


def test_contradictory_values_are_refused_with_the_fix() -> None:
    cases = [
        ({"redis": {"existingSecret": "r"}}, "redis.sentinel.enabled=false"),
        ({"redis": {"sentinel": {"enabled": False}}}, "no Redis configured"),
        ({"config": {"check": {"period": 5}}}, "neither `hosts`"),
    ]
    for values, message in cases:
        done = helm_with_values("template", values, "fr")
        assert done.returncode != 0, values
        assert message in done.stderr, done.stderr


def test_names_fit_kubernetes_limits_with_the_longest_release_name() -> None:
    release = "r" * 53  # the longest release name helm accepts
    manifests = render({}, release=release)
    for m in manifests:
        assert len(m["metadata"]["name"]) <= 63, m["metadata"]["name"]
        if m["kind"] == "StatefulSet":
            # pod names carry a controller-revision-hash label: NAME-<10 characters>
            assert len(m["metadata"]["name"]) + 11 <= 63
            host = f"{m['metadata']['name']}-2.{m['spec']['serviceName']}.{NAMESPACE}"
            assert all(len(label) <= 63 for label in host.split("."))
    assert len(manifests) == len(render_variant("default"))


def test_name_overrides_name_every_object() -> None:
    values = VARIANTS["every-default-changed"]
    for m in render_variant("every-default-changed"):
        assert m["metadata"]["name"].startswith(values["fullnameOverride"] + "-"), m
        assert m["metadata"]["labels"]["app.kubernetes.io/name"] == values["nameOverride"]


# --- schema validation -------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_manifests_validate_against_the_kubernetes_schemas(variant: str) -> None:
    """Strict: an unknown field fails too. Custom resources: see the module docstring."""
    manifests = render_variant(variant)
    core = [m for m in manifests if not m["apiVersion"].startswith(CUSTOM_RESOURCE_GROUP)]
    assert len(core) >= 7
    for version in KUBE_VERSIONS:
        for m in core:
            kubernetes_validate.validate(m, version, strict=True)


def test_schema_validation_rejects_a_broken_manifest() -> None:
    """The control: the validator used above does fail on the mistakes it is there for."""
    router = one(render_variant("default"), "Deployment", name("router"))
    misspelt = json.loads(json.dumps(router))
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    wrong_type = json.loads(json.dumps(router))
    wrong_type["spec"]["replicas"] = "two"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBE_VERSIONS[-1], strict=True)


# --- monitoring --------------------------------------------------------------------------


def test_prometheus_rule_is_deploy_prometheus_alerts_yml() -> None:
    link = CHART / "files" / "alerts.yml"
    assert link.is_symlink() and link.resolve() == ALERTS.resolve(), "one source of truth"
    rule = one(render_variant("all-options-sentinel"), "PrometheusRule", "fr-fedredirect")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prom"
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert len(rules) >= 10 and all(r["alert"] and r["expr"] for r in rules)


@pytest.mark.parametrize("variant", ["all-options-sentinel", "all-options-existing-secret"])
def test_service_monitors_scrape_rendered_ports_as_the_jobs_alerts_expect(variant: str) -> None:
    manifests = render_variant(variant)
    alerts = ALERTS.read_text(encoding="utf-8")
    for component in FEDREDIRECT_CONTAINERS:
        monitor = one(manifests, "ServiceMonitor", name(component))
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "prom"
        selector = monitor["spec"]["selector"]["matchLabels"]
        (service,) = [
            s
            for s in find(manifests, "Service")
            if selector.items() <= s["metadata"]["labels"].items()
        ]
        (endpoint,) = monitor["spec"]["endpoints"]
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        deployment = one(manifests, "Deployment", name(component))
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert port["targetPort"] in [p["name"] for p in container["ports"]]
        assert service["spec"]["selector"].items() <= (
            deployment["spec"]["template"]["metadata"]["labels"].items()
        )
        assert endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"
        (relabel,) = endpoint["relabelings"]
        job = f"fedredirect-{component}"
        assert relabel == {"action": "replace", "targetLabel": "job", "replacement": job}
        assert f'job="{job}"' in alerts


# --- what every pod must be --------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_runs_locked_down_with_resources(variant: str) -> None:
    values = {**VARIANTS[variant], "image": IMAGE}
    manifests = render(values)
    for workload, spec in pod_specs(manifests):
        assert spec["automountServiceAccountToken"] is False, workload
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts: set[str] = set()
        for container in spec["containers"]:
            where = f"{workload}/{container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, where
            mounts |= {m["mountPath"] for m in container["volumeMounts"]}
            if container["name"] in FEDREDIRECT_CONTAINERS:
                assert container["image"] == f"{IMAGE['repository']}:{IMAGE['tag']}"
                assert spec["securityContext"]["runAsUser"] == 10001  # the image's user
        # The writable directories, with a read-only root filesystem:
        assert "/tmp" in mounts or "/data" in mounts, workload


def test_placement_values_reach_the_pods_and_an_affinity_replaces_the_default() -> None:
    """nodeSelector, tolerations and affinity reach each component's pods as given (redis
    and sentinel pods share redis.sentinel's); a given affinity replaces the default soft
    anti-affinity instead of merging with it."""
    values = VARIANTS["all-options-sentinel"]
    sentinel = values["redis"]["sentinel"]
    given = {
        name("router"): values["router"],
        name("checker"): values["checker"],
        name("redis"): sentinel,
        name("sentinel"): sentinel,
    }
    specs = dict(pod_specs(render_variant("all-options-sentinel")))
    assert set(specs) == set(given)
    for workload, spec in specs.items():
        for key in ("nodeSelector", "tolerations", "affinity"):
            assert spec[key] == given[workload][key], (workload, key)
    for workload, spec in pod_specs(render_variant("default")):
        assert list(spec["affinity"]) == ["podAntiAffinity"], workload


def test_default_image_tag_is_the_app_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    for _, container in containers(render_variant("existing-secret")):
        assert container["image"] == f"fedredirect:{chart['appVersion']}"


def test_redis_urls_and_passwords_reach_pods_only_through_secrets() -> None:
    text = template_text(VARIANTS["existing-secret"])
    assert "redis://" not in text and "rediss://" not in text
    for _, container in containers(render_variant("existing-secret")):
        url = env_of(container)["FEDREDIRECT_REDIS_URL"]
        assert url["valueFrom"]["secretKeyRef"] == {"name": "fedredirect-redis", "key": "url"}

    for _, container in containers(render_variant("all-options-sentinel")):
        env = env_of(container)
        secret = {"name": "fedredirect-redis-auth", "key": "password"}
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret
        if container["name"] in FEDREDIRECT_CONTAINERS:
            url = env["FEDREDIRECT_REDIS_URL"]["value"]
            assert url.startswith("redis+sentinel://:$(REDIS_PASSWORD)@")
            assert list(env).index("REDIS_PASSWORD") < list(env).index("FEDREDIRECT_REDIS_URL")

    for _, container in containers(render_variant("default")):
        if container["name"] in FEDREDIRECT_CONTAINERS:
            url = env_of(container)["FEDREDIRECT_REDIS_URL"]["value"]
            sentinels, master, db, password = parse_sentinel_url(url)
            assert [port for _, port in sentinels] == [26379] * 3
            assert (master, db, password) == ("fedredirect", 0, None)
            assert env_of(container)["FEDREDIRECT_KEY_PREFIX"]["value"] == "fedredirect"


def test_router_rollout_never_drops_below_the_replica_count() -> None:
    manifests = render_variant("default")
    router = one(manifests, "Deployment", name("router"))
    assert router["spec"]["replicas"] == 2
    assert router["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    (container,) = router["spec"]["template"]["spec"]["containers"]
    # Readiness on /livez, not /health: a Redis outage must not empty the Service.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/livez", "port": "http"}, probe
    pdb = one(manifests, "PodDisruptionBudget", name("router"))
    assert pdb["spec"]["minAvailable"] == 1
    labels = router["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    checker = one(manifests, "Deployment", name("checker"))
    assert checker["spec"]["replicas"] == 2  # a writer and a hot standby
    assert checker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    scaled = render_variant("all-options-existing-secret")
    assert "replicas" not in one(scaled, "Deployment", name("router"))["spec"]
    hpa = one(scaled, "HorizontalPodAutoscaler", name("router"))
    assert hpa["spec"]["scaleTargetRef"]["name"] == name("router")
    assert hpa["spec"]["minReplicas"] == 3
    ingress = one(scaled, "Ingress", name("router"))
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": name("router"), "port": {"name": "http"}}


# --- the federation config ---------------------------------------------------------------


def rendered_config(manifests: list[Manifest], tmp_path: Path) -> Path:
    """The file the checker reads: its --config argument, found in the mounted ConfigMap."""
    checker = one(manifests, "Deployment", name("checker"))
    spec = checker["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    path = container["args"][container["args"].index("--config") + 1]
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    data = one(manifests, "ConfigMap", volume["configMap"]["name"])["data"]
    local = tmp_path / Path(path).name
    local.write_text(data[path.removeprefix(mount["mountPath"] + "/")], encoding="utf-8")
    return local


@pytest.mark.parametrize(
    ("variant", "given"),
    [("all-options-sentinel", LEGACY_CONFIG), ("existing-secret", NATIVE_CONFIG)],
)
def test_the_checker_reads_the_config_as_given(
    variant: str, given: dict[str, Any], tmp_path: Path
) -> None:
    loaded = load_config(rendered_config(render_variant(variant), tmp_path))
    assert loaded == parse_config(json.loads(json.dumps(given)))
    assert set(loaded.members) == set(given.get("hosts", given.get("members", {})))


def test_mybinder_values_block_is_read_as_is(tmp_path: Path) -> None:
    """mybinder.org-deploy's block, deployment keys included, passes the checker's own
    check (`fedredirect check-config`), which names the keys it ignores."""
    config = rendered_config(render_variant("mybinder-prod"), tmp_path)
    done = run_cli("check-config", str(config))
    assert done.returncode == 0, done.stderr
    assert "ignored keys" in done.stderr and "nodeSelector" in done.stderr
    effective = json.loads(done.stdout)
    # helm writes map keys sorted; nothing depends on member order (ties go by name)
    assert set(effective["members"]) == set(MYBINDER_PROD_CONFIG["hosts"])
    assert effective["load_balancer"] == "random"


def test_a_config_change_restarts_the_checkers() -> None:
    def checksum(values: dict[str, Any]) -> str:
        checker = one(render(values), "Deployment", name("checker"))
        annotation: str = checker["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return annotation

    first = checksum({})
    assert checksum({}) == first
    assert checksum({"config": LEGACY_CONFIG}) != first
    assert re.fullmatch("[0-9a-f]{64}", first)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_fedredirect_command_names_real_flags(variant: str) -> None:
    parser = build_parser()
    seen = set()
    for workload, container in containers(render_variant(variant)):
        if container["command"] == ["fedredirect"]:
            args = parser.parse_args(container["args"])  # exits on an unknown flag
            seen.add(args.command)
            if args.command == "checker":
                assert args.metrics_port is not None, workload
    assert seen == {"router", "checker"}


# --- the rendered pods, run ----------------------------------------------------------------


def native_config(members: dict[str, MemberServer]) -> dict[str, Any]:
    return {
        "check": {"period": 0.5, "timeout": 1.0, "jitter": 0.0, "failed_period": 1.0},
        "members": {
            member: {"url": server.url, "weight": 50, "prime": member == "alpha"}
            for member, server in members.items()
        },
    }


def legacy_config(members: dict[str, MemberServer]) -> dict[str, Any]:
    """mybinder.org-deploy's block (deployment keys and all) with the simulated members as
    its hosts."""
    return {
        **MYBINDER_PROD_CONFIG,
        "check": {"period": 0.5, "jitter": 0.0, "retries": 1, "timeout": 1, "failed_period": 1},
        "load_balancer": "rendezvous",
        "hosts": {
            member: {
                "prime": member == "alpha",
                "url": server.url,
                "weight": 50,
                "health": f"{server.url}/health",
                "versions": f"{server.url}/versions",
            }
            for member, server in members.items()
        },
    }


def status(cluster: LocalCluster, pod: Pod) -> dict[str, Any] | None:
    """``kubectl exec ROUTER -- fedredirect status --json``: the operator's view."""
    done = cluster.exec(pod, "fedredirect", "status", "--json")
    if done.returncode != 0:
        return None
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def scrape_targets(cluster: LocalCluster, pods: dict[str, list[Pod]]) -> list[str]:
    """The URLs Prometheus would scrape: ServiceMonitor -> Service port -> container port."""
    urls = []
    for monitor in find(cluster.manifests, "ServiceMonitor"):
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        service = one(cluster.manifests, "Service", name(component))
        (endpoint,) = monitor["spec"]["endpoints"]
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        urls += [pod.url(port["targetPort"], endpoint["path"]) for pod in pods[component]]
    return urls


def check_serving(
    cluster: LocalCluster, checkers: list[Pod], routers: list[Pod], members: dict[str, Any]
) -> None:
    """Probes pass, the checkers publish, routers redirect, metrics answer where scraped."""
    for pod in routers:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            wait_for(lambda p=pod, k=probe: cluster.probe(p, k), 30, f"{pod.name} {probe}")
    for pod in checkers:
        wait_for(lambda p=pod: cluster.probe(p, "livenessProbe"), 30, f"{pod.name} liveness")

    def all_eligible() -> bool:
        doc = status(cluster, routers[0])
        return doc is not None and all(doc["members"][m]["state"] == "eligible" for m in members)

    wait_for(all_eligible, 30, "the checkers publish every member as eligible")
    urls = {server.url for server in members.values()}
    for pod in routers:
        wait_for(lambda p=pod: httpx.get(p.url("http", "/health")).status_code == 200, 20)
        response = httpx.get(pod.url("http", "/build/gh/org/repo/HEAD"))
        assert response.status_code == 307, response.text
        assert response.headers["location"].rsplit("/build/", 1)[0] in urls

    targets = scrape_targets(cluster, {"router": routers, "checker": checkers})
    assert len(targets) == len(routers) + len(checkers)
    for url in targets:
        body = httpx.get(url, timeout=2).text
        assert "fedredirect_" in body, url

    def one_writer() -> bool:
        writers = [
            pod
            for pod in checkers
            if re.search(
                r"^fedredirect_eligible_members ",
                httpx.get(pod.url("metrics", "/metrics")).text,
                re.M,
            )
        ]
        return len(writers) == 1

    wait_for(one_writer, 20, "exactly one checker writing (the other a hot standby)")


def assert_alive(cluster: LocalCluster, procs: dict[str, Any]) -> None:
    for pod_name, proc in procs.items():
        pod = cluster.pods[pod_name]
        assert proc.poll() is None, f"{pod_name} exited:\n{cluster.log(pod)}"


def test_rendered_pods_serve_with_an_existing_redis(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """2 checkers and 2 routers as rendered, the Redis URL from the Secret they reference."""
    with (
        running_members(MemberSimState("alpha"), MemberSimState("beta")) as (alpha, beta),
        contextlib.ExitStack() as stack,
    ):
        members = {"alpha": alpha, "beta": beta}
        values = {
            **MONITORING,
            "redis": EXISTING_SECRET,
            "keyPrefix": key_prefix,
            "logFormat": "text",
            "config": native_config(members),
        }
        secrets = {("fedredirect-redis", "url"): redis_url}
        cluster = LocalCluster(render(values), tmp_path, stack, secrets, NAMESPACE)
        checkers = cluster.plan("Deployment", name("checker"))
        routers = cluster.plan("Deployment", name("router"))
        assert (len(checkers), len(routers)) == (2, 2)
        procs = {pod.name: cluster.start(pod) for pod in checkers + routers}
        try:
            check_serving(cluster, checkers, routers, members)
            assert_alive(cluster, procs)
        except AssertionError:
            print("\n".join(f"--- {n}\n{cluster.log(cluster.pods[n])}" for n in procs))
            raise


PASSWORD = "helmTestPassw0rd"
#: How long a failover may take before the test gives up: a guard against a hang, far
#: above what it takes (the test waits on the condition, not on this).
FAILOVER_DEADLINE = 40.0
MASTER_KILLS = 5


@contextlib.contextmanager
def busy_cores(count: int = 2) -> Iterator[None]:
    """Every core busy with a spinning process, as on a loaded node."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


class BundledRedis:
    """The chart's redis and sentinel pods, run locally, and what a test asks of them."""

    def __init__(self, cluster: LocalCluster, procs: dict[str, Any], key_prefix: str) -> None:
        self.cluster = cluster
        self.procs = procs
        self.redis = cluster.plan("StatefulSet", name("redis"))
        self.sentinels = cluster.plan("StatefulSet", name("sentinel"))
        self.drains = f"{key_prefix}:drains"
        self.history = f"{key_prefix}:history"

    def start(self, pods: list[Pod]) -> None:
        self.procs |= {pod.name: self.cluster.start(pod) for pod in pods}

    def kill(self, pods: list[Pod]) -> None:
        for pod in pods:
            gone = self.procs.pop(pod.name)
            gone.kill()
            gone.wait()

    def pause(self, pods: list[Pod]) -> None:
        for pod in pods:
            self.procs[pod.name].send_signal(signal.SIGSTOP)

    def resume(self, pods: list[Pod]) -> None:
        for pod in pods:
            self.procs[pod.name].send_signal(signal.SIGCONT)

    def wait_ready(self, pods: list[Pod]) -> None:
        for pod in pods:
            wait_for(
                lambda p=pod: self.cluster.probe(p, "readinessProbe"),
                FAILOVER_DEADLINE,
                f"{pod.name} ready",
            )

    def cli(self, pod: Pod, *command: str) -> str:
        done = self.cluster.exec(pod, "redis-cli", "-h", pod.ip, *command)
        return done.stdout

    def master_ip(self) -> str:
        """The master as a sentinel names it now ("" when none answers)."""
        sentinel = self.sentinels[1]
        answer = self.cluster.exec(
            sentinel, "redis-cli", "-h", sentinel.ip, "-p", "26379",
            "sentinel", "get-master-addr-by-name", "fedredirect",
        )  # fmt: skip
        return answer.stdout.split("\n")[0]

    def master(self) -> Pod:
        return next(pod for pod in self.redis if pod.ip == self.master_ip())

    def replicating(self, pod: Pod) -> bool:
        info = self.cli(pod, "info", "replication")
        return "role:slave" in info and "master_link_status:up" in info

    def every_pod_holds_the_drain(self, member: str) -> bool:
        held = [self.cli(pod, "hexists", self.drains, member).strip() for pod in self.redis]
        return held == ["1"] * len(self.redis)

    def first_history_entry(self) -> str:
        return self.cli(self.master(), "xrange", self.history, "-", "+", "count", "1")

    def kill_master_empty(self) -> Pod:
        """The master pod dies and a new one starts at once on an empty volume (a lost
        node's local disk): the case that must never serve empty data."""
        master = self.master()
        self.kill([master])
        self.cluster.lose_claims(master)
        self.start([master])
        return master


@pytest.mark.timeout(900)
def test_rendered_pods_serve_with_the_bundled_sentinel_and_survive_a_failover(
    tmp_path: Path,
) -> None:
    """The chart's own 3 redis + 3 sentinel pods (append-only files on their claims), with a
    password, then a legacy config's checkers and routers on them. While both cores are
    busy, the master pod dies and comes back empty at once, five times in a row: each time
    its start-up script has the sentinels fail over to a replica and joins it, so the drain
    set before is on every pod and the checkers publish to the new master. Then every
    sentinel restarts at once and finds that master; then every redis and sentinel pod at
    once: the drain and the history come back from the append-only files. Last, all of
    Redis goes: the routers stay ready (probes on /livez) and keep serving."""
    with (
        running_members(MemberSimState("alpha"), MemberSimState("beta")) as (alpha, beta),
        contextlib.ExitStack() as stack,
    ):
        members = {"alpha": alpha, "beta": beta}
        values = {
            **MONITORING,
            "keyPrefix": "helm-sentinel",
            "logFormat": "text",
            "config": legacy_config(members),
            "redis": {
                "sentinel": {
                    "downAfterMilliseconds": 1000,
                    "failoverTimeoutMilliseconds": 5000,
                    "auth": {"existingSecret": "redis-auth"},
                }
            },
        }
        text = template_text(values)
        assert PASSWORD not in text
        manifests = [doc for doc in yaml.safe_load_all(text) if doc]
        secrets = {("redis-auth", "password"): PASSWORD}
        cluster = LocalCluster(manifests, tmp_path, stack, secrets, NAMESPACE)
        procs: dict[str, Any] = {}
        redis = BundledRedis(cluster, procs, "helm-sentinel")
        checkers = cluster.plan("Deployment", name("checker"))
        routers = cluster.plan("Deployment", name("router"))
        assert (len(redis.redis), len(redis.sentinels)) == (3, 3)
        try:
            redis.start(redis.redis + redis.sentinels)
            redis.wait_ready(redis.redis + redis.sentinels)
            for pod in redis.redis + redis.sentinels:
                assert cluster.probe(pod, "livenessProbe"), pod.name
            redis.start(checkers + routers)
            check_serving(cluster, checkers, routers, members)
            assert redis.master_ip() == redis.redis[0].ip
            drain = cluster.exec(routers[0], "fedredirect", "drain", "beta", "--reason", "helm")
            assert drain.returncode == 0, drain.stderr
            wait_for(lambda: redis.every_pod_holds_the_drain("beta"), 10, "the drain replicated")

            def publishing(pod: Pod) -> bool:
                doc = status(cluster, pod)
                return (
                    doc is not None
                    and doc["checker"]["heartbeat_age_seconds"] < 1.5
                    and doc["members"]["beta"]["state"] == "drained"
                    and doc["members"]["alpha"]["state"] == "eligible"
                )

            def routers_follow(what: str) -> None:
                for pod in routers:
                    wait_for(lambda p=pod: publishing(p), FAILOVER_DEADLINE, f"{pod.name}: {what}")

            with busy_cores():
                for kill in range(1, MASTER_KILLS + 1):
                    killed = redis.kill_master_empty()
                    wait_for(
                        lambda k=killed: redis.master_ip() not in ("", k.ip),
                        FAILOVER_DEADLINE,
                        f"failover {kill}",
                    )
                    wait_for(
                        lambda k=killed: redis.replicating(k),
                        FAILOVER_DEADLINE,
                        f"{killed.name} joining the new master (kill {kill})",
                    )
                    assert "waiting for a failover" in cluster.log(killed)
                    assert "as the master" not in cluster.log(killed)
                    wait_for(
                        lambda: redis.every_pod_holds_the_drain("beta"),
                        FAILOVER_DEADLINE,
                        f"the drain on every redis pod after kill {kill}",
                    )
                    routers_follow(f"publishing to the new master after kill {kill}")

                # Two sentinels frozen: no failover can win a vote, so waiting for the
                # sentinels' own failover, however long, would end with an empty master.
                # The restarted pod asks the one left for SENTINEL FAILOVER, which needs no
                # vote, and joins the replica it promotes.
                frozen = [redis.sentinels[0], redis.sentinels[2]]
                redis.pause(frozen)
                killed = redis.kill_master_empty()
                wait_for(
                    lambda: redis.master_ip() not in ("", killed.ip),
                    FAILOVER_DEADLINE,
                    "a failover with two sentinels frozen",
                )
                wait_for(lambda: redis.replicating(killed), FAILOVER_DEADLINE, "rejoining")
                assert "SENTINEL FAILOVER asked" in cluster.log(killed)
                assert redis.every_pod_holds_the_drain("beta")
                redis.resume(frozen)
                routers_follow("publishing after a failover with two sentinels frozen")

            # Every sentinel restarts at once (a node pool upgrade, say): with no sentinel
            # left to ask, the new ones find the promoted master among the redis pods.
            promoted = redis.master_ip()
            redis.kill(redis.sentinels)
            redis.start(redis.sentinels)
            redis.wait_ready(redis.sentinels)
            assert redis.master_ip() == promoted
            routers_follow("publishing after the sentinels restarted")

            # Every redis and sentinel pod at once (a cluster restart): the claims keep
            # the append-only files, so the drain and the history come back.
            history = redis.first_history_entry()
            assert history.strip(), "no history was written"
            redis.kill(redis.redis + redis.sentinels)
            redis.start(redis.redis + redis.sentinels)
            redis.wait_ready(redis.redis + redis.sentinels)
            assert redis.first_history_entry() == history
            assert redis.every_pod_holds_the_drain("beta")
            routers_follow("publishing after every redis pod restarted")
            for pod in routers:
                assert httpx.get(pod.url("http", "/health")).status_code == 200
            assert_alive(cluster, procs)

            # Redis is gone altogether: /health turns 503 on every router, yet the probes
            # keep them ready and live, and they go on redirecting (the readiness decision).
            redis.kill(redis.redis)
            for pod in routers:
                url = pod.url("http", "/health")
                wait_for(lambda u=url: httpx.get(u).status_code == 503, 20, "a stale view")
                assert cluster.probe(pod, "readinessProbe"), pod.name
                assert cluster.probe(pod, "livenessProbe"), pod.name
                launch = httpx.get(pod.url("http", "/build/gh/org/repo/HEAD"))
                assert launch.status_code == 307
            assert_alive(cluster, procs)
        except BaseException:  # a timeout too: the logs say where it stopped
            for pod_name in procs:
                print(f"--- {pod_name}\n{cluster.log(cluster.pods[pod_name])}")
            raise


def test_config_map_holds_json_whatever_the_format() -> None:
    for variant in ("default", "all-options-sentinel"):
        config = one(render_variant(variant), "ConfigMap", name("config"))
        assert list(config["data"]) == ["config.json"]
        json.loads(config["data"]["config.json"])


def test_docs_describe_every_value() -> None:
    """docs/helm.md names every key of values.yaml (a map may be named as a whole)."""
    docs = (REPO / "docs" / "helm.md").read_text(encoding="utf-8")
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

    def undocumented(tree: dict[str, Any], prefix: str = "") -> Iterator[str]:
        for key, value in tree.items():
            path = f"{prefix}{key}"
            if f"\n| `{path}` |" in docs:  # a row's first cell, not a default
                continue
            if isinstance(value, dict) and value:
                yield from undocumented(value, f"{path}.")
            else:
                yield path

    assert list(undocumented(values)) == []


@pytest.mark.parametrize("doc", ["README.md", "docs/helm.md"])
def test_documented_value_examples_render_and_load(doc: str, tmp_path: Path) -> None:
    """Every ```yaml example of values in the docs renders, and its config loads."""
    text = (REPO / doc).read_text(encoding="utf-8")
    examples = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("config:")]
    assert examples, f"{doc} shows no values example"
    for example in examples:
        config = load_config(rendered_config(render(yaml.safe_load(example)), tmp_path))
        assert config.members
