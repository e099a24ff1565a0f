"""The apply journal: one JSON object per line for every request and its outcome.

Events carry the batch, its rows (OPERATION and NUMBER), the HTTP status, per-row
failures, retries and timings — never credentials: every line is passed through the
process-wide :data:`numsync.redaction.SECRETS` (the credentials and every token issued
so far, in each form they may take), which replaces them with ``***``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from numsync.redaction import SECRETS


class Journal:
    """Appends events to ``path`` (JSON lines), or discards them when ``path`` is None."""

    def __init__(self, path: Path | None, secrets: Iterable[str] = ()) -> None:
        self.path = path
        SECRETS.add(*secrets)  # a line is JSON: the registry masks the escaped forms too
        self.redact: Callable[[str], str] = SECRETS.redact
        self._file: IO[str] | None = path.open("a", encoding="utf-8") if path else None
        self._lock = threading.Lock()  # retries are journaled from apply's worker threads: one line at a time

    def write(self, event: str, **fields: Any) -> None:
        """Record one event with a UTC timestamp."""
        if self._file is None:
            return
        record = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        line = self.redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
