"""Rehearsal: apply a plan to an emulator seeded from the live export, before the real tenant.

The emulator starts as a separate loopback process from the export just taken
(``numsync emulator --from-csv``), with the environment's per-file limits. The plan is
applied there exactly as it would be to OCP, then the emulator is exported again and
diffed with desired. A rehearsal knows only the miniapps and phone number sets that the
live export mentions: a row that refers to one it has never seen is refused there,
and reported as such (it may be new to the tenant, or a typo).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from numsync.config import Environment
from numsync.core.diff import Diff, diff
from numsync.core.model import NumberRecord
from numsync.emulator.process import SEEDED_TOTP_SECRET, EmulatorProcess
from numsync.ocp import Credentials, OCPAuth, OCPClient
from numsync.workflow.apply import ApplyResult, apply_plan
from numsync.workflow.plan import Plan

#: The emulator's seeded OWNER user, valid on every rehearsal emulator (two-factor on, as on OCP).
REHEARSAL_CREDENTIALS = Credentials(username="demo", password="demo-secret", totp_secret=SEEDED_TOTP_SECRET)


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """What happened in the rehearsal: the apply's outcome and what still differed afterwards."""

    result: ApplyResult
    remaining: Diff

    @property
    def ok(self) -> bool:
        """True when every row was accepted and live then equalled desired."""
        return self.result.ok and self.remaining.empty


def rehearse(plan: Plan, env: Environment, live_csv: bytes, desired: Mapping[str, NumberRecord]) -> Rehearsal:
    """Apply ``plan`` to a fresh emulator seeded from ``live_csv``; see the module doc."""
    with tempfile.TemporaryDirectory(prefix="numsync-rehearsal-") as tmp:
        export = Path(tmp) / "live.csv"
        export.write_bytes(live_csv)
        limits = [f"--limit={op.value}={n}" for op, n in env.limits.items()]
        with EmulatorProcess("--from-csv", str(export), *limits) as emulator:
            auth = OCPAuth(emulator.token_url, REHEARSAL_CREDENTIALS)
            # the emulator is a local child process: never through the environment's proxy
            with OCPClient(emulator.base_url, auth, timeout=env.timeout, trust_env=False) as client:
                result = apply_plan(plan, client)
                after = client.export_records().records
    return Rehearsal(result, diff(desired, after, env.groups, plan.scope))  # a partial plan converges within its scope
