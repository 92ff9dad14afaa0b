"""YAML configuration files (read with ``yaml.safe_load``, never executed)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

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


# ---------------------------------------------------------------------------
# Typed configs: dataclasses whose fields are the keys of a YAML section.
#
# Each field carries a one-line doc in its metadata (``option(default, doc)``);
# ``parse_config`` checks a mapping against the dataclass (unknown keys, types,
# then the class's own ``check`` for ranges) and docs/CONFIG.md is generated
# from the same definitions (``asr.config_doc``), so code, validation and docs
# cannot drift apart.

#: Field metadata key holding the one-line doc of a config key.
DOC = "doc"


def option(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its default and its one-line doc (no default: the key is required)."""
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={DOC: doc})
    return dataclasses.field(default=default, metadata={DOC: doc})


def _closest(key: str, known: list[str], prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for a likely misspelling, else an empty string."""
    match = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{prefix}{match[0]}'?)" if match else ""


def type_name(annotation: Any) -> str:
    """A short readable name of a field type: ``int``, ``float | null``, ``list[int]``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(repr(a) if not isinstance(a, str) else f"'{a}'" for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if dataclasses.is_dataclass(annotation):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _convert(value: Any, annotation: Any, where: str, key: str) -> Any:
    """``value`` checked against ``annotation`` (ints pass as floats); raises ConfigError if it does not fit."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        sections = [a for a in args if dataclasses.is_dataclass(a)]
        if sections and isinstance(value, dict):
            # A section's own error (its unknown key) says more than "must be mapping | null".
            return parse_config(sections[0], value, where, prefix=f"{key}.")
        for arg in args:
            try:
                return _convert(value, arg, where, key)
            except ConfigError:
                continue
    elif annotation is type(None):
        if value is None:
            return None
    elif origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
    elif dataclasses.is_dataclass(annotation):
        return parse_config(annotation, value, where, prefix=f"{key}.")
    elif origin is list:
        if isinstance(value, list):
            return [_convert(v, args[0], where, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return {_convert(k, args[0], where, key): _convert(v, args[1], where, f"{key}.{k}") for k, v in value.items()}
    elif annotation is bool:
        # bool("false") is True and yes/no typos are common: only YAML's true/false.
        if isinstance(value, bool):
            return value
    elif annotation is float:
        # YAML reads 20 as an int; it is a fine float (as the float() calls before).
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, annotation):
        return value
    raise ConfigError(f"{where}: '{key}' must be {type_name(annotation)}, got {value!r}")


def config_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """The fields of a config dataclass with their resolved type annotations."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


T = TypeVar("T")


def parse_config(cls: type[T], data: Any, where: str, prefix: str = "") -> T:
    """Checks a mapping against the config dataclass ``cls`` and builds it.

    Args:
      cls: A dataclass whose fields (made with :func:`option`) are the keys.
      data: The mapping read from YAML (``None`` is an empty mapping).
      where: The file (or a description) named in errors.
      prefix: Prefix of the key names in errors (``"spec_augment."``).

    Raises:
      ConfigError: one line naming ``where`` and the key, for an unknown or
        missing key, a value of the wrong type, or one ``cls.check`` rejects.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or 'config'}' must be a mapping, got {data!r}")
    fields = [(f, a) for f, a in config_fields(cls) if f.init]
    check_keys(cls, data, where, prefix)
    values = {}
    for f, annotation in fields:
        if f.name in data:
            values[f.name] = _convert(data[f.name], annotation, where, f"{prefix}{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key '{prefix}{f.name}'")
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check(where, prefix)
    return obj


def check_keys(cls: type, data: dict, where: str, prefix: str = "") -> None:
    """Raises a one-line ConfigError for the first key of ``data`` that is no field of ``cls``."""
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{prefix}{key}'{_closest(str(key), known, prefix)}")


def config_to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as a plain mapping (nested dataclasses too), e.g. to pass to a subprocess."""
    return dataclasses.asdict(obj)


def load_typed_config(path: str | Path, cls: type[T]) -> T:
    """Reads a YAML file (see :func:`load_config`) and checks it against ``cls``; errors name the file."""
    return parse_config(cls, load_config(path), str(resolve_config(path)))


def check_range(where: str, key: str, ok: bool, rule: str, value: Any) -> None:
    """Raises a one-line ConfigError ``where: 'key' must be <rule>, got <value>`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{where}: '{key}' must be {rule}, got {value!r}")
