"""TOML cards: a configuration from its defaults, updated by a card and by the options a user gave, checked."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from topcal.config.run import RunConfig
from topcal.errors import ConfigError


def read_toml(path: str | Path, what: str = "card") -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; a missing, unreadable or invalid file is one ConfigError naming
    ``path`` (``what`` says what kind of card was expected)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML card") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (TOML cards are UTF-8)") from None


def load_card(path: str | Path | None, overrides: dict[str, Any] | None = None, cls=None, base=None):
    """A configuration (``cls``: :class:`RunConfig` by default, or :class:`ProcessConfig`,
    :class:`TrainConfig`) from the defaults (or ``base``, an instance of ``cls``), updated by a TOML card and
    then by ``overrides`` (a nested dict: only what the user really gave), validated. Unknown keys are errors
    that name the key."""
    cls = RunConfig if cls is None else cls
    data = (cls() if base is None else base).to_dict()
    if path is not None:
        _merge(data, read_toml(path, "configuration card"), "")
    if overrides:
        _merge(data, overrides, "")
    cfg = cls.from_dict(data)
    cfg.validate()
    return cfg


def _merge(base: dict, update: dict, prefix: str) -> None:
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{name}: unknown configuration key")
        if isinstance(base[key], dict) and not isinstance(value, dict):
            raise ConfigError(f"{name}: {value!r} must be a table of settings")
        if isinstance(base[key], dict) and isinstance(value, dict) and key != "energy_fractions":
            _merge(base[key], value, name + ".")
        elif key == "energy_fractions" and isinstance(value, dict):
            base[key].update({str(k): v for k, v in value.items()})
        else:
            base[key] = value
