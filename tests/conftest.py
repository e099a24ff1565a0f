"""Shared test fixtures: the vendor-shaped CSV samples and a running emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from numsync.emulator.testing import EmulatorProcess

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


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    """A fresh emulator process with the seed tenant, on a free loopback port (a test may define its own)."""
    with EmulatorProcess() as process:
        yield process
