"""What is wrong with a config document, said for people: one ``FILE: key 'PATH': problem``
line each, an unknown key with the closest known key when one is close (a typo).

:mod:`shared.config` hands in its models and raises these lines as its ``ConfigError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import get_args, get_origin

from pydantic import BaseModel, ValidationError

from shared.legacy import DEPLOYMENT_KEYS


def describe(exc: ValidationError, root: type[BaseModel], source: str, section: str) -> str:
    """Each of ``exc``'s errors validating the ``root`` model as a line naming its key, the
    members' key as the file's ``section`` spells it."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        if loc and loc[0] == "members":
            loc[0] = section
        key = ".".join(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        head, sep, rest = msg.partition(": ")
        if not loc and sep and head.replace(".", "").replace("_", "").isalnum():
            key, msg = head, rest
        if err["type"] == "extra_forbidden":
            known = _settings_at(root, err["loc"][:-1], section)
            line = unknown_key(source, key, loc[-1], known)
            if section == "members" and key in DEPLOYMENT_KEYS:
                line += "; deployment keys are ignored only in the legacy format (beside 'hosts')"
            lines.append(line)
            continue
        lines.append(f"{source}: key '{key}': {msg}")
    return "\n".join(lines)


def unknown_key(source: str, path: str, key: str, known: Iterable[str]) -> str:
    """The unknown ``key`` at ``path``, with the closest known key if one is close (a
    typo), and none if nothing is: a wrong guess misleads more than no guess."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{source}: key '{path}': unknown key{hint}"


def no_members(doc: Mapping[object, object], source: str, known: Collection[str]) -> str:
    """A document with neither members' section: that, after its unknown top-level keys.
    Either format could be meant, so ``known`` holds both sections: a key neither has may
    be the misspelt one."""
    typos = [
        unknown_key(source, str(key), str(key), known)
        for key in doc
        if key not in known and key not in DEPLOYMENT_KEYS
    ]
    return "\n".join([*typos, f"{source}: key 'members': missing; no members are configured"])


def typos_in_dropped(
    given: object, kept: object, member: type[BaseModel], section: str, source: str
) -> list[str]:
    """Unknown keys of the members dropped for weight 0, which validation never sees: else
    a typo there would surface only when the member's weight is given back."""
    if not (isinstance(given, Mapping) and isinstance(kept, Mapping)):
        return []
    known = member.model_fields
    return [
        unknown_key(source, f"{section}.{name}.{key}", str(key), known)
        for name, entry in given.items()
        if name not in kept and isinstance(entry, Mapping)
        for key in entry
        if key not in known
    ]


def _settings_at(root: type[BaseModel], loc: Sequence[int | str], section: str) -> list[str]:
    """The settings the mapping at ``loc`` may hold: its model's fields, found by walking the
    models' annotations from ``root`` (a ``dict`` field's next part is a name: a member, a
    path). At the top of a legacy file ``hosts`` instead of ``members``, and never the
    ignored deployment keys: "hosst" must suggest ``hosts``, not ``host``."""
    model = root
    rest = list(loc)
    while rest:
        field = model.model_fields.get(str(rest.pop(0)))
        inner = field.annotation if field else None
        if get_origin(inner) is dict:
            inner, rest = get_args(inner)[1], rest[1:]
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return []
        model = inner
    if model is root and section == "hosts":
        return [*(set(model.model_fields) - {"members"}), "hosts"]
    return list(model.model_fields)
