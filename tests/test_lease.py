"""One writer per tenant: the apply lease (flock) seen by a second apply, released however the holder ends."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from numsync.workflow.lease import LeaseHeld, TenantLease

BASE = "http://127.0.0.1:9/integrations"


def test_a_second_holder_is_refused_with_who_holds_it(tmp_path: Path) -> None:
    with TenantLease(BASE, "prod", folder=tmp_path):
        with pytest.raises(LeaseHeld) as caught:
            TenantLease(BASE, "prod", folder=tmp_path).acquire()
        assert '"environment": "prod"' in str(caught.value) and "only one writer" in str(caught.value)
    with TenantLease(BASE + "/", "prod", folder=tmp_path):  # released: the same tenant can be leased again
        pass


def test_other_tenants_are_independent(tmp_path: Path) -> None:
    with (
        TenantLease(BASE, "prod", folder=tmp_path),
        TenantLease("http://127.0.0.1:10/integrations", "qa", folder=tmp_path),
    ):
        pass


def test_a_killed_holder_leaves_no_stale_lease(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from numsync.workflow.lease import TenantLease; "
            f"lease = TenantLease({BASE!r}, 'prod', folder=Path({str(tmp_path)!r})); lease.acquire(); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld):
            TenantLease(BASE, "prod", folder=tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait(10)
    deadline = time.monotonic() + 10
    while True:  # the kernel drops the lock with the process
        try:
            with TenantLease(BASE, "prod", folder=tmp_path):
                break
        except LeaseHeld:
            assert time.monotonic() < deadline
            time.sleep(0.05)
