"""Settings: flags > FLORTRACE_* environment variables > [tool.flortrace] in pyproject.toml > defaults.

``load`` builds one typed, frozen ``Settings`` per command; nothing adds to it afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .exceptions import ConfigError


@dataclass(frozen=True)
class Settings:
    # configurable: flags, FLORTRACE_<NAME>, [tool.flortrace]
    store: str = ".flortrace"
    overhead: float = 0.05
    quiet: bool = False
    include: list = field(default_factory=list)
    exclude: list = field(default_factory=list)
    workers: int = 1
    backend: str = "local"
    tolerance: float = 0.0
    epoch_loop: str | None = None
    isolate: bool = True  # replay keeps the script's trackers and files apart (runtime/world.py)
    # given by one verb's flags only
    name: str | None = None  # record --name
    address: str | None = None  # replay --address (Ray)
    overlay: str | None = None  # a replay worker's --overlay file


CONFIGURABLE = ("store", "overhead", "quiet", "include", "exclude", "workers", "backend", "tolerance")
CONFIGURABLE += ("epoch_loop", "isolate")
_TYPES = {"overhead": float, "workers": int, "tolerance": float}


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


def load(flags, start=None, **given):
    """Merge settings; ``flags`` holds only what the user passed of the configurable ones (None means not
    given); ``given`` sets the others (``name``, ``address``, ``overlay``) as they are."""
    values = {}
    path, table = _pyproject(Path(start or os.getcwd()).resolve())
    for key, value in table.items():
        if key not in CONFIGURABLE:
            raise ConfigError(f"{path}: unknown setting [tool.flortrace] {key}")
        values[key] = _coerce(key, value, str(path))
    for key in CONFIGURABLE:
        env = os.environ.get("FLORTRACE_" + key.upper())
        if env is not None and env != "":
            values[key] = _coerce(key, env, "FLORTRACE_" + key.upper())
    for key, value in flags.items():
        if value is not None:
            values[key] = _coerce(key, value, "--" + key)
    settings = Settings(**values, **given)
    if not 0 <= settings.overhead < 10:
        raise ConfigError(f"overhead must be a fraction such as 0.05, got {settings.overhead}")
    if settings.backend not in ("local", "ray"):
        raise ConfigError(f"backend must be 'local' or 'ray', got {settings.backend!r}")
    if settings.workers < 1:
        raise ConfigError("workers must be at least 1")
    if not settings.tolerance >= 0:
        raise ConfigError(f"tolerance must be 0 or more, got {settings.tolerance}")
    return settings
