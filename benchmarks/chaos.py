"""Chaos: apply a large change to a large tenant while the emulator misbehaves in every way it can.

    python -m benchmarks.chaos --seeds 10 --numbers 3000

Per seed: a synthetic tenant (benchmarks.tenant, ``--changed`` of its numbers differ, plus
``--moves`` numbers that change group: Delete then Create), an emulator seeded from its export
with the fault mix :data:`FAULTS` (fault seed = the seed), and ``numsync apply`` run again and
again (at most ``--runs`` times) until one run ends converged. Then the emulator's row log
(``GET /_emulator/log``) is audited:

- duplicate Creates: Create rows carried out for a number beyond its first;
- rows executed twice: the same row (operation, number, cells) that changed the number more
  than once (a row resent after an unknown outcome whose first copy never landed, or landed
  as a no-op, is not counted: it was executed once);
- unintended Deletes: numbers deleted that the change neither prunes nor moves;
- numbers lost: desired numbers, or live numbers nobody meant to delete, missing at the end;
- whether the final plan (from the emulator's true state, not a faulty export) is empty.

Not a unit test: it takes minutes. The unit suite has a fast deterministic case of each fault
(tests/test_faults*.py, tests/test_settle.py, tests/test_echo_redaction.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

from benchmarks import tenant as tenants
from numsync.config import load_config
from numsync.core.diff import diff
from numsync.core.safety import Overrides
from numsync.emulator.process import EmulatorProcess
from numsync.errors import NumsyncError
from numsync.ocp.csvcodec import parse_export
from numsync.ocp.vocabulary import EXPORT_COLUMNS
from numsync.workflow.pipeline import load_environment_desired
from numsync.workflow.run_apply import ApplyRequest, run_apply

CREDENTIALS = {"OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret"}
LIMITS = {"Delete": 5, "Create": 10, "Update": 25, "Attach": 25, "Detach": 10}
#: The settle interval exceeds the export's lag plus how late a file may land (0.2 + 0.3 s).
SETTLE = {"interval": 0.8, "timeout": 60}

FAULTS = [
    {"target": "token", "kind": "status", "status": 502, "probability": 0.05},
    {"target": "export", "kind": "status", "status": 503, "probability": 0.05},
    {"target": "export", "kind": "cut", "probability": 0.03},
    {"target": "export", "kind": "lag", "seconds": 0.2, "probability": 0.5},
    {"target": "put", "kind": "status", "status": 429, "retry_after": "0", "probability": 0.05},
    {"target": "put", "kind": "reset_before", "probability": 0.03},
    {"target": "put", "kind": "reset_after", "probability": 0.04},
    {"target": "put", "kind": "status_after", "status": 502, "probability": 0.03},
    {"target": "put", "kind": "late", "status": 504, "seconds": 0.3, "probability": 0.04},
    {"target": "put", "kind": "late", "answer": "reset", "seconds": 0.3, "probability": 0.02},
    {"target": "put", "kind": "echo", "status": 400, "probability": 0.01},
    {"target": "put", "kind": "writer", "probability": 0.03, "times": 1},
    {"target": "any", "kind": "latency", "seconds": 0.002, "probability": 0.1},
]


def prepare(root: Path, numbers: int, changed: float, moves: int, seed: int) -> tuple[tenants.Tenant, set[str]]:
    """The tenant files under ``root``, with ``moves`` numbers moved to another group of their kind; returns the moved numbers."""
    tenant = tenants.build(numbers, changed, seed=20240601 + seed)
    by_id = {g.group_id: g for g in tenant.groups}
    moved: set[str] = set()
    changed_numbers = {n.number for n in tenant.live} ^ {n.number for g in tenant.desired.values() for n in g}
    for group in tenant.groups:
        others = [g for g in tenant.groups if g.kind == group.kind and g is not group]
        if not others or len(moved) >= moves:
            continue
        target = others[0]
        for n in [n for n in tenant.desired[group.group_id] if n.number not in changed_numbers][:2]:
            if len(moved) >= moves:
                break
            tenant.desired[group.group_id].remove(n)
            fields = {"miniapp_id": target.apps[0], "locale": tenants.PLANS[target.kind][3]}
            fields["phone_number_set_id"] = target.sets[0]
            tenant.desired[target.group_id].append(tenants.Number(n.number, target.group_id, n.region, fields))
            moved.add(n.number)
    assert by_id
    tenants.write(tenant, root)
    config = (root / "numsync.yaml").read_text()
    extra = (
        f"    limits: {{{', '.join(f'{k}: {v}' for k, v in LIMITS.items())}}}\n"
        f"    settle: {{interval: {SETTLE['interval']}, timeout: {SETTLE['timeout']}}}\n"
    )
    (root / "numsync.yaml").write_text(config.replace("    groups:\n", extra + "    groups:\n"))
    return tenant, moved


def true_live(emu: EmulatorProcess) -> bytes:
    """The emulator's state as an export, read through the admin endpoint (no faults)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in emu.state()["numbers"]:
        writer.writerow([row.get(c, "") for c in EXPORT_COLUMNS])
    return out.getvalue().encode()


def one_seed(seed: int, numbers: int, changed: float, moves: int, max_runs: int, work: Path) -> dict[str, object]:
    root = work / f"seed-{seed}"
    tenant, moved = prepare(root, numbers, changed, moves, seed)
    # the second writer edits a managed number this change leaves alone: apply must notice
    bystander = sorted(
        n.number for g in tenant.groups if g.prune for n in tenant.desired[g.group_id] if n.number not in moved
    )[len(moved)]
    faults = [{**f, "number": bystander} if f["kind"] == "writer" else f for f in FAULTS]
    spec = root / "faults.yaml"
    spec.write_text(yaml.safe_dump(faults))
    limits = [a for k, v in LIMITS.items() for a in ("--limit", f"{k}={v}")]
    started = time.monotonic()
    with EmulatorProcess(
        "--from-csv", str(root / "live.csv"), "--faults", str(spec), "--fault-seed", str(seed), *limits, timeout=120
    ) as emu:
        import os

        os.environ["OCP_EMULATOR_URL"] = emu.url
        env = load_config(root / "numsync.yaml").environment("bench")
        desired = load_environment_desired(env).records
        initial = parse_export(true_live(emu))
        initial_managed = {r.number for r in initial if r.group_id in env.groups}
        intended_deletes = (initial_managed - set(desired)) | moved
        runs, unknown, errors, writer_stops = 0, 0, 0, 0
        converged = False
        while runs < max_runs and not converged:
            runs += 1
            request = ApplyRequest(env, overrides=Overrides(allow_replace=True), auto_approve=True, environ=CREDENTIALS)
            try:
                outcome = run_apply(request)
            except NumsyncError:
                errors += 1
                continue
            unknown += outcome.result.unknown_outcomes if outcome.result else 0
            writer_stops += bool(outcome.result and "another writer" in (outcome.result.interrupted or ""))
            converged = outcome.exit_code == 0
        time.sleep(1.0)  # any late file still in flight lands before the audit
        log = httpx.get(emu.url + "/_emulator/log", timeout=60).json()
        final = parse_export(true_live(emu))
    creates = Counter(e["NUMBER"] for e in log if e["OPERATION"] == "Create")
    changing = Counter((e["OPERATION"], e["NUMBER"], tuple(sorted(e["cells"].items()))) for e in log if e["changed"])
    deleted = {e["NUMBER"] for e in log if e["OPERATION"] == "Delete" and e["status"] == "applied"}
    final_numbers = {r.number for r in final}
    expected = set(desired) | {r.number for r in initial if r.number not in intended_deletes}
    remaining = diff(desired, final, env.groups)
    return {
        "seed": seed,
        "numbers": len(initial),
        "moves": len(moved),
        "rows": len(log),
        "runs": runs,
        "errors": errors,
        "unknown": unknown,
        "writer_stops": writer_stops,
        "duplicate_creates": sum(c - 1 for c in creates.values() if c > 1),
        "executed_twice": sum(c - 1 for c in changing.values() if c > 1),
        "unintended_deletes": len(deleted - intended_deletes),
        "lost": len(expected - final_numbers),
        "final_plan_empty": remaining.empty,
        "seconds": round(time.monotonic() - started, 1),
    }


COLUMNS = (
    ("seed", "seed"),
    ("numbers", "numbers"),
    ("moves", "group moves"),
    ("rows", "rows carried out"),
    ("runs", "apply runs"),
    ("errors", "runs ended by an error"),
    ("unknown", "unknown outcomes"),
    ("writer_stops", "stops: another writer"),
    ("duplicate_creates", "duplicate Creates"),
    ("executed_twice", "rows executed twice"),
    ("unintended_deletes", "unintended Deletes"),
    ("lost", "numbers lost"),
    ("final_plan_empty", "final plan empty"),
    ("seconds", "seconds"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--numbers", type=int, default=3000)
    parser.add_argument("--changed", type=float, default=0.25)
    parser.add_argument("--moves", type=int, default=6)
    parser.add_argument("--runs", type=int, default=20, help="apply runs per seed at most")
    args = parser.parse_args(argv)
    print("| " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    bad = 0
    with tempfile.TemporaryDirectory(prefix="numsync-chaos-") as tmp:
        for seed in range(args.seeds):
            r = one_seed(seed, args.numbers, args.changed, args.moves, args.runs, Path(tmp))
            print("| " + " | ".join(str(r[key]) for key, _ in COLUMNS) + " |", flush=True)
            keys = ("duplicate_creates", "executed_twice", "unintended_deletes", "lost")
            bad += any(r[k] for k in keys) or not r["final_plan_empty"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
