"""One writer per tenant, between phases: live must have moved only as apply's own rows predict.

The lease (lease.py) keeps a second numsync on this machine out; this catches every other
writer — a person in the OCP console, another pipeline. Before each phase after the first,
apply exports once and compares the managed numbers with the state its own applied rows
predict (numsync.ocp.predict). A mismatch may be an export that lags its writes, so live is
first let settle (settle.py); if it still differs, someone else is writing and nothing more
is sent.
"""

from __future__ import annotations

from collections.abc import Callable

from numsync.config import Environment
from numsync.core.model import NumberRecord
from numsync.ocp import OCPReader
from numsync.ocp.predict import apply_rows
from numsync.workflow.apply import BatchOutcome
from numsync.workflow.settle import Settled, settle

#: How many differing numbers a message names.
SHOWN = 3


class LiveWatch:
    """The state apply expects live to be in, kept up to date with each answered file."""

    def __init__(
        self,
        env: Environment,
        client: OCPReader,
        live: list[NumberRecord],
        on_settled: Callable[[Settled], None] | None = None,
    ) -> None:
        self.env, self.client, self.on_settled = env, client, on_settled
        self.expected = {r.number: r for r in live if r.group_id in env.groups}

    def rebase(self, live: list[NumberRecord]) -> None:
        """Expect ``live`` (a settled export, after an unknown outcome)."""
        self.expected = {r.number: r for r in live if r.group_id in self.env.groups}

    def record(self, outcome: BatchOutcome) -> None:
        """An answered file: its rows that OCP did not refuse have applied."""
        if outcome.ambiguous:
            return  # recovery settles and rebases
        refused = {id(f.row) for f in outcome.failures}
        apply_rows(self.expected, (r for r in outcome.rows_sent if id(r) not in refused))

    def check(self, phase: int) -> str | None:
        """Before ``phase``: None when live is as predicted, else why apply must stop."""
        live = self.client.export_records().records
        differing = self._differing(live)
        if not differing:
            return None
        settled = settle(self.client, self.env, live)
        if self.on_settled:
            self.on_settled(settled)
        differing = self._differing(settled.live)
        if not differing:
            return None
        shown = ", ".join(differing[:SHOWN]) + (f" and {len(differing) - SHOWN} more" if len(differing) > SHOWN else "")
        return (
            f"stopped before phase {phase}: another writer is changing the tenant — {len(differing)} managed number(s) "
            f"differ from what this apply's own rows predict ({shown}). Nothing more was sent; find the other writer, "
            "then run plan again"
        )

    def _differing(self, live: list[NumberRecord]) -> list[str]:
        now = {r.number: r for r in live if r.group_id in self.env.groups}
        return sorted(n for n in now.keys() | self.expected.keys() if _key(now.get(n)) != _key(self.expected.get(n)))


def _key(record: NumberRecord | None) -> object:
    if record is None:
        return None
    return (record.group_id, tuple(sorted(record.fields.items())))
