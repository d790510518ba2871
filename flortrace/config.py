"""Settings: flags > FLORTRACE_* environment variables > [tool.flortrace] in pyproject.toml > defaults."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "store": ".flortrace",
    "overhead": 0.05,
    "quiet": False,
    "include": [],
    "exclude": [],
    "workers": 1,
    "backend": "local",
    "tolerance": 0.0,
    "epoch_loop": None,
    "isolate": True,  # replay keeps the script's trackers and files out of the recording's (runtime/world.py)
}
_TYPES = {"overhead": float, "workers": int, "tolerance": float}


class ConfigError(Exception):
    pass


def _coerce(key, value, where):
    try:
        if key in ("quiet", "isolate"):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if key == "epoch_loop":
            file, _, line = str(value).rpartition(":")
            if not file or not line.isdigit():
                raise ValueError
            return str(value)
        if key in ("include", "exclude"):
            return [v for v in value.split(",") if v] if isinstance(value, str) else list(value)
        return _TYPES.get(key, str)(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: invalid value for {key!r}: {value!r}") from None


def _pyproject(start):
    for folder in [start, *start.parents]:
        path = folder / "pyproject.toml"
        if path.is_file():
            try:  # imported here: most runs have no pyproject.toml, and tomllib costs ~9 ms to import
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            try:
                with open(path, "rb") as f:
                    data = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{path}: {exc}") from None
            return path, data.get("tool", {}).get("flortrace", {})
    return None, {}


def load(flags, start=None):
    """Merge settings; ``flags`` holds only what the user passed (None means not given)."""
    settings = dict(DEFAULTS)
    path, table = _pyproject(Path(start or os.getcwd()).resolve())
    for key, value in table.items():
        if key not in DEFAULTS:
            raise ConfigError(f"{path}: unknown setting [tool.flortrace] {key}")
        settings[key] = _coerce(key, value, str(path))
    for key in DEFAULTS:
        env = os.environ.get("FLORTRACE_" + key.upper())
        if env is not None and env != "":
            settings[key] = _coerce(key, env, "FLORTRACE_" + key.upper())
    for key, value in flags.items():
        if value is not None:
            settings[key] = _coerce(key, value, "--" + key)
    if not 0 <= settings["overhead"] < 10:
        raise ConfigError(f"overhead must be a fraction such as 0.05, got {settings['overhead']}")
    if settings["backend"] not in ("local", "ray"):
        raise ConfigError(f"backend must be 'local' or 'ray', got {settings['backend']!r}")
    if settings["workers"] < 1:
        raise ConfigError("workers must be at least 1")
    if not settings["tolerance"] >= 0:
        raise ConfigError(f"tolerance must be 0 or more, got {settings['tolerance']}")
    return settings
