"""The answers real BinderHub members have given to /health and /versions, by name.

Each shape is a file in ``fedredirect/samples/`` (also the tests' fixtures, through the
``tests/fixtures/binderhub`` link) with the HTTP status it came with. The simulated member
serves any of them on request (``POST /_sim {"health_shape": NAME}``), so the checker can
be tried against every shape as a real member would send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

Endpoint = Literal["health", "versions"]


@dataclass(frozen=True)
class Shape:
    """One recorded answer: which endpoint, its status, its body file, and where it is seen."""

    endpoint: Endpoint
    status: int
    file: str
    seen: str

    @property
    def media_type(self) -> str:
        return "text/html" if self.file.endswith(".html") else "application/json"

    def body(self) -> bytes:
        return (resources.files("fedredirect") / "samples" / self.file).read_bytes()


SHAPES: dict[str, Shape] = {
    # /health
    "health-ok": Shape("health", 200, "health-ok.json", "a Kubernetes BinderHub with room"),
    "health-full": Shape("health", 200, "health-full.json", "pod quota reached (soft check)"),
    "health-down": Shape("health", 503, "health-down.json", "a hard check failed"),
    "health-down-two": Shape("health", 503, "health-down-two.json", "two hard checks failed"),
    "health-no-quota": Shape("health", 200, "health-no-quota.json", "pod_quota unset: null"),
    "health-no-registry": Shape("health", 200, "health-no-registry.json", "no registry check"),
    "health-idle": Shape("health", 200, "health-idle.json", "no pods running"),
    "health-closed": Shape("health", 200, "health-closed.json", "quota 0: closed to launches"),
    "health-pre2023-full": Shape(
        "health", 200, "health-pre2023-full.json", "before _ignore_failure: quota by name"
    ),
    "health-truthy": Shape("health", 200, "health-truthy.json", "ok as non-boolean values"),
    "health-unknown-check": Shape(
        "health", 200, "health-unknown-check.json", "a check fedredirect does not know failed"
    ),
    "health-soft-without-ok": Shape(
        "health", 200, "health-soft-without-ok.json", "an _ignore_failure check lacking ok"
    ),
    "health-500": Shape("health", 500, "health-500.html", "tornado's HTML error page"),
    # /versions
    "versions": Shape("versions", 200, "versions.json", "Kubernetes builder (2023 on)"),
    "versions-local": Shape("versions", 200, "versions-local.json", "local repo2docker builder"),
    "versions-pre2023": Shape("versions", 200, "versions-pre2023.json", "before builder_info"),
    "versions-empty-builder-info": Shape(
        "versions", 200, "versions-empty-builder-info.json", "a builder that reports nothing"
    ),
}


def shapes_for(endpoint: Endpoint) -> list[str]:
    return [name for name, shape in SHAPES.items() if shape.endpoint == endpoint]
