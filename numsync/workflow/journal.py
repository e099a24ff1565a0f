"""The apply journal: one JSON object per line for every request and its outcome.

Events carry the batch, its rows (OPERATION and NUMBER), the HTTP status, per-row
failures, retries and timings — never credentials: every string is passed through the
redactor, which replaces known secret values with ``***``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any


class Journal:
    """Appends events to ``path`` (JSON lines), or discards them when ``path`` is None."""

    def __init__(self, path: Path | None, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self.secrets = [s for s in secrets if s]
        self._file: IO[str] | None = path.open("a", encoding="utf-8") if path else None

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def write(self, event: str, **fields: Any) -> None:
        """Record one event with a UTC timestamp."""
        if self._file is None:
            return
        record = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        self._file.write(self.redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
