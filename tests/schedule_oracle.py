"""An independent judge of operation schedules: validity, a lower bound, and the exact optimum.

Written apart from numsync.ocp.compile on purpose: nothing here calls the scheduler or
shares its reasoning, so a planner test that compares against it can fail.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from itertools import product

from numsync.ocp.vocabulary import Operation

#: Every chain the planner can make (docs/semantics.md), as operation types in order.
D, X, C, A, U = Operation.DETACH, Operation.DELETE, Operation.CREATE, Operation.ATTACH, Operation.UPDATE
SHAPES: tuple[tuple[Operation, ...], ...] = (
    (C,),
    (C, A),
    (C, U),
    (D,),
    (D, U),
    (A,),
    (U,),
    (X,),
    (D, X),
    (X, C),
    (X, C, A),
    (X, C, U),
    (D, X, C),
    (D, X, C, A),
    (D, X, C, U),
)

Files = Sequence[Sequence[tuple[str, Operation]]]  # per file, its rows as (number, operation)


def schedule_errors(
    chains: Mapping[str, Sequence[Operation]], files: Files, limits: Mapping[Operation, int]
) -> list[str]:
    """Everything wrong with ``files`` as a schedule of ``chains``; empty when valid."""
    errors = []
    seen: dict[str, list[Operation]] = {n: [] for n in chains}
    for f, rows in enumerate(files, 1):
        if not rows:
            errors.append(f"file {f} is empty")
        numbers = Counter(n for n, _ in rows)
        errors += [f"file {f} has {n} {k} times" for n, k in numbers.items() if k > 1]
        types = Counter(op for _, op in rows)
        errors += [f"file {f} has {k} {op.value} (limit {limits[op]})" for op, k in types.items() if k > limits[op]]
        for n, op in rows:
            seen.setdefault(n, []).append(op)
    errors += [
        f"{n} runs {list(got)} instead of {list(chains.get(n, ()))}"
        for n, got in seen.items()
        if list(got) != list(chains.get(n, ()))
    ]
    return errors


def lower_bound(chains: Sequence[Sequence[Operation]], limits: Mapping[Operation, int]) -> int:
    """The most files any operation type forces: its operations that need ≥ a files before and ≥ b after."""
    best = 0
    for op in Operation:
        spots = [(j, len(c) - 1 - j) for c in chains for j, o in enumerate(c) if o is op]
        for a, b in product({s[0] for s in spots}, {s[1] for s in spots}):
            stuck = sum(1 for x, y in spots if x >= a and y >= b)
            best = max(best, a + b + math.ceil(stuck / limits[op]))
    return best


def exact_minimum(chains: Sequence[Sequence[Operation]], limits: Mapping[Operation, int]) -> int:
    """The fewest files, by exhaustive search over every way to fill each file (small cases only).

    A state is the multiset of (chain, operations done) of unfinished chains; chains with
    the same operations are interchangeable, which keeps the search small. Files may be
    filled with any number of ready rows up to the limit, not just as many as possible.
    It asks "does it fit in F files?" for F upward from :func:`lower_bound`, depth-first; a
    state is dropped when the lower bound of what is left exceeds the files left (the bound
    holds for every schedule, so no state that could fit is dropped).
    """
    start = _state(Counter((tuple(c), 0) for c in chains if c))
    files = lower_bound(chains, limits)
    while not _fits(start, files, limits):
        files += 1
    return files


def _fits(start: tuple, files: int, limits: Mapping[Operation, int]) -> bool:
    """Whether ``start`` can finish within ``files`` files: depth-first, remembering states that cannot."""
    cannot: set[tuple[tuple, int]] = set()

    def fits(state: tuple, left: int) -> bool:
        if not state:
            return True
        if left == 0 or (state, left) in cannot or lower_bound(_left(state), limits) > left:
            return False
        if any(fits(after, left - 1) for after in _next_states(state, limits)):
            return True
        cannot.add((state, left))
        return False

    return fits(start, files)


def _left(state: tuple) -> list[tuple[Operation, ...]]:
    return [c[done:] for (c, done), k in state for _ in range(k)]


def _state(counts: Counter[tuple[tuple[Operation, ...], int]]) -> tuple:
    return tuple(sorted(((c, done), k) for (c, done), k in counts.items() if k and done < len(c)))


def _next_states(state: tuple, limits: Mapping[Operation, int]) -> Iterator[tuple]:
    groups = [group for group, _ in state]
    have = [k for _, k in state]
    # For each group, how many of its chains take their next step in this file.
    options = [range(k, -1, -1) for k in have]  # fuller files first: a fit is found sooner
    for take in product(*options):
        if not any(take):
            continue
        per_type = Counter()
        for (c, done), t in zip(groups, take, strict=True):
            per_type[c[done]] += t
        if any(n > limits[op] for op, n in per_type.items()):
            continue
        counts: Counter = Counter()
        for (c, done), k, t in zip(groups, have, take, strict=True):
            counts[(c, done)] += k - t
            counts[(c, done + 1)] += t
        yield _state(counts)
