"""One benchmark figure, measured in this (fresh) process: ``python -m benchmarks.worker FIGURE ROOT``.

Prints one JSON object: ``wall`` (s, the work only: imports and interpreter start are outside
it), ``cpu`` (s, this process, the same span), ``rss_mb`` (peak resident set of this process, imports
included; for ``plan-cli`` that of the CLI subprocess), ``children_cpu`` / ``children_rss_mb``
(the desired loader's worker processes, if it started any) and figure-specific details.

The desired-file cache: ``BENCH_CACHE=cold`` gives the figure a fresh, empty cache folder (a
first run, which also writes the cache); otherwise ``NUMSYNC_CACHE_DIR`` as given (the harness
fills one first for the warm figure).

Figures (ROOT is a tenant written by :func:`benchmarks.tenant.write`):

- ``baseline``: live.csv through Python's csv module + every desired file through
  ``yaml.load(Loader=yaml.CSafeLoader)`` — the bare parse numsync cannot go below;
- ``validate``: numsync.yaml + desired files loaded and checked (``numsync validate`` minus printing);
- ``plan``: parse_export(live.csv) + desired + diff + make_plan (export served from a file);
- ``export``: parse_export(live.csv) alone (``--export ROWS``: the 1M-row case);
- ``import``: parse_export(live.csv) + render_desired + write the files (``numsync import`` minus the download);
- ``plan-cli``: ``python -m numsync plan`` end to end against the emulator (``OCP_EMULATOR_URL``);
  ``cpu`` and ``rss_mb`` are those of the CLI subprocess;
- ``apply``: plan against the emulator, then apply_plan; ``cpu`` is the client's own CPU time.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def baseline(root: Path) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    rows = list(csv.reader(io.StringIO((root / "live.csv").read_bytes().decode("utf-8-sig"), newline="")))
    docs = [yaml.load(p.read_text("utf-8"), Loader=loader) for p in sorted((root / "desired").glob("*.yaml"))]
    return {"rows": len(rows) - 1, "numbers": sum(len(d["numbers"]) for d in docs), "loader": loader.__name__}


def _env(root: Path):
    from numsync.config import load_config

    return load_config(root / "numsync.yaml").environment("bench")


def validate(root: Path) -> dict:
    from numsync.core.checks import check_desired
    from numsync.workflow.pipeline import load_environment_desired

    state = load_environment_desired(_env(root), display_root=root)
    problems = check_desired(state)
    assert not [p for p in problems if p.severity == "error"], problems[:3]
    return {"numbers": len(state.records), "problems": len(problems)}


def plan(root: Path) -> dict:
    from numsync.core.diff import diff
    from numsync.ocp.csvcodec import parse_export
    from numsync.workflow.pipeline import load_environment_desired
    from numsync.workflow.plan import make_plan, minimum_requests

    env = _env(root)
    desired = load_environment_desired(env, display_root=root)  # desired first, as `numsync plan` does
    live = parse_export((root / "live.csv").read_bytes())
    result = diff(desired.records, live, env.groups)
    the_plan = make_plan(env, desired.records, live, result, desired_hash=desired.fingerprint)  # as plan_environment
    rows = sum(len(p.rows) for p in the_plan.phases)
    return {
        "changes": len(the_plan.changes),
        "rows": rows,
        "requests": the_plan.request_count(),
        "minimum_requests": minimum_requests(the_plan.phases, env.limits),
    }


def export(root: Path) -> dict:
    """Reading the export alone: the live CSV's bytes through parse_export (what plan and drift do first)."""
    from numsync.ocp.csvcodec import parse_export

    data = (root / "live.csv").read_bytes()
    live = parse_export(data)
    return {"rows": len(live), "export_mb": round(len(data) / 1e6, 1)}


def import_(root: Path) -> dict:
    from numsync.ocp.csvcodec import parse_export
    from numsync.workflow.importer import render_desired

    env = _env(root)
    live = parse_export((root / "live.csv").read_bytes())
    files = render_desired(live, env.groups, schema="../numsync/schema/desired.schema.json", shared=True)  # as the CLI
    with tempfile.TemporaryDirectory(prefix="numsync-bench-import-") as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text, "utf-8")
    return {"files": len(files)}


def plan_cli(root: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "numsync", "plan", "--out", str(root / "plan.json")],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    saved = json.loads((root / "plan.json").read_text("utf-8"))
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "requests": saved["summary"]["requests"],
        "rss_mb": _rss_mb(resource.RUSAGE_CHILDREN),
        "cpu": child.ru_utime + child.ru_stime,
    }


def apply(root: Path) -> dict:
    """Plan against the emulator, then time apply_plan alone: client CPU (process_time) vs wall."""
    import httpx

    from numsync.core.diff import diff
    from numsync.emulator.process import SEEDED_TOTP_SECRET
    from numsync.ocp import Credentials
    from numsync.ocp.csvcodec import parse_export
    from numsync.workflow.apply import apply_plan
    from numsync.workflow.pipeline import connect, load_environment_desired
    from numsync.workflow.plan import make_plan, minimum_requests

    env = _env(root)
    desired = load_environment_desired(env, display_root=root)
    admin = os.environ["OCP_EMULATOR_URL"] + "/_emulator/stats"
    seeded = Credentials(username="demo", password="demo-secret", totp_secret=SEEDED_TOTP_SECRET)
    with connect(env, seeded) as client:
        live = parse_export(client.export())
        the_plan = make_plan(env, desired.records, live, diff(desired.records, live, env.groups))
        before = httpx.get(admin).json()["put_requests"]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = apply_plan(the_plan, client)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        puts = httpx.get(admin).json()["put_requests"] - before
        remaining = diff(desired.records, parse_export(client.export()), env.groups)
    assert result.ok, (result.failures[:3], result.interrupted)
    rows = sum(len(p.rows) for p in the_plan.phases)
    return {
        "wall": wall,
        "cpu": cpu,
        "rows": rows,
        "requests": puts,
        "minimum_requests": minimum_requests(the_plan.phases, env.limits),
        "left_after_apply": len(remaining.changes),
    }


FIGURES = {
    "baseline": baseline,
    "validate": validate,
    "plan": plan,
    "export": export,
    "import": import_,
    "plan-cli": plan_cli,
    "apply": apply,
}


#: Modules each figure imports before its clock starts (interpreter start and imports are not the work).
PRELOAD = {
    "baseline": ["yaml"],
    "validate": ["numsync.config", "numsync.core.checks", "numsync.workflow.pipeline"],
    "plan": [
        "numsync.config",
        "numsync.ocp.csvcodec",
        "numsync.core.diff",
        "numsync.workflow.pipeline",
        "numsync.workflow.plan",
    ],
    "import": ["numsync.config", "numsync.ocp.csvcodec", "numsync.workflow.importer"],
    "export": ["numsync.ocp.csvcodec"],
    "plan-cli": [],
    "apply": [
        "httpx",
        "numsync.config",
        "numsync.workflow.apply",
        "numsync.ocp.csvcodec",
        "numsync.core.diff",
        "numsync.ocp",
        "numsync.workflow.pipeline",
        "numsync.workflow.plan",
    ],
}


def main() -> None:
    figure, root = sys.argv[1], Path(sys.argv[2])
    for module in PRELOAD[figure]:
        importlib.import_module(module)
    if figure != "baseline":  # numsync's figures run as the CLI runs them: collector tuned once at start
        from numsync.gctuning import tune_for_batch_run

        tune_for_batch_run()
    cold = tempfile.mkdtemp(prefix="numsync-bench-cache-") if os.environ.get("BENCH_CACHE") == "cold" else None
    if cold:  # a first run: an empty cache, which the figure fills (the writing is part of the work)
        os.environ["NUMSYNC_CACHE_DIR"] = cold
    wall0, cpu0 = time.perf_counter(), time.process_time()
    details = FIGURES[figure](root)
    out = {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0, "rss_mb": _rss_mb()}
    if figure != "plan-cli":  # worker processes the desired loader started, if any
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["children_cpu"] = children.ru_utime + children.ru_stime
        out["children_rss_mb"] = _rss_mb(resource.RUSAGE_CHILDREN)
    out.update(details)
    if cold:
        shutil.rmtree(cold, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
