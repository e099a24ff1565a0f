"""Smoke run of the benchmark harness at 1k numbers (``python -m benchmarks --sizes 1000 --quick``).

No time is asserted: the run must finish, print the results table with every figure, and the
plans and the apply must use exactly the lower bound of PUT requests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_1k_prints_the_table(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--sizes", "1000", "--quick", "--json", str(tmp_path / "bench.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "| numbers | figure | wall s | × baseline | peak RSS MB | notes |" in out
    for figure in (
        "baseline",
        "validate",
        "plan 1%",
        "plan 20%",
        "plan 1% warm",
        "import",
        "plan (CLI, emulator)",
        "apply",
    ):
        assert f"| 1,000 | {figure} |" in out, figure
    assert (
        "PUT requests = lower bound" in out
        and "NOT met" not in out.split("PUT requests = lower bound")[1].splitlines()[0]
    )
    assert (tmp_path / "bench.json").exists()
