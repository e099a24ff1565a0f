"""A content-addressed cache of desired files that loaded without a problem.

One entry per desired file, named by a SHA-256 key over everything its loading depends on:
the file's bytes and the path messages show for it, the environment's managed groups and
default_provider, the cache format, numsync's version and the source of its desired loader,
the shipped schemas, and the phonenumbers and PyYAML releases (their rules decide validity
and typing). Change any of them and the key changes: an entry is never stale, only unused.

An entry holds the file's *digest* (:mod:`numsync.core.fileparts`): the group and, per number,
its E.164 form, provider and fields — plain strings, integers and lists, written as JSON
(reading a cache file never runs code) — and, on the line after it, its *located* text: the
line/column of each key and value, as JSON read only when a message needs a place
(:mod:`numsync.core.located`). Its first line names the format and carries the SHA-256 of the
rest; an entry whose header, hash, JSON, key or shape is wrong is treated as absent (and
overwritten by the next load). Files with
problems are never stored: their problems are found again on every run.

Beside them, one *whole-tree* entry per load that had no problem (``trees/``), keyed by every
file's key in load order: the fingerprint of the records loaded (what a plan records as
``desired_hash``), so a warm plan does not hash 100,000 records again. The same checks apply
to it, and a value that is not a fingerprint makes it absent.

Correctness never depends on the cache: a miss loads the file as if there were no cache,
and an unwritable cache folder is skipped silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import phonenumbers
import yaml

#: Bumped whenever the digest's layout changes (old entries then never match).
FORMAT = "numsync-desired-cache 3"
#: Folder under the cache root that holds desired-file entries.
SUBFOLDER = "desired"
#: Folder under the cache root that holds whole-tree entries: the fingerprint of a load's records.
TREE_SUBFOLDER = "trees"
#: What a whole-tree entry's key starts from (bumped with its layout).
TREE_FORMAT = "numsync-desired-tree 1"
#: Where the cache lives by default: beside numsync.yaml (git-ignored, see README).
DEFAULT_FOLDER_NAME = ".numsync-cache"
#: Overrides the cache folder (e.g. one the CI keeps between pipelines).
ENV_VAR = "NUMSYNC_CACHE_DIR"
#: An entry no load has used for this long is deleted (when a load writes new entries), so the
#: folder holds about one entry per desired file and setting in use, not every version ever seen.
MAX_UNUSED_SECONDS = 14 * 24 * 3600


@cache
def _code_fingerprint() -> str:
    """numsync's version, the loader's own source, the schemas and the parsing libraries' releases.

    The source is hashed as well as the version so a development checkout (same version, edited
    code) never reads entries an older loader wrote.
    """
    h = hashlib.sha256()
    try:
        h.update(importlib.metadata.version("numsync").encode())
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        h.update(b"unversioned")
    core = Path(__file__).parent
    for source in sorted(core.glob("*.py")):
        h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    schemas = resources.files("numsync.schema")
    for name in sorted(p.name for p in schemas.iterdir() if p.name.endswith(".json")):
        h.update(name.encode() + b"\0" + schemas.joinpath(name).read_bytes() + b"\0")
    libyaml = "libyaml" if hasattr(yaml, "CSafeLoader") else "pure"
    h.update(f"{phonenumbers.__version__}\0{yaml.__version__}\0{libyaml}".encode())
    return h.hexdigest()


def context_key(shown: str, default_provider: str | None, managed: Iterable[str] | None) -> bytes:
    """The part of a key shared by a load's files except ``shown``: settings and code, as bytes to hash."""
    settings = {
        "format": FORMAT,
        "code": _code_fingerprint(),
        "shown": shown,
        "default_provider": default_provider,
        "managed": sorted(managed) if managed is not None else None,
    }
    return json.dumps(settings, sort_keys=True).encode()


def entry_key(data: bytes, shown: str, default_provider: str | None, managed: Iterable[str] | None) -> str:
    """The key of one desired file's entry: its bytes and every setting its loading depends on."""
    h = hashlib.sha256(context_key(shown, default_provider, managed))
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


def tree_key(file_keys: Iterable[str]) -> str:
    """The key of a whole load: its files' keys in load order (each already covers its bytes and every setting)."""
    h = hashlib.sha256(TREE_FORMAT.encode())
    for key in file_keys:
        h.update(b"\0" + key.encode())
    return h.hexdigest()


def tree_fingerprint(entry: Any) -> str | None:
    """The records' fingerprint a whole-tree entry holds, or None when it is not one (never raises)."""
    value = entry.get("fingerprint") if isinstance(entry, dict) else None
    if type(value) is not str or not _FINGERPRINT.fullmatch(value):
        return None
    return value


_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")


class DesiredCache:
    """The entries under ``root`` (``root/<subfolder>/<key>.json``): desired files', or whole trees'."""

    def __init__(self, root: Path, subfolder: str = SUBFOLDER) -> None:
        self.root = root
        self.folder = root / subfolder

    def get(self, key: str) -> Any:
        """The digest stored under ``key``, or None when absent or not trustworthy (never raises)."""
        found = self.read(key)
        return found[0] if found is not None else None

    def read(self, key: str) -> tuple[Any, bytes] | None:
        """The digest stored under ``key`` and the bytes attached to it, or None when absent or not trustworthy
        (never raises)."""
        try:
            raw = (self.folder / f"{key}.json").read_bytes()
        except OSError:
            return None
        header, sep, payload = raw.partition(b"\n")
        if not sep or header != f"{FORMAT} {hashlib.sha256(payload).hexdigest()}".encode():
            return None
        document, _, attached = payload.partition(b"\n")
        try:
            entry = json.loads(document)
        except (ValueError, RecursionError):  # RecursionError: arrays nested deeper than the decoder goes
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None  # foreign: another key's entry copied under this name
        with contextlib.suppress(OSError):
            os.utime(self.folder / f"{key}.json")  # in use: see prune
        return entry.get("digest"), attached

    def prune(self, now: float | None = None) -> None:
        """Delete the entries no load has used for :data:`MAX_UNUSED_SECONDS` (never raises)."""
        limit = (time.time() if now is None else now) - MAX_UNUSED_SECONDS
        try:
            for entry in self.folder.iterdir():
                if entry.suffix == ".json" and entry.stat().st_mtime < limit:
                    entry.unlink(missing_ok=True)
        except OSError:
            return

    def put(self, key: str, digest: Any, attached: bytes = b"") -> None:
        """Store ``digest`` (and ``attached``: bytes read back as they are) under ``key`` atomically; a folder
        that cannot be written is skipped."""
        document = json.dumps({"key": key, "digest": digest}, ensure_ascii=False, separators=(",", ":")).encode()
        payload = document + b"\n" + attached  # the JSON has no raw line break: the first one ends it
        header = f"{FORMAT} {hashlib.sha256(payload).hexdigest()}\n".encode()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.root / ".gitignore"
            if not ignore.exists():  # the folder keeps itself out of git wherever it is
                ignore.write_text("# numsync's cache of parsed desired files (safe to delete)\n*\n", "utf-8")
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(header + payload)
                os.replace(tmp, self.folder / f"{key}.json")
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return
