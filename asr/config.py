"""YAML configuration files (read with ``yaml.safe_load``, never executed)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from asr.errors import ConfigError

#: Package data folder (``asr/conf``) holding the default configurations. They
#: are read through importlib.resources so that a wheel install finds them
#: without the source tree.
PACKAGED_CONF = "conf"


def packaged_config(name: str) -> Traversable:
    """The default config ``name`` (e.g. ``fbank.yaml``) shipped in the package; it may not exist."""
    return resources.files("asr").joinpath(PACKAGED_CONF, name)


def resolve_config(path: str | Path) -> Path | Traversable:
    """Where ``load_config`` reads ``path`` from.

    A file that exists (relative to the working directory or absolute) wins,
    so a user's ``--config FILE`` always does. Otherwise a bare name such as
    ``lang_chain_pos.yaml`` is the packaged default of that name. A path with
    a folder part is never redirected: ``data/lang/lang.yaml`` missing from a
    lang dir must not silently become the default lang config.
    """
    p = Path(path)
    if p.exists() or len(p.parts) != 1:
        return p
    packaged = packaged_config(p.name)
    return packaged if packaged.is_file() else p


def load_config(path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping.

    Args:
      path: A YAML file. A bare name such as ``fbank.yaml`` that does not
        exist relative to the working directory is the default config of
        that name shipped in the package (``asr/conf``, see ``resolve_config``).

    Raises:
      ConfigError: if the file is missing or not a YAML mapping.
    """
    p = resolve_config(path)
    try:
        with p.open("r", encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
    except FileNotFoundError:
        shipped = f" (nor one of the defaults in {packaged_config('')})" if len(Path(path).parts) == 1 else ""
        raise ConfigError(f"{p}: no such config file{shipped}") from None
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
