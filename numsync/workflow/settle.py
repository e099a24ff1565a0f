"""Wait for live to stop moving before anything is planned from it.

After a write whose outcome is unknown, OCP may still be working on it (it can finish a
file after the client gave up), and its export may lag its writes. A plan made from such a
read would resend what is about to land, or miss what is about to change. So live counts
only once it has *settled*: two exports ``interval`` seconds apart have the same fingerprint
(over the managed groups). Within ``timeout`` seconds, or :class:`UnsettledError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from numsync.config import Environment
from numsync.core.model import NumberRecord
from numsync.errors import UnsettledError
from numsync.ocp import OCPReader
from numsync.workflow.plan import fingerprint


@dataclass(frozen=True, slots=True)
class Settled:
    """The settled live state, and what it took: ``exports`` read and ``seconds`` waited."""

    live: list[NumberRecord]
    exports: int
    seconds: float


def settle(
    client: OCPReader,
    env: Environment,
    first: list[NumberRecord] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Settled:
    """Export until two consecutive exports agree; ``first``: an export just read, to count as the first.

    Raises UnsettledError when live is still moving after ``env.settle.timeout`` seconds.
    """
    interval, timeout = env.settle.interval, env.settle.timeout
    started = clock()
    exports = 1

    def managed(records: list[NumberRecord]) -> str:
        return fingerprint(r for r in records if r.group_id in env.groups)

    seen = managed(first if first is not None else client.export_records().records)
    while True:
        if clock() - started + interval > timeout:
            raise UnsettledError(
                f"live did not settle within {timeout:g} s: {exports} export(s) {interval:g} s apart all differed "
                "(OCP may still be processing, or someone else is changing the tenant). Stopped; run plan again "
                "later, or raise settle.timeout in numsync.yaml"
            )
        sleep(interval)
        again = client.export_records().records
        exports += 1
        now = managed(again)
        if now == seen:
            return Settled(again, exports, clock() - started)
        seen = now
