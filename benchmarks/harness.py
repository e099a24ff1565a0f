"""``python -m benchmarks``: numsync at tenant scale, every figure against the bare parse baseline.

For each size (default 1k, 10k, 100k numbers) a synthetic tenant is generated twice (1% and
20% of numbers changed; see :mod:`benchmarks.tenant`), and each figure runs in a fresh
subprocess (:mod:`benchmarks.worker`), so its peak RSS is its own. A figure's wall time is the
best of ``--repeat`` runs; its ratio is to the baseline (csv module + ``yaml.CSafeLoader`` on the
same files) measured in the same run. Then, at ``--e2e-size`` (10k; the smallest size with
``--quick``): ``numsync plan`` end to end against the emulator, and apply throughput — about as
many operation rows as numbers, against an emulator seeded from the live CSV, with the client's
CPU time against wall time. The targets of the performance issue are checked at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import tenant as tenants

ROOT = Path(__file__).resolve().parents[1]


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OCP_USERNAME", "OCP_PASSWORD", "OCP_TOKEN", "OCP_OTP", "OCP_TOTP_SECRET")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    env.update(extra or {})
    return env


def measure(figure: str, root: Path, repeat: int, extra_env: dict[str, str] | None = None) -> dict:
    """Best (least wall) of ``repeat`` fresh-process runs of ``figure``; ``rss_mb`` is the highest seen."""
    runs = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.worker", figure, str(root)],
            cwd=ROOT,
            env=_child_env(extra_env),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"benchmark figure {figure} failed:\n{result.stdout}\n{result.stderr}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["wall"])
    return best | {"rss_mb": max(r["rss_mb"] for r in runs), "runs": [round(r["wall"], 3) for r in runs]}


def prepare(base: Path, size: int, changed: float) -> Path:
    root = base / f"n{size}-c{round(changed * 100)}"
    tenants.write(tenants.build(size, changed), root)
    return root


def run_size(base: Path, size: int, repeat: int, log) -> dict[str, dict]:
    one, twenty = prepare(base, size, 0.01), prepare(base, size, 0.20)
    cold = {"BENCH_CACHE": "cold"}  # a fresh desired-file cache per run: nothing parsed before
    warm = {"NUMSYNC_CACHE_DIR": str(base / f"cache-{size}")}
    measure("validate", one, 1, warm)  # fills the warm cache (not timed)
    figures = {}
    for name, figure, root, cache in (
        ("baseline", "baseline", one, cold),
        ("validate", "validate", one, cold),
        ("plan 1%", "plan", one, cold),
        ("plan 20%", "plan", twenty, cold),
        ("plan 1% warm", "plan", one, warm),
        ("import", "import", one, cold),
    ):
        figures[name] = measure(figure, root, repeat, cache)
        log(f"  {size:>7} {name:<12} {figures[name]['wall']:7.3f} s  {figures[name]['rss_mb']:6.0f} MB")
    return figures


def run_e2e(base: Path, size: int, repeat: int, log) -> dict[str, dict]:
    """``numsync plan`` via the CLI against the emulator (1% changed), and apply of ~``size`` rows."""
    from numsync.emulator.process import SEEDED_TOTP_SECRET, EmulatorProcess

    def emulator(root: Path) -> EmulatorProcess:
        otp = {"otp_period": tenants.OTP_PERIOD, "otp_look_around": tenants.OTP_LOOK_AROUND}
        return EmulatorProcess("--from-csv", str(root / "live.csv"), timeout=120, **otp)

    # the record of used two-factor steps, shared by the runs and kept out of the user's cache folder
    state = {"NUMSYNC_STATE_DIR": str(base / "numsync-state")}
    figures = {}
    root = prepare(base, size, 0.01) if not (base / f"n{size}-c1").exists() else base / f"n{size}-c1"
    with emulator(root) as emu:
        creds = {"OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret", "OCP_TOTP_SECRET": SEEDED_TOTP_SECRET}
        figures["plan (CLI, emulator)"] = measure(
            "plan-cli", root, repeat, {"OCP_EMULATOR_URL": emu.url, **creds, **state, "BENCH_CACHE": "cold"}
        )
        log(f"  {size:>7} plan CLI  {figures['plan (CLI, emulator)']['wall']:7.3f} s")
    root = prepare(base, size, 0.85)
    with emulator(root) as emu:
        figures["apply"] = measure("apply", root, 1, {"OCP_EMULATOR_URL": emu.url, **state})
        log(f"  {size:>7} apply     {figures['apply']['wall']:7.3f} s, {figures['apply']['rows']} rows")
    return figures


def table(results: dict[int, dict[str, dict]]) -> str:
    lines = ["| numbers | figure | wall s | × baseline | peak RSS MB | notes |", "|---:|---|---:|---:|---:|---|"]
    for size, figures in results.items():
        base = figures["baseline"]["wall"]
        for name, f in figures.items():
            notes = []
            if name != "apply":  # apply reports its client's CPU below
                notes.append(
                    f"CPU {f['cpu']:.3f} s"
                )  # of the best run: the machine may be shared, CPU time is less noisy
            if "requests" in f:
                notes.append(
                    f"{f['requests']} PUT (lower bound {f['minimum_requests']})"
                    if "minimum_requests" in f
                    else f"{f['requests']} PUT"
                )
            if "rows" in f and name != "baseline":
                notes.append(f"{f['rows']} rows")
            if f.get("children_rss_mb", 0) > 0 and name != "apply":
                notes.append(f"workers: CPU {f['children_cpu']:.3f} s, peak RSS {f['children_rss_mb']:.0f} MB")
            if name == "apply":
                notes.append(
                    f"client CPU {f['cpu']:.2f} s = {100 * f['cpu'] / f['wall']:.0f}% of wall; {f['rows'] / f['wall']:.0f} rows/s"
                )
            ratio = "—" if name in ("apply",) else f"{f['wall'] / base:.2f}"
            lines.append(f"| {size:,} | {name} | {f['wall']:.3f} | {ratio} | {f['rss_mb']:.0f} | {'; '.join(notes)} |")
    return "\n".join(lines) + "\n"


def targets(results: dict[int, dict[str, dict]]) -> list[str]:
    """One line per target of the issue: met / not met, with the margin."""
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    big = max(results)
    f = results[big]
    base = f["baseline"]["wall"]
    if big >= 100_000:
        r = f["plan 1%"]["wall"] / base
        out.append(f"plan {big:,} 1%, cold: {r:.2f}× baseline (target ≤ 1.2×): {verdict(r <= 1.2)}")
        r = f["plan 1% warm"]["wall"] / base
        out.append(f"plan {big:,} 1%, warm cache: {r:.2f}× baseline (target ≤ 0.3×): {verdict(r <= 0.3)}")
        for name in ("plan 1%", "plan 1% warm"):
            rss = f[name]["rss_mb"]
            out.append(f"{name} {big:,} peak RSS: {rss:.0f} MB (target ≤ 250): {verdict(rss <= 250)}")
        for name in ("validate", "import"):
            r = f[name]["wall"] / base
            out.append(f"{name} {big:,}: {r:.2f}× baseline (target ≤ 2×): {verdict(r <= 2)}")
    puts = [(size, name, g) for size, figs in results.items() for name, g in figs.items() if "minimum_requests" in g]
    bad = [
        f"{size} {name}: {g['requests']} vs {g['minimum_requests']}"
        for size, name, g in puts
        if g["requests"] != g["minimum_requests"]
    ]
    out.append(
        f"PUT requests = lower bound in {len(puts) - len(bad)}/{len(puts)} plans/applies: {verdict(not bad)}"
        + (f" ({'; '.join(bad)})" if bad else "")
    )
    for size, figs in results.items():
        if "apply" in figs:
            a = figs["apply"]
            share = a["cpu"] / a["wall"]
            out.append(
                f"apply {a['rows']:,} rows ({size:,} tenant): client CPU {100 * share:.0f}% of wall (target < 20%): {verdict(share < 0.2)}"
            )
    if 10_000 in results and 100_000 in results:
        for name in ("plan 1%", "validate", "import"):
            r = results[100_000][name]["wall"] / results[10_000][name]["wall"]
            out.append(f"{name} 100k / 10k: {r:.1f}× (target ≤ 12×): {verdict(r <= 12)}")
    return out


def run_export(rows: int, repeat: int, log, started: float) -> int:
    """``--export ROWS``: time and peak RSS of reading a ROWS-row export, and of planning it (1% changed)."""
    with tempfile.TemporaryDirectory(prefix="numsync-bench-") as tmp:
        log(f"generating a tenant of {rows:,} numbers…")
        root = prepare(Path(tmp), rows, 0.01)
        size_mb = (root / "live.csv").stat().st_size / 1e6
        figures = {}
        for figure in ("baseline", "export", "plan"):
            log(f"{figure}…")
            figures[figure] = measure(figure, root, repeat)
    print(
        f"numsync export benchmark: {rows:,} numbers, live.csv {size_mb:.0f} MB; best of {repeat}; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), {platform.machine()}\n"
    )
    print("| figure | wall | CPU | peak RSS | loader workers: CPU, peak RSS |\n|---|---|---|---|---|")
    for figure, r in figures.items():
        workers = f"{r['children_cpu']:.1f} s, {r['children_rss_mb']:.0f} MB" if r.get("children_cpu") else "—"
        print(f"| {figure} | {r['wall']:.1f} s | {r['cpu']:.1f} s | {r['rss_mb']:.0f} MB | {workers} |")
    print(f"\n(total {time.perf_counter() - started:.0f} s including tenant generation)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated tenant sizes (default %(default)s)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one run per figure, end-to-end figures at the smallest size (CI smoke run)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per figure, best taken (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--e2e-size",
        type=int,
        default=None,
        help="tenant size for the CLI-vs-emulator plan and apply (default 10000; the smallest size with --quick)",
    )
    parser.add_argument("--no-e2e", action="store_true", help="skip the emulator figures")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--export",
        type=int,
        metavar="ROWS",
        help="only the large-export case: read a ROWS-row export (parse_export), then plan it (e.g. 1000000)",
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s.replace("_", "").replace("k", "000")) for s in args.sizes.split(",") if s.strip())
    repeat = args.repeat or (1 if args.quick else 3)
    e2e = args.e2e_size or (min(sizes) if args.quick else 10_000)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    if args.export:
        return run_export(args.export, args.repeat or 1, log, started)
    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="numsync-bench-") as tmp:
        base = Path(tmp)
        for size in sizes:
            results[size] = run_size(base, size, repeat, log)
        if not args.no_e2e:
            if e2e not in results:
                results[e2e] = run_size(base, e2e, repeat, log)
            results[e2e].update(run_e2e(base, e2e, repeat, log))
    results = dict(sorted(results.items()))
    print(
        f"numsync benchmarks: {', '.join(f'{s:,}' for s in results)} numbers; best of {repeat}; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), {platform.machine()}\n"
    )
    print(table(results))
    for line in targets(results):
        print(f"- {line}")
    print(f"\n(total {time.perf_counter() - started:.0f} s including tenant generation)")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2) + "\n", "utf-8")
    return 0
