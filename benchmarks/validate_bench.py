"""Benchmark: ``numsync validate`` on a synthetic tenant of 10,000 numbers.

Generates a desired tree in a temporary folder (valid US, GB and DE numbers in 20 groups of
500, fields as ``numsync import`` writes them: miniapp, locale, a set per group, some tags and
notes, some empty numbers, per-file defaults), then reports wall times, best of N:

- ``load_desired`` + ``checks.check_desired`` in this process (the library work);
- ``python -m numsync validate`` end to end in a subprocess (interpreter start, imports, config).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/validate_bench.py [--numbers 10000] [--repeat 3] [--profile]

``--profile`` also prints the top functions of one load + checks under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import phonenumbers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from numsync.core.checks import check_desired  # noqa: E402
from numsync.core.desired import load_desired  # noqa: E402

#: (region, country code, national number patterns: prefix and how many random digits follow)
PLANS = {
    "us": ("US", "1", [("201", 7), ("212", 7), ("312", 7), ("415", 7), ("617", 7)], "en-US"),
    "uk": ("GB", "44", [("20", 8), ("161", 7), ("121", 7)], "en-GB"),
    "de": ("DE", "49", [("30", 8), ("89", 8), ("40", 8)], "de-DE"),
}
GROUP_SIZE = 500


def numbers_for(kind: str, count: int, rng: random.Random, taken: set[str]) -> list[str]:
    """``count`` distinct numbers phonenumbers accepts as valid for the region of ``kind``."""
    region, cc, patterns, _ = PLANS[kind]
    found: list[str] = []
    while len(found) < count:
        prefix, digits = rng.choice(patterns)
        national = prefix + str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))
        number = f"+{cc}{national}"
        if number in taken:
            continue
        parsed = phonenumbers.parse(number, None)
        if phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == region:
            taken.add(number)
            found.append(number)
    return sorted(found)


def generate(root: Path, total: int, seed: int = 20240601) -> list[str]:
    """Write numsync.yaml and desired/*.yaml under ``root``; return the group ids."""
    rng = random.Random(seed)
    desired = root / "desired"
    desired.mkdir(parents=True)
    taken: set[str] = set()
    groups = []
    kinds = ["us", "uk", "de"]
    for g in range((total + GROUP_SIZE - 1) // GROUP_SIZE):
        kind = kinds[g % 3]
        group_id = f"{kind}-team-{g:02d}"
        groups.append(group_id)
        size = min(GROUP_SIZE, total - g * GROUP_SIZE)
        apps = [f"{uuid.UUID(int=rng.getrandbits(128))}.flow_{i}.Flow.{group_id}@flow_{i}.{group_id}" for i in range(3)]
        sets = [f"{group_id}-set-{i}" for i in range(3)]
        locale = PLANS[kind][3]
        lines = ["# yaml-language-server: $schema=../numsync/schema/desired.schema.json\n", f'group_id: "{group_id}"\n']
        if g % 2:
            lines.append(f'defaults:\n  locale: "{locale}"\n  provider: "twilio"\n')
        lines.append("numbers:\n")
        for i, number in enumerate(numbers_for(kind, size, rng, taken)):
            if i % 10 == 9:
                lines.append(f'  "{number}": {{}}\n')
                continue
            lines.append(f'  "{number}":\n')
            lines.append(f'    miniapp_id: "{rng.choice(apps)}"\n')
            if not g % 2:
                lines.append(f'    locale: "{locale}"\n')
            lines.append(f'    phone_number_set_id: "{rng.choice(sets)}"\n')
            if rng.random() < 0.3:
                lines.append(f'    application_tag: "{rng.choice(["billing", "support", "qa"])}"\n')
            if rng.random() < 0.1:
                lines.append(f'    note: "Line {i} of {group_id}, routed by the {rng.choice(["day", "night"])} team"\n')
        (desired / f"{group_id}.yaml").write_text("".join(lines), encoding="utf-8")
    config = [
        "environments:\n",
        "  bench:\n",
        "    region: EU1\n",
        "    desired: desired\n",
        "    default_provider: twilio\n",
        "    groups:\n",
    ]
    config += [f"      {g}: {{}}\n" for g in groups]
    (root / "numsync.yaml").write_text("".join(config), encoding="utf-8")
    return groups


def load_and_check(root: Path, groups: list[str]) -> int:
    state = load_desired(root / "desired", managed_groups=groups, default_provider="twilio", display_root=root)
    problems = check_desired(state)
    assert not problems, problems[:3]
    return len(state.records)


def best_of(repeat: int, func) -> tuple[list[float], float]:
    """Wall times of ``repeat`` runs, and the least CPU time (this process and its children) of one run."""
    times, cpu = [], float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _cpu()
        func()
        times.append(time.perf_counter() - start)
        cpu = min(cpu, _cpu() - start_cpu)
    return times, cpu


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def report(label: str, times: list[float], cpu: float) -> None:
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(f"{label}: best {min(times):.2f} s wall, {cpu:.2f} s CPU  (wall per run: {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="numsync-bench-") as tmp:
        root = Path(tmp)
        groups = generate(root, args.numbers)
        size = sum(p.stat().st_size for p in (root / "desired").iterdir())
        print(f"tree: {args.numbers} numbers in {len(groups)} files, {size / 1e6:.1f} MB of YAML")
        print(
            f"machine: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), {platform.machine()}"
        )

        count = 0

        def library() -> None:
            nonlocal count
            count = load_and_check(root, groups)

        times, cpu = best_of(args.repeat, library)
        assert count == args.numbers, count
        report("load_desired + checks", times, cpu)

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in ("OCP_USERNAME", "OCP_PASSWORD", "OCP_TOKEN"):
            env.pop(name, None)

        def cli() -> None:
            result = subprocess.run(
                [sys.executable, "-m", "numsync", "validate"], cwd=root, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"({args.numbers} number(s) in 1 environment(s))" in result.stdout, result.stdout

        times, cpu = best_of(args.repeat, cli)
        report("numsync validate (subprocess, end to end)", times, cpu)
        print(f"load average during the runs: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPU(s)")

        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(load_and_check, root, groups)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue())


if __name__ == "__main__":
    main()
