"""Every recorded BinderHub answer shape (fedredirect.shapes) parses as BinderHub meant it.

One expectation per shape; a shape added without one, or a sample file that no shape
names, fails here, so the catalogue the simulator serves and these tests cannot drift.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fedredirect.shapes import SHAPES
from shared.payloads import PayloadError, parse_health, parse_versions

NOW = 1_700_000_000.0
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "binderhub"
R2D = "quay.io/jupyterhub/repo2docker:2024.07.0"
BHUB = "1.0.0-0.dev.git.3520.h1234abcd"

# shape -> (status, reasons, total_pods, quota)
HEALTH: dict[str, tuple[str, tuple[str, ...], int | None, int | None]] = {
    "health-ok": ("ok", (), 42, 100),
    "health-full": ("ok", (), 101, 100),  # the soft quota check never fails the answer
    "health-down": ("unhealthy", ("check failed: JupyterHub API",), 12, 100),
    "health-down-two": (
        "unhealthy",
        ("check failed: Docker registry", "check failed: JupyterHub API"),
        12,
        100,
    ),
    "health-no-quota": ("ok", (), 7, None),
    "health-no-registry": ("ok", (), 42, 100),
    "health-idle": ("ok", (), 0, 100),
    "health-closed": ("ok", (), 0, 0),
    "health-pre2023-full": ("ok", (), 103, 100),  # "Pod quota" is soft by name
    "health-truthy": ("ok", (), 42, 100),
    "health-unknown-check": ("unhealthy", ("check failed: Build cluster",), 42, 100),
    "health-soft-without-ok": ("ok", (), 42, 100),
}
HEALTH_ERRORS = {"health-500": "HTTP 500"}
VERSIONS: dict[str, dict[str, str]] = {
    "versions": {"builder_info.build_image": R2D, "binderhub": BHUB, "builder": R2D},
    "versions-local": {"builder_info.repo2docker-version": "2024.07.0", "binderhub": BHUB},
    "versions-pre2023": {
        "builder": "jupyter/repo2docker:2022.10.0",
        "binderhub": "0.2.0-n1026.h3e4b2a1",
    },
    "versions-empty-builder-info": {"binderhub": BHUB},
}


def test_every_shape_has_an_expectation_and_every_sample_a_shape() -> None:
    assert set(SHAPES) == set(HEALTH) | set(HEALTH_ERRORS) | set(VERSIONS)
    assert {s.file for s in SHAPES.values()} == {p.name for p in SAMPLES.iterdir()}


@pytest.mark.parametrize("name", sorted(HEALTH))
def test_health_shape(name: str) -> None:
    shape = SHAPES[name]
    obs = parse_health(shape.status, shape.body(), NOW)
    assert (obs.status, obs.reasons, obs.total_pods, obs.quota) == HEALTH[name]
    assert obs.observed_at == NOW


@pytest.mark.parametrize("name", sorted(HEALTH_ERRORS))
def test_health_error_shape(name: str) -> None:
    shape = SHAPES[name]
    with pytest.raises(PayloadError) as info:
        parse_health(shape.status, shape.body(), NOW)
    assert str(info.value) == HEALTH_ERRORS[name]


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_versions_shape(name: str) -> None:
    shape = SHAPES[name]
    assert parse_versions(shape.status, shape.body()) == VERSIONS[name]


def test_shape_files_are_the_test_fixtures() -> None:
    for shape in SHAPES.values():
        assert shape.body() == (SAMPLES / shape.file).read_bytes()
