"""Chaos: large applies against an emulator injecting random faults, seeded.

After each run (and re-runs until one succeeds) live equals desired, no number was created
twice, and no number outside the plan was deleted. docs/reliability.md records N and the mix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_workspace import OTP_SETTING, TOTP_SECRET, emulator_process

from numsync.config import load_config
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.emulator.process import EmulatorProcess
from numsync.ocp import ApiError, Credentials
from numsync.ocp.csvcodec import ExportFormatError, parse_export
from numsync.ocp.retry import RetryPolicy
from numsync.ocp.vocabulary import COLUMN
from numsync.workflow.importer import render_desired
from numsync.workflow.pipeline import (
    apply_with_recovery,
    connect,
    export_live,
    load_environment_desired,
    plan_environment,
)

RUNS = 6
FAULTS = [
    {"target": "token", "kind": "status", "status": 502, "probability": 0.1},
    {"target": "export", "kind": "status", "status": 503, "probability": 0.15},
    {"target": "export", "kind": "cut", "probability": 0.1},
    {"target": "put", "kind": "status", "status": 429, "retry_after": "0", "probability": 0.15},
    {"target": "put", "kind": "reset_before", "probability": 0.08},
    {"target": "put", "kind": "reset_after", "probability": 0.12},
    {"target": "put", "kind": "status_after", "status": 502, "probability": 0.08},
    {"target": "any", "kind": "latency", "seconds": 0.005, "probability": 0.2},
]
LIMITS = [
    "--limit",
    "Delete=5",
    "--limit",
    "Create=10",
    "--limit",
    "Update=25",
    "--limit",
    "Attach=25",
    "--limit",
    "Detach=10",
]
FAST_RETRY = RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05)
CREDENTIALS = Credentials("demo", "demo-secret", totp_secret=TOTP_SECRET)


def _desired_from(live: list[NumberRecord]) -> list[NumberRecord]:
    """A desired state far from live: 30 pruned, 30 new, notes changed, miniapps removed."""
    managed = sorted((r for r in live if r.group_id in ("ocp-qa", "uk-care")), key=lambda r: r.number)
    kept = managed[30:]
    out = []
    for i, r in enumerate(kept):
        fields = dict(r.fields)
        if i % 3 == 0:
            fields[Field.NOTE] = f"chaos note {i}"
        if i % 7 == 0:
            fields.pop(Field.MINIAPP_ID, None)
        out.append(NumberRecord(r.number, r.group_id, fields))
    out += [NumberRecord(f"+1202555{n:04d}", "ocp-qa", {Field.NOTE: "new"}) for n in range(100, 130)]
    return out


@pytest.mark.parametrize("seed", range(RUNS))
def test_apply_survives_random_faults(tmp_path: Path, seed: int) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(yaml.safe_dump(FAULTS))
    with emulator_process(*LIMITS) as clean:
        live_before = parse_export(_export(clean))
    desired = _desired_from(live_before)
    (tmp_path / "desired").mkdir()
    for name, text in render_desired(desired, ["ocp-qa", "uk-care"]).items():
        (tmp_path / "desired" / name).write_text(text)
    (tmp_path / "numsync.yaml").write_text(
        "environments:\n  chaos:\n    base_url: ${CHAOS_URL}\n    desired: desired\n    default_provider: twilio\n"
        f"    {OTP_SETTING}\n"
        "    limits: {Delete: 5, Create: 10, Update: 25, Attach: 25, Detach: 10}\n"
        "    settle: {interval: 0.2, timeout: 30}\n"
        "    groups: {ocp-qa: {prune: true}, uk-care: {prune: true}}\n"
    )
    with emulator_process(*LIMITS, "--faults", str(faults), "--fault-seed", str(seed)) as emulator:
        import os

        os.environ["CHAOS_URL"] = emulator.base_url
        try:
            env = load_config(tmp_path / "numsync.yaml").environment("chaos")
        finally:
            del os.environ["CHAOS_URL"]
        state = load_environment_desired(env)
        planned_deletes: set[str] = set()
        failures = []
        for _attempt in range(10):  # re-run apply until one run ends cleanly, as CI would
            try:
                with connect(env, CREDENTIALS, retry=FAST_RETRY) as client:
                    live = export_live(client)
                    the_plan = plan_environment(env, state, live).plan
                    planned_deletes |= {c.number for c in the_plan.changes if c.kind in ("delete", "replace")}
                    if the_plan.empty:
                        break
                    result = apply_with_recovery(env, state.records, client, the_plan)
                    failures += result.failures
                    if result.ok:
                        break
            except (ApiError, ExportFormatError):
                continue  # this attempt failed before applying; the next one re-reads everything
        else:
            pytest.fail(f"seed {seed}: did not converge in 10 runs")
        final = {n: row for n, row in emulator.numbers().items()}

    assert not [f for f in failures if "already exists" in f.message], "a Create was sent twice"
    assert failures == [], [f.message for f in failures]
    after = [
        NumberRecord(n, r["GROUP_ID"], {f: r[COLUMN[f]] for f in Field if r.get(COLUMN[f])}) for n, r in final.items()
    ]
    remaining = diff(state.records, after, env.groups)
    assert remaining.empty and not remaining.unmanaged
    deleted = {r.number for r in live_before} - final.keys()
    assert deleted <= planned_deletes
    assert deleted == {r.number for r in live_before if r.group_id in ("ocp-qa", "uk-care")} - state.records.keys()


def _export(emulator: EmulatorProcess) -> bytes:
    import httpx

    return httpx.post(
        emulator.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {emulator.token()}"}
    ).content
