"""Docs that are derived from code stay in step with it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_emulator_page_matches_the_module_docstring() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "emulator_doc.py"), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
