"""Apply at several ``apply_concurrency`` values against an emulator whose every PUT takes real server time.

    python -m benchmarks.concurrency --latency 0.2 --levels 1,2,4,8

One synthetic tenant (:mod:`benchmarks.tenant`: ``--numbers`` numbers, ``--changed`` of them
differ, every kind of change) is planned with small per-file limits (:data:`LIMITS`, so the
plan has many files), then, per level, a fresh emulator seeded from the same export with the
fault ``{target: put, kind: latency, seconds: LATENCY}`` applies it: ``apply_with_recovery``
as ``numsync apply`` runs it (with the export between phases that checks for another writer),
timed alone. Each level prints wall time, rows/s, the speed-up over level 1 and the most PUTs
the emulator had in flight at once; every run must converge (a final export equals desired).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from benchmarks import tenant as tenants
from numsync.config import load_config
from numsync.core.diff import diff
from numsync.emulator.process import SEEDED_TOTP_SECRET, EmulatorProcess
from numsync.ocp import Credentials
from numsync.ocp.csvcodec import parse_export
from numsync.workflow.apply import Concurrency
from numsync.workflow.pipeline import apply_with_recovery, connect, load_environment_desired
from numsync.workflow.plan import make_plan

LIMITS = {"Delete": 5, "Create": 10, "Update": 25, "Attach": 25, "Detach": 10}
CREDENTIALS = Credentials(username="demo", password="demo-secret", totp_secret=SEEDED_TOTP_SECRET)


def prepare(root: Path, numbers: int, changed: float) -> Path:
    tenants.write(tenants.build(numbers, changed), root)
    config = root / "numsync.yaml"
    limits = ", ".join(f"{k}: {v}" for k, v in LIMITS.items())
    config.write_text(config.read_text().replace("    groups:\n", f"    limits: {{{limits}}}\n    groups:\n"))
    return config


def one_level(root: Path, config: Path, level: int, latency: float) -> dict[str, object]:
    spec = root / "faults.yaml"
    spec.write_text(yaml.safe_dump([{"target": "put", "kind": "latency", "seconds": latency}]))
    limits = [a for k, v in LIMITS.items() for a in ("--limit", f"{k}={v}")]
    with EmulatorProcess(
        "--from-csv",
        str(root / "live.csv"),
        "--faults",
        str(spec),
        *limits,
        otp_period=tenants.OTP_PERIOD,
        otp_look_around=tenants.OTP_LOOK_AROUND,
        timeout=120,
    ) as emu:
        os.environ["OCP_EMULATOR_URL"] = emu.url
        env = dataclasses.replace(load_config(config).environment("bench"), apply_concurrency=level)
        desired = load_environment_desired(env).records
        limiter = Concurrency(level)
        with connect(env, CREDENTIALS, on_throttle=limiter.throttled) as client:
            live = parse_export(client.export())
            the_plan = make_plan(env, desired, live, diff(desired, live, env.groups))
            started = time.perf_counter()
            result = apply_with_recovery(env, desired, client, the_plan, live=live, concurrency=limiter)
            wall = time.perf_counter() - started
            left = diff(desired, parse_export(client.export()), env.groups)
        stats = httpx.get(emu.url + "/_emulator/stats", timeout=30).json()
    if not result.ok or not left.empty:
        raise SystemExit(f"level {level}: did not converge ({result.interrupted}; {len(left.changes)} left)")
    rows = sum(len(p.rows) for p in the_plan.phases)
    return {
        "level": level,
        "rows": rows,
        "files": the_plan.request_count(),
        "phases": len(the_plan.phases),
        "wall": wall,
        "rows_per_s": rows / wall,
        "max_in_flight": stats["max_puts_in_flight"],
        "throttled": result.throttled,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=2000)
    parser.add_argument("--changed", type=float, default=0.2)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds each PUT waits in the emulator")
    parser.add_argument("--levels", default="1,2,4,8", help="apply_concurrency values, comma-separated")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    print(f"tenant: {args.numbers} numbers, {args.changed:.0%} changed; limits {LIMITS}; PUT latency {args.latency}s")
    print("| apply_concurrency | rows | files | phases | wall s | rows/s | speed-up | max PUTs in flight |")
    print("|---|---|---|---|---|---|---|---|")
    first: float | None = None
    with tempfile.TemporaryDirectory(prefix="numsync-concurrency-") as tmp:
        root = Path(tmp)
        config = prepare(root, args.numbers, args.changed)
        for level in levels:
            r = one_level(root, config, level, args.latency)
            wall = float(str(r["wall"]))
            first = first or wall
            print(
                f"| {level} | {r['rows']} | {r['files']} | {r['phases']} | {wall:.2f} | {float(str(r['rows_per_s'])):.0f}"
                f" | {first / wall:.2f}× | {r['max_in_flight']} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
