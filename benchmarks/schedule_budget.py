"""What the exact schedule search costs, up to its budget: ``python -m benchmarks.schedule_budget``.

Each plan is scheduled twice: with no search (``budget=0``: the best of the list schedules)
and as ``numsync plan`` does (the default :data:`~numsync.ocp.compile.SEARCH_BUDGET`). The
table gives the planner's own lower bound (:func:`numsync.workflow.plan.minimum_requests`, the
gate the search runs behind; the tests check schedules against an independent one), the files
of each schedule and the CPU each took.

The plans are the two small cases where the list schedules miss (found by random runs; in
tests/test_planner.py), scaled: ``k`` copies of each chain and ``k`` times each limit, and
``rep`` times more chains at the same limits (more files). Random plans almost never need the
search (the list schedules meet the bound), so they say nothing of its cost.
"""

from __future__ import annotations

import argparse
import time

from numsync.ocp import compile as planner
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import Operation
from numsync.workflow.plan import minimum_requests

D, X, C, A, U = Operation.DETACH, Operation.DELETE, Operation.CREATE, Operation.ATTACH, Operation.UPDATE
#: (name, chain shapes, per-type limits): no schedule meets the bound / the list schedules take one file more.
CASES = (
    ("seven", [(X,), (C, A), (X, C, U), (D, U), (A,), (D, U), (D, X, C, A)], {C: 3, U: 1, A: 3, D: 1, X: 1}),
    ("nine", [(D, X), (U,), (C,), (D, X, C, U), (X, C), (C, A), (A,), (C, U), (D, U)], {C: 2, U: 1, A: 2, D: 1, X: 1}),
)


def timed(rows: list[list[OperationRow]], limits: dict[Operation, int], budget: int | None) -> tuple[list, float]:
    start = time.process_time()
    files = planner.schedule(rows, limits, budget=budget)
    return files, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,5,10,20,40", help="values of k")
    parser.add_argument("--reps", default="1,5,20", help="values of rep")
    args = parser.parse_args()
    print(f"SEARCH_BUDGET {planner.SEARCH_BUDGET}, SEARCH_DEPTH {planner.SEARCH_DEPTH}; CPU seconds (process time)\n")
    print("| case | k | rep | chains | planner's bound | list files | list CPU | searched files | with search CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, shapes, limits in CASES:
        for k in (int(s) for s in args.scales.split(",")):
            for rep in (int(s) for s in args.reps.split(",")):
                scaled = shapes * (k * rep)
                caps = {op: n * k for op, n in limits.items()}
                rows = [[OperationRow(op, f"+1201555{i:05d}") for op in shape] for i, shape in enumerate(scaled)]
                listed, t0 = timed(rows, caps, 0)
                best, t1 = timed(rows, caps, None)
                bound = minimum_requests(planner.phases_of(listed), caps)
                print(
                    f"| {name} | {k} | {rep} | {len(scaled):,} | {bound} | {len(listed)} | {t0:.3f} | {len(best)} | {t1:.3f} |"
                )


if __name__ == "__main__":
    main()
