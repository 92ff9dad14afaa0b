"""The tree config (``asr/conf/tree.yaml``): keys, types and ranges.

Every key is required after defaults are filled in from the packaged
``tree.yaml``; a user config may give any subset.  Unknown keys and bad
values raise a one-line :class:`~asr.errors.ConfigError` naming the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.config import load_config
from asr.errors import ConfigError

DEFAULT_CONFIG = "tree.yaml"


@dataclass(frozen=True)
class TreeConfig:
    """Validated options of :func:`asr.tree.build.build_tree` (meanings in ``asr/conf/tree.yaml``)."""

    context_width: int
    central_position: int
    deltas: bool
    variance_floor: float
    max_leaves: int
    split_threshold: float
    min_leaf_count: float
    merge_threshold: float | None
    share_positions: bool
    share_pdf_classes: bool
    cluster_restarts: int
    seed: int

    @property
    def effective_merge_threshold(self) -> float:
        return self.split_threshold if self.merge_threshold is None else self.merge_threshold


def _check_type(where: str, key: str, value: Any, kind: type) -> Any:
    # bool is an int subclass and "false" is a truthy string: check exactly.
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        raise ConfigError(f"{where}: '{key}' must be {kind.__name__}, got {value!r}")
    return kind(value)


def _check_range(where: str, key: str, ok: bool, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{where}: '{key}' must be {rule}")


def tree_config(cfg: dict[str, Any], where: str = "tree config") -> TreeConfig:
    """Validates a complete config mapping.

    Raises:
      ConfigError: for an unknown or missing key, a wrong type or a value out of range.
    """
    fields = TreeConfig.__dataclass_fields__
    for key in cfg:
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for key, field in fields.items():
        if key not in cfg:
            raise ConfigError(f"{where}: missing key '{key}'")
        kind = {"int": int, "float": float, "bool": bool, "float | None": float}[str(field.type)]
        value = cfg[key]
        values[key] = None if value is None and field.type == "float | None" else _check_type(where, key, value, kind)
    c = TreeConfig(**values)
    _check_range(where, "context_width", c.context_width >= 1, ">= 1")
    _check_range(where, "central_position", 0 <= c.central_position < c.context_width, "in [0, context_width)")
    _check_range(where, "variance_floor", c.variance_floor > 0, "> 0")
    _check_range(where, "max_leaves", c.max_leaves >= 1, ">= 1")
    _check_range(where, "split_threshold", c.split_threshold >= 0, ">= 0")
    _check_range(where, "min_leaf_count", c.min_leaf_count > 0, "> 0")
    _check_range(where, "merge_threshold", c.merge_threshold is None or c.merge_threshold >= 0, ">= 0 or null")
    _check_range(where, "cluster_restarts", c.cluster_restarts >= 1, ">= 1")
    return c


def load_tree_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TreeConfig:
    """The packaged defaults, updated by the YAML file ``path`` and then by ``overrides``.

    Raises:
      ConfigError: naming ``path`` (or the defaults) and the offending key.
    """
    defaults = load_config(DEFAULT_CONFIG)
    tree_config(defaults, f"{DEFAULT_CONFIG} (packaged default)")
    merged = dict(defaults)
    where = f"{DEFAULT_CONFIG} (packaged default)"
    if path is not None:
        user = load_config(path)
        where = str(path)
        for key in user:
            if key not in defaults:
                raise ConfigError(f"{path}: unknown key '{key}' (known: {', '.join(defaults)})")
        merged.update(user)
    if overrides:
        merged.update(overrides)
        where = f"{where} with overrides {sorted(overrides)}"
    return tree_config(merged, where)
