"""Version strings as members report them, and when two of them count as the same.

``versions.compatible`` names, per version key, how far a member may run from the reference
during a rollout: ``minor`` (the same major version), ``patch`` (the same major and minor
version) or ``exact`` (equal strings, the default). Only a string that parses is compared by
its numbers; anything else compares exactly, so an unexpected answer can keep a member out
but never admits it by accident, nor raises.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from shared.config import Compatibility

# MAJOR.MINOR.PATCH after an optional "v", then an optional pre-release or build suffix:
# BinderHub's 1.0.0-0.dev.git.3650.h9cb2f5b and 0.2.0-n634.h5f6e9e0, repo2docker's 2024.07.0.
# No release has a number of 19 digits, and a bound keeps int() from refusing a huge one.
_VERSION = re.compile(r"v?([0-9]{1,18})\.([0-9]{1,18})\.([0-9]{1,18})([-+][0-9A-Za-z._+-]+)?")


class Version(NamedTuple):
    """A parsed version; numbers are compared as numbers (repo2docker's ``2024.07.0``)."""

    image: str  # the image of an image tag ("quay.io/jupyterhub/repo2docker"), else ""
    major: int
    minor: int
    patch: int
    suffix: str  # the pre-release or build suffix with its "-" or "+", else ""


def parse_version(text: str) -> Version | None:
    """A version (``1.0.1``, ``v1.2.3``, ``1.0.0-0.dev.git.3650.h9cb2f5b``) or an image tag
    (``quay.io/jupyterhub/repo2docker:2024.07.0``: the version is the tag after the last
    ":"), or None when ``text`` is neither. A registry's port is no tag (what follows it has
    a "/"), nor is a digest (``@sha256:...``)."""
    image, colon, tag = text.rpartition(":")
    match = _VERSION.fullmatch(tag)
    if match is None or (colon and not image):
        return None
    major, minor, patch, suffix = match.groups()
    return Version(image, int(major), int(minor), int(patch), suffix or "")


def compatible(version: str, reference: str, level: Compatibility) -> bool:
    """Whether a member's ``version`` counts as the ``reference``'s under ``level``.

    A pre-release or build suffix never matters under ``minor`` or ``patch``: a dev build is
    taken as the release it leads to, so ``1.0.0-0.dev.git.3650.h9cb2f5b`` is compatible with
    ``1.0.0`` under both (only ``exact`` tells them apart). Image tags are compatible only
    when their images are the same, and a version with an image tag never. Major version 0
    is not special: under ``minor``, ``0.2.0`` and ``0.3.0`` are compatible.
    """
    if version == reference:
        return True
    if level == "exact":
        return False
    ours, theirs = parse_version(version), parse_version(reference)
    if ours is None or theirs is None:
        return False
    if ours.image != theirs.image or ours.major != theirs.major:
        return False
    return level == "minor" or ours.minor == theirs.minor
