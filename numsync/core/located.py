"""Where desired numbers and values stand, for parts read back from a digest: built on first use.

A load keeps, per number, the location of its key and of each value it got (see
:class:`~numsync.core.state.DesiredState`). Only messages read them: a plan of 100,000
unchanged numbers needs none, and building ~470,000 locations was a third of a warm load.
So a part that comes from the cache or a worker process keeps its locations as the digest's
*located* text (JSON of indexes, see :func:`numsync.core.fileparts.encode`), and a
:class:`Located` mapping decodes one part's locations the first time any of its numbers is
looked up. What it answers is what an eager load would have stored.

The located text is checked when it is decoded, not when the cache entry is read (its header's
SHA-256 already rules out a damaged file). Text of the wrong shape reads the file again
(``reread``), and without that, every place in the part is the file's first line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from functools import partial
from itertools import chain, repeat
from typing import Any, Generic, TypeVar

from numsync.core.yamlsrc import Location

V = TypeVar("V")

#: Reads the part's file again (when its bytes are still those of the entry): its key and value locations.
Reread = Callable[[], "tuple[Mapping[str, Location], Mapping[str, dict[str, Location]]] | None"]

_new_location = partial(tuple.__new__, Location)


class PartPlaces:
    """One part's locations, from its located text: decoded on the first look-up, then kept."""

    __slots__ = ("_fields", "_keys", "_located", "_reread", "_texts", "numbers", "shown")

    def __init__(self, shown: str, numbers: list[str], texts: list[str], located: bytes, reread: Reread | None) -> None:
        self.shown = shown
        self.numbers = numbers
        self._texts = texts
        self._located: bytes | None = located
        self._reread = reread
        self._keys: dict[str, Location] = {}
        self._fields: dict[str, dict[str, Location]] = {}

    def key_location(self, number: str) -> Location:
        """Where ``number``'s key stands."""
        if self._located is not None:
            self._decode()
        return self._keys[number]

    def value_locations(self, number: str) -> dict[str, Location]:
        """YAML key → where the value ``number`` got stands."""
        if self._located is not None:
            self._decode()
        return self._fields[number]

    def _decode(self) -> None:
        located, self._located = self._located, None
        try:
            self._keys, self._fields = _decoded(located or b"", self.shown, self.numbers, self._texts)
        except (TypeError, ValueError, KeyError, IndexError, RecursionError):  # deep nesting: RecursionError
            again = self._reread() if self._reread is not None else None
            if again is not None and all(n in again[0] and n in again[1] for n in self.numbers):
                self._keys = {n: again[0][n] for n in self.numbers}
                self._fields = {n: again[1][n] for n in self.numbers}
            else:  # the file changed since it was read: its first line is the best place known
                top = Location(self.shown, 1, 1)
                self._keys = dict.fromkeys(self.numbers, top)
                self._fields = {n: {} for n in self.numbers}
        self._reread = None


def _decoded(
    located: bytes, shown: str, numbers: list[str], texts: list[str]
) -> tuple[dict[str, Location], dict[str, dict[str, Location]]]:
    places, key_at, keys_of, places_of = json.loads(located)
    if not set(map(type, places)) <= {int} or len(places) % 2 or min(places, default=1) < 1:
        raise ValueError("places")  # lines and columns count from 1: 0 or below would be shown as a place
    if not len(key_at) == len(keys_of) == len(places_of) == len(numbers):
        raise ValueError("columns")
    indexes = list(chain(key_at, chain.from_iterable(keys_of), chain.from_iterable(places_of)))
    if not set(map(type, indexes)) <= {int} or min(indexes, default=0) < 0:
        raise ValueError("indexes")  # a negative index would read another entry, not fail
    if any(len(k) != len(p) for k, p in zip(keys_of, places_of)):
        raise ValueError("pairs")
    # tuple.__new__ over zip: one location per distinct place, built without a Python call each
    locations = list(map(_new_location, zip(repeat(shown), places[::2], places[1::2])))
    text, place = texts.__getitem__, locations.__getitem__
    keys = dict(zip(numbers, map(place, key_at)))
    fields = dict(
        zip(numbers, map(dict, map(zip, map(map, repeat(text), keys_of), map(map, repeat(place), places_of))))
    )
    if not set(map(type, chain.from_iterable(fields.values()))) <= {str}:
        raise TypeError("keys")
    return keys, fields


class Located(MutableMapping[str, V], Generic[V]):
    """NUMBER → where it (or its values) stands: entries set here, and entries of parts decoded on first use.

    ``pick`` reads one number's entry from its part (:meth:`PartPlaces.key_location` or
    :meth:`PartPlaces.value_locations`). The two kinds of entries never share a NUMBER.
    """

    __slots__ = ("_given", "_parts", "_pick")

    def __init__(self, pick: Callable[[PartPlaces, str], V]) -> None:
        self._given: dict[str, V] = {}
        self._parts: dict[str, PartPlaces] = {}
        self._pick = pick

    def add_part(self, part: PartPlaces) -> None:
        """Answer for ``part``'s numbers from it (replacing what was set for them)."""
        for number in self._given.keys() & part.numbers:
            del self._given[number]
        self._parts.update(zip(part.numbers, repeat(part)))

    def update(self, other: Any = (), /, **kwargs: V) -> None:
        if isinstance(other, Located) and not kwargs:  # merging loads: no part is decoded for it
            for number in self._given.keys() & other._parts.keys():
                del self._given[number]
            for number in self._parts.keys() & other._given.keys():
                del self._parts[number]
            self._given.update(other._given)
            self._parts.update(other._parts)
            return
        super().update(other, **kwargs)

    def __getitem__(self, number: str) -> V:
        found = self._given.get(number)
        if found is not None:
            return found
        return self._pick(self._parts[number], number)

    def __setitem__(self, number: str, value: V) -> None:
        self._parts.pop(number, None)
        self._given[number] = value

    def __delitem__(self, number: str) -> None:
        if self._parts.pop(number, None) is None:
            del self._given[number]

    def __contains__(self, number: object) -> bool:
        return number in self._given or number in self._parts

    def __iter__(self) -> Iterator[str]:
        return chain(self._given, self._parts)

    def __len__(self) -> int:
        return len(self._given) + len(self._parts)

    def __repr__(self) -> str:
        return f"Located({len(self._given)} set, {len(self._parts)} from parts)"


def key_locations() -> Located[Location]:
    """An empty NUMBER → key location mapping."""
    return Located(PartPlaces.key_location)


def value_locations() -> Located[dict[str, Location]]:
    """An empty NUMBER → (YAML key → value location) mapping."""
    return Located(PartPlaces.value_locations)
