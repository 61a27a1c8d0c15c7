"""Typed dataclass configs from plain dicts (JSON, YAML, CLI ``--x '{...}'``): the one place that checks them.

Every config of both packages builds through :func:`from_dict` (a new instance) or :func:`replace_checked` (a copy of
a base with some fields changed). Both refuse a non-mapping and unknown keys with one line that lists the known ones,
turn JSON/YAML lists into tuples for tuple-typed fields, and turn numeric strings (YAML 1.1 reads ``3e-4`` as a
string) into floats for float-typed fields. Value checks stay in each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message names the field and shows the bad value."""


def checked_fields(cls: type, data: Any, section: str) -> dict[str, Any]:
    """``data``'s entries as keyword arguments of dataclass ``cls`` (see the module docstring); ``section`` names
    the config in the error messages (e.g. ``"AgentConfig"``, ``"model"``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{section} must be a mapping of its fields; got {type(data).__name__}: {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {section} field(s) {unknown}; known: {sorted(fields)}")
    hints = _type_hints(cls)
    values = {}
    for key, value in data.items():
        kinds = _kinds(hints.get(key, fields[key].type))
        if isinstance(value, str) and float in kinds and str not in kinds:
            try:
                value = float(value)
            except ValueError as exc:
                raise ConfigError(f"{section}.{key} must be a number; got {value!r}") from exc
        if isinstance(value, list) and tuple in kinds:
            value = tuple(value)
        values[key] = value
    return values


def _type_hints(cls: type) -> dict[str, Any]:
    try:  # resolves string annotations and module-level aliases (e.g. ``Range = tuple[float, float] | None``)
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: fall back to the raw ones
        return {}


def _kinds(tp: Any) -> set[type]:
    """The plain types a field annotation admits: ``tuple[float, float] | None`` -> {tuple, NoneType}."""
    if isinstance(tp, str):  # unresolved: read the text
        return {t for t, name in ((tuple, "tuple"), (float, "float"), (str, "str")) if name in tp}
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(tp)))
    if origin is not None:
        return {origin} if isinstance(origin, type) else set()
    return {tp} if isinstance(tp, type) else set()


def from_dict(cls: type[T], data: Any, section: str | None = None) -> T:
    """A new ``cls`` from ``data`` (fields not given keep their defaults)."""
    return cls(**checked_fields(cls, data, section or cls.__name__))


def replace_checked(base: T, data: Any, section: str | None = None) -> T:
    """``dataclasses.replace(base, **data)``, checked like :func:`from_dict`."""
    return dataclasses.replace(base, **checked_fields(type(base), data, section or type(base).__name__))


__all__ = ["ConfigError", "checked_fields", "from_dict", "replace_checked"]
