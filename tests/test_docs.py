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


def test_the_readme_layout_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    layout = readme[readme.index("## Layout") :]
    layout = layout[: layout.index("### Where to add")]
    missing = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "numsync").rglob("*.py"))
        if p.name != "__init__.py" or p.parent.name == "numsync"
        if p.parent.name != "emulator" and p.name not in layout
    ]
    assert missing == [], "README, Layout: name these modules"
