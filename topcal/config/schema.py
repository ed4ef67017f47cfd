"""The machinery every configuration shares: the JSON round trip, values checked against each field's type
(a wrong type is a ConfigError naming the key), and the value checks used by several configurations.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import types
import typing
from typing import Any

from topcal.errors import ConfigError

INF = math.inf


class _Serialisable:
    """JSON round trip for the configuration dataclasses (written into every output they produce)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return _build(cls, data, "")


def _build(cls, data: dict, prefix: str):
    """An instance of ``cls`` from ``data``; every value is checked against the field's type (a wrong type
    is a ConfigError naming the key and the value, never silently accepted or converted)."""
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{prefix}{key}: unknown configuration key")
        hint = types[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: {value!r} must be a table of settings")
            value = _build(hint, value, f"{prefix}{key}.")
        else:
            value = _typed(f"{prefix}{key}", value, hint)
        kwargs[key] = value
    return cls(**kwargs)


def _typed(name: str, value, hint):
    """``value`` checked against the type ``hint`` (bool, int, float, str, lists, dicts, optionals)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _typed(name, value, options[0])
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: {value!r} must be a whole number")
        return value
    if hint is float:
        if isinstance(value, str) and value.lower() in ("inf", "+inf", "infinity"):
            return INF
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: {value!r} must be a string")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{name}: {value!r} must be a list")
        return [_typed(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: {value!r} must be a table")
        return {str(k): _typed(f"{name}.{k}", v, args[1]) for k, v in value.items()}
    return value


def _json_default(obj):
    raise TypeError(f"not JSON serialisable: {obj!r}")


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{name}: {value} must be a positive number")


def _increasing(name: str, values: list[float]) -> None:
    if len(values) < 2 or any(not b > a for a, b in itertools.pairwise(values)):
        raise ConfigError(f"{name}: {values} must be at least two increasing edges")



def _training_fields(cfg, prefix: str, counts: tuple[str, ...]) -> None:
    """Checks shared by the network configurations: counts >= 1, layer widths, learning rate, data fractions."""
    for name in counts:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{prefix}{name}: {getattr(cfg, name)} must be >= 1")
    if not cfg.hidden or any(int(n) < 1 for n in cfg.hidden):
        raise ConfigError(f"{prefix}hidden: {cfg.hidden} must be a non-empty list of positive layer widths")
    _positive(f"{prefix}learning_rate", cfg.learning_rate)
    for name in ("validation_fraction", "test_fraction"):
        if not 0 < getattr(cfg, name) < 1:
            raise ConfigError(f"{prefix}{name}: {getattr(cfg, name)} must be between 0 and 1")
