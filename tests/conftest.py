"""Shared test fixtures: the vendor-shaped CSV samples, a running emulator, a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fixtures_dir() -> Path:
    # shared/ sits beside the checkout, both in a session (/work/main) and in CI's clone.
    for candidate in (ROOT.parent / "shared" / "fixtures", ROOT / "shared" / "fixtures"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cannot find shared/fixtures beside {ROOT}")


FIXTURES = _fixtures_dir()


@pytest.fixture
def export_sample() -> bytes:
    """../shared/fixtures/export-sample.csv: the vendor's export shape, 7 numbers in 3 groups."""
    return (FIXTURES / "export-sample.csv").read_bytes()
