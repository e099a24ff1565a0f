"""Shared test fixtures: the vendor-shaped CSV samples and a running emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_workspace import emulator_process

from numsync.emulator.process import EmulatorProcess
from numsync.redaction import SECRETS

ROOT = Path(__file__).resolve().parents[1]


#: Vendor-shaped CSV samples, kept in the repository so a clone tests itself.
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture
def export_sample() -> bytes:
    """tests/fixtures/export-sample.csv: the vendor's export shape, 7 numbers in 3 groups."""
    return (FIXTURES / "export-sample.csv").read_bytes()


@pytest.fixture(autouse=True, scope="session")
def _otp_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One record of the two-factor time steps used for the whole session (emulators shared by several tests
    remember every code), kept out of the user's cache dir."""
    before = os.environ.get("NUMSYNC_STATE_DIR")
    os.environ["NUMSYNC_STATE_DIR"] = str(tmp_path_factory.mktemp("numsync-state"))
    yield
    if before is None:
        os.environ.pop("NUMSYNC_STATE_DIR", None)
    else:
        os.environ["NUMSYNC_STATE_DIR"] = before


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    """A fresh emulator process with the seed tenant and two-factor on (the tests' short OTP policy), on a free
    loopback port (a test may define its own)."""
    with emulator_process() as process:
        yield process


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    """The secret registry is process-wide (one run, one process); each test is a run of its own."""
    yield
    SECRETS.clear()
