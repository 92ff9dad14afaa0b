"""YAML configuration files (read with ``yaml.safe_load``, never executed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from asr.errors import ConfigError

#: The repository's ``conf/`` folder holding the default configurations.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def load_config(path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping.

    Args:
      path: A YAML file. A bare name such as ``fbank.yaml`` that does not
        exist relative to the working directory is looked up in ``conf/``.

    Raises:
      ConfigError: if the file is missing or not a YAML mapping.
    """
    p = Path(path)
    if not p.exists() and (CONF_DIR / p).exists():
        p = CONF_DIR / p
    try:
        with open(p, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML ({str(e).splitlines()[0]})") from None
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: expected a YAML mapping at top level")
    return cfg


def require(cfg: dict[str, Any], key: str, where: str = "config") -> Any:
    """Returns ``cfg[key]`` or raises a ConfigError naming the key."""
    if key not in cfg:
        raise ConfigError(f"{where}: missing key '{key}'")
    return cfg[key]


def save_config(cfg: dict[str, Any], path: str | Path) -> None:
    """Writes ``cfg`` as YAML atomically."""
    from asr.fileio import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
