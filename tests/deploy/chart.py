"""The Helm chart under test: helm itself, rendering, and the value sets the tests use."""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "fedredirect"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
RELEASE = "fr"
NAMESPACE = "fedns"
# helm v4 (the one the tests use) and helm v3 (the chart must need nothing v4 adds);
# both installed into .venv/bin by scripts/get-helm.
HELMS = ("helm", "helm3")

Values = dict[str, Any]
Manifest = dict[str, Any]


def helm_binary(name: str = "helm") -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    if not found:
        raise AssertionError(f"{name} is not installed: run scripts/get-helm (scripts/test does)")
    return found


def helm(*args: str, binary: str = "helm") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(binary), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _values_file(values: Values) -> str:
    with tempfile.NamedTemporaryFile(
        "w", suffix=".yaml", prefix="fedredirect-values-", delete=False
    ) as f:
        yaml.safe_dump(values, f)
    return f.name


def helm_with_values(
    command: str, values: Values, *extra: str, binary: str = "helm"
) -> subprocess.CompletedProcess[str]:
    """``helm COMMAND ... -f VALUES`` (template takes the release name first in EXTRA)."""
    path = _values_file(values)
    try:
        return helm(command, *extra, str(CHART), "-f", path, binary=binary)
    finally:
        os.unlink(path)


def template_text(values: Values, release: str = RELEASE, binary: str = "helm") -> str:
    done = helm_with_values("template", values, release, "--namespace", NAMESPACE, binary=binary)
    assert done.returncode == 0, f"helm template failed:\n{done.stderr}"
    return done.stdout


def render(values: Values, release: str = RELEASE, binary: str = "helm") -> list[Manifest]:
    """The manifests ``helm template`` renders for these values (parsed, comments dropped)."""
    text = template_text(values, release, binary)
    return [doc for doc in yaml.safe_load_all(text) if doc]


@functools.lru_cache
def _render_cached(key: str, release: str, binary: str) -> str:
    return json.dumps(render(json.loads(key), release, binary))


def render_variant(name: str, release: str = RELEASE, binary: str = "helm") -> list[Manifest]:
    """A named value set's manifests, rendered once per run (each caller gets a copy)."""
    return copy.deepcopy(
        json.loads(_render_cached(json.dumps(VARIANTS[name], sort_keys=True), release, binary))
    )


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = find(manifests, kind, name)
    return found


def name(component: str, release: str = RELEASE) -> str:
    """The rendered name of a component (e.g. ``fr-fedredirect-router``)."""
    return f"{release}-fedredirect-{component}"


def pod_specs(manifests: list[Manifest]) -> list[tuple[str, Manifest]]:
    """(workload name, pod spec) of every Deployment and StatefulSet."""
    return [
        (m["metadata"]["name"], m["spec"]["template"]["spec"])
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet")
    ]


# --- value sets --------------------------------------------------------------------------

# A legacy config as a mybinder.org-deploy `federationRedirect` block holds its hosts
# (the URLs are never contacted by the tests that only render it).
LEGACY_CONFIG: Values = {
    "check": {"period": 15, "jitter": 0.1, "retries": 5, "timeout": 5, "failed_period": 90},
    "load_balancer": "random",
    "pod_headroom": 10,
    "hosts": {
        "hetzner-2i2c": {
            "prime": True,
            "url": "https://2i2c.mybinder.org",
            "weight": 50,
            "health": "https://2i2c.mybinder.org/health",
            "versions": "https://2i2c.mybinder.org/versions",
        },
        "hetzner-gesis": {
            "prime": False,
            "url": "https://gesis.mybinder.org",
            "weight": 50,
            "health": "https://gesis.mybinder.org/health",
            "versions": "https://gesis.mybinder.org/versions",
        },
    },
}
NATIVE_CONFIG: Values = {
    "members": {
        "alpha": {"url": "https://alpha.example.org", "weight": 50, "prime": True},
        "beta": {"url": "https://beta.example.org", "weight": 50},
    },
    "check": {"period": 10, "max_body_bytes": 1048576, "lease": 25.5},
    "versions": {"reference": "majority", "keys": ["binderhub"]},
    "fallback": "all",
    "outage": {"policy": "keep"},
}
EXISTING_SECRET: Values = {
    "existingSecret": "fedredirect-redis",
    "existingSecretKey": "url",
    "sentinel": {"enabled": False},
}
MONITORING: Values = {
    "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
}
ROUTER_ALL: Values = {
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "hosts": [{"host": "mybinder.org", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"secretName": "mybinder-tls", "hosts": ["mybinder.org"]}],
    },
    "autoscaling": {
        "enabled": True,
        "minReplicas": 3,
        "maxReplicas": 6,
        "targetCPUUtilizationPercentage": 60,
    },
    "podDisruptionBudget": {"minAvailable": 2},
    "service": {"annotations": {"example.org/note": "router"}},
    "podAnnotations": {"example.org/pod": "router"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "example.org/pool", "operator": "In", "values": ["web"]}
                        ]
                    }
                ]
            }
        }
    },
}
CHECKER_ALL: Values = {
    "replicaCount": 3,
    "podDisruptionBudget": {"minAvailable": 2},
    "podAnnotations": {"example.org/pod": "checker"},
    "nodeSelector": {"kubernetes.io/arch": "amd64"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "binder"}],
    "affinity": {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "topologyKey": "topology.kubernetes.io/zone",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "checker"}},
                }
            ]
        }
    },
}

# The config mybinder.org-deploy renders for production, deployment keys and all.
MYBINDER_PROD_CONFIG: Values = json.loads(
    (REPO / "tests" / "fixtures" / "mybinder-prod-config.json").read_text(encoding="utf-8")
)

VARIANTS: dict[str, Values] = {
    "default": {},
    # mybinder.org-deploy's `federationRedirect` block, pasted under `config` unchanged.
    "mybinder-prod": {"config": MYBINDER_PROD_CONFIG},
    "existing-secret": {"redis": EXISTING_SECRET, "config": NATIVE_CONFIG},
    # Every option on, with the bundled Redis (with a password) and a legacy config ...
    "all-options-sentinel": {
        **MONITORING,
        "router": ROUTER_ALL,
        "checker": CHECKER_ALL,
        "config": LEGACY_CONFIG,
        "imagePullSecrets": [{"name": "registry"}],
        "redis": {
            "sentinel": {
                "auth": {"existingSecret": "fedredirect-redis-auth"},
                "networkPolicy": {"enabled": True},
                "persistence": {"size": "4Gi", "storageClass": "fast-ssd"},
                "nodeSelector": {"example.org/pool": "redis"},
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "affinity": {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {
                                    "matchLabels": {"app.kubernetes.io/instance": "fr"}
                                },
                            }
                        ]
                    }
                },
            }
        },
    },
    # ... and with an existing Redis and a native config.
    "all-options-existing-secret": {
        **MONITORING,
        "router": ROUTER_ALL,
        "checker": CHECKER_ALL,
        "config": NATIVE_CONFIG,
        "redis": {**EXISTING_SECRET, "existingSecretKey": "redis-url"},
    },
    # Every value the variants above leave at its default changed: the names overridden
    # (the tests that look objects up by name() use the variants above), the switches that
    # are on by default off, and the rest tuned.
    "every-default-changed": {
        "nameOverride": "fedredir",
        "fullnameOverride": "binder-redirect",
        "image": {
            "repository": "registry.example.org/fedredirect",
            "tag": "2025.2.0",
            "pullPolicy": "Always",
        },
        "keyPrefix": "mybinder",
        "logFormat": "text",
        "logLevel": "DEBUG",
        "config": NATIVE_CONFIG,
        "podSecurityContext": {"fsGroupChangePolicy": "OnRootMismatch"},
        "securityContext": {"privileged": False},
        "router": {
            "replicaCount": 3,
            "port": 8000,
            "preStopSleepSeconds": 10,
            "terminationGracePeriodSeconds": 45,
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "2", "memory": "512Mi"},
            },
            "service": {"type": "LoadBalancer", "port": 8081},
            "podDisruptionBudget": {"enabled": False},
        },
        "checker": {
            "metricsPort": 9100,
            "terminationGracePeriodSeconds": 45,
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"},
            },
            "podDisruptionBudget": {"enabled": False},
        },
        "redis": {
            "sentinel": {
                "masterName": "binder",
                "image": {
                    "repository": "registry.example.org/redis",
                    "tag": "7.2-alpine",
                    "pullPolicy": "Always",
                },
                "quorum": 3,
                "downAfterMilliseconds": 10000,
                "failoverTimeoutMilliseconds": 120000,
                "persistence": {"enabled": False},
                "auth": {"existingSecret": "redis-auth", "existingSecretKey": "redis-password"},
                "networkPolicy": {"enabled": False},
                "podSecurityContext": {"fsGroupChangePolicy": "OnRootMismatch"},
                "securityContext": {"privileged": False},
                "redisResources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "sentinelResources": {
                    "requests": {"cpu": "20m", "memory": "32Mi"},
                    "limits": {"cpu": "500m", "memory": "128Mi"},
                },
            }
        },
    },
}
