"""One writer per tenant on this machine: an apply holds an advisory file lock for its tenant.

Mechanism: ``flock(2)`` (``fcntl.flock``, exclusive, non-blocking) on a lock file named after
the tenant's API base URL, in ``$NUMSYNC_STATE_DIR`` or the system's temporary folder. The
kernel releases the lock when the process ends, however it ends (even ``kill -9``), so a
crashed apply never leaves a stale lease behind. The file records who holds it (process id,
environment, start time; no secrets) for the refusal message of a second apply.

A lease only sees applies on the same machine; GitLab's resource groups serialize the CI
jobs, and the live-state check between phases catches a writer elsewhere.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

from numsync.errors import NumsyncError


class LeaseHeld(NumsyncError, RuntimeError):
    """Another apply on this machine holds the tenant's lease."""


def lease_folder() -> Path:
    """Where lease files live: ``$NUMSYNC_STATE_DIR`` if set, else ``<tmp>/numsync-leases``."""
    configured = os.environ.get("NUMSYNC_STATE_DIR")
    return Path(configured) / "leases" if configured else Path(tempfile.gettempdir()) / "numsync-leases"


class TenantLease:
    """``with TenantLease(base_url, environment):`` — raises LeaseHeld when another apply holds it."""

    def __init__(self, base_url: str, environment: str, *, folder: Path | None = None) -> None:
        digest = hashlib.sha256(base_url.rstrip("/").encode("utf-8")).hexdigest()[:32]
        self.path = (folder or lease_folder()) / f"{digest}.lock"
        self.environment = environment
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LeaseHeld(
                f"another apply is running against this tenant ({holder}); only one writer at a time. "
                "Wait for it to finish, then run plan again"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        handle.write(json.dumps({"pid": os.getpid(), "environment": self.environment, "since": started}))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.truncate(0)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> TenantLease:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
