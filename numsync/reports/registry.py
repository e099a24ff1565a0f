"""A report family's formats in one table: name, help and renderer.

Each family (plan, drift, problems) declares one :class:`Registry`; every renderer of a
family takes the same input, so the CLI picks one by name and calls it without knowing
which it is. The ``--format`` choices and their help text are read from here, so a new
format is one line in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownFormat(LookupError):
    """A format name the family does not have; the message lists the ones it has."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Format(Generic[T]):
    """One way to render a family's input: ``name`` as given to ``--format``, ``help`` for ``--help``."""

    name: str
    help: str
    render: Callable[[T], str]


@dataclass(frozen=True, slots=True)
class Registry(Generic[T]):
    """The formats of one report ``family``, in the order ``--help`` lists them (the first is the default)."""

    family: str
    formats: tuple[Format[T], ...]

    def __post_init__(self) -> None:
        if len({f.name for f in self.formats}) != len(self.formats):
            raise ValueError(f"the {self.family} formats have a duplicate name")

    @property
    def names(self) -> tuple[str, ...]:
        """Every format's name."""
        return tuple(f.name for f in self.formats)

    def help_text(self) -> str:
        """``name: help; name: help`` for an option's help."""
        return "; ".join(f"{f.name}: {f.help}" for f in self.formats)

    def get(self, name: str) -> Format[T]:
        """The format called ``name`` (:class:`UnknownFormat`, naming the choices, for any other)."""
        for f in self.formats:
            if f.name == name:
                return f
        raise UnknownFormat(f"{name!r} is not one of {', '.join(self.names)}")
