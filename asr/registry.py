"""A small named registry, shared by the pluggable parts (models, training criteria).

Each part keeps one :class:`Registry`; its entries give the CLI its choices,
config validation its accepted names and docs/CONFIG.md its sections.  (The
corpus-preparer registry, :mod:`asr.data.registry`, and the grammar
registry, :mod:`asr.lang.grammar`, predate it and keep their own shapes.)
"""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from asr.errors import ConfigError

E = TypeVar("E")


class Registry(Generic[E]):
    """Entries by name, in registration order.

    Args:
      kind: What the entries are (``"model type"``), for error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, E] = {}

    def register(self, name: str, entry: E) -> E:
        """Adds ``entry`` as ``name``; a second registration of one name is a programming error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: object, where: str) -> E:
        """The entry ``name``; a ConfigError naming ``where`` and the choices if there is none."""
        if not isinstance(name, str) or name not in self._entries:
            raise ConfigError(f"{where}: unknown {self.kind} {name!r}, expected one of {', '.join(self._entries)}")
        return self._entries[name]

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, E]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
