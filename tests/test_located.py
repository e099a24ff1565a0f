"""The mapping of places decoded on first use behaves as a dict of the places it stands for."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from numsync.core.located import Located, PartPlaces, key_locations
from numsync.core.yamlsrc import Location

NUMBERS = [f"+1201555{n:04d}" for n in range(8)]


def part(shown: str, numbers: list[str]) -> tuple[PartPlaces, dict[str, Location]]:
    """A part whose number i has its key at line i + 2, column 3; and the dict it stands for."""
    places = [n for i in range(len(numbers)) for n in (i + 2, 3)]
    text = json.dumps([places, list(range(len(numbers))), [[] for _ in numbers], [[] for _ in numbers]]).encode()
    expected = {n: Location(shown, i + 2, 3) for i, n in enumerate(numbers)}
    return PartPlaces(shown, numbers, [], text, None), expected


operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from(NUMBERS), st.integers(1, 9)),
        st.tuples(st.just("del"), st.sampled_from(NUMBERS), st.just(0)),
        st.tuples(st.just("part"), st.lists(st.sampled_from(NUMBERS), unique=True), st.integers(0, 3)),
        st.tuples(st.just("merge"), st.lists(st.sampled_from(NUMBERS), unique=True), st.integers(0, 3)),
    ),
    max_size=25,
)


@given(operations)
def test_located_equals_the_dict_it_stands_for(ops: list[tuple[str, Any, int]]) -> None:
    located, model = key_locations(), {}
    for op, arg, n in ops:
        if op == "set":
            located[arg] = model[arg] = Location("set.yaml", n, 1)
        elif op == "del":
            assert (arg in located) == (arg in model)
            if arg in model:
                del located[arg]
                del model[arg]
        elif op == "part":
            places, expected = part(f"p{n}.yaml", arg)
            located.add_part(places)
            model.update(expected)
        else:  # another load's mapping, parts and set entries both, merged in
            other: Located[Location] = key_locations()
            places, expected = part(f"m{n}.yaml", arg)
            other.add_part(places)
            other[NUMBERS[n]] = Location("other.yaml", n, 9)
            located.update(other)
            model.update({**expected, NUMBERS[n]: Location("other.yaml", n, 9)})
        assert len(located) == len(model)
        assert sorted(located) == sorted(model)
    assert dict(located) == model and located == model
