"""Typed configuration: frozen dataclasses filled from TOML presets and ``--set a.b=c`` overrides.

A preset is data (``configs/<part>/<name>.toml``); the dataclass is the schema. Unknown keys fail with the
full dotted name, so a typo in a preset or on the command line never passes silently.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict, recursing into dataclass-typed fields."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in [{prefix.rstrip('.')}]" if prefix else ""
        raise ValueError(
            f"unknown config key(s){where}: {', '.join(prefix + k for k in unknown)}; known: {sorted(names)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, prefix + name)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value, prefix=name + ".")  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, name) if len(args) == 1 else value
    if origin is tuple and isinstance(value, list):
        inner = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        return tuple(_coerce(inner, v, name) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ValueError(f"config key {name}: expected {hint.__name__}, got {value!r}")
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """The dataclass as plain JSON/TOML-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> (["optim", "lr"], 1e-4). Values are read as TOML, else kept as strings."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a table")
        node[path[-1]] = value
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Read a TOML preset (or start from the defaults), apply overrides, and validate into ``cls``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file {path} does not exist")
        with path.open("rb") as f:
            data = tomllib.load(f)
    data = apply_overrides(data, overrides or [])
    return from_dict(cls, data)


def save_config(obj: Any, path: str | Path) -> None:
    """Write the resolved config as JSON beside a run's outputs."""
    Path(path).write_text(json.dumps(to_dict(obj), indent=2) + "\n")
