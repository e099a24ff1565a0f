"""Desired files read each on its own: from the cache, in worker processes, or here.

:func:`file_parts` gives, per desired file, what it holds when read on its own without a
problem (a one-file :class:`DesiredState`), or None. The loader merges those parts in file
order and reads any other file the usual way, so neither the cache nor the workers can change
a result or a message (see ``load_desired``).

A part crosses a process or the cache as a *digest* of plain values (see :func:`encode`), so
the cache is JSON and a worker's reply is a list of strings and integers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any, cast

from numsync.core.desiredcache import DesiredCache, entry_key
from numsync.core.located import Located, PartPlaces, Reread
from numsync.core.model import FIELDS, NumberRecord, memo_mark, memoize, memoized_since
from numsync.core.state import DesiredState
from numsync.core.yamlsrc import Location

#: Reads one file's bytes on its own: (bytes, shown path, managed groups, default_provider) → part or None.
PartLoader = Callable[[bytes, str, "set[str] | None", "str | None"], "DesiredState | None"]

#: Below this many bytes of files to parse, worker processes cost more than they save
#: (starting one is ~20 ms; 1 MB of desired YAML is ~6,000 numbers, ~0.3 s to read).
PARALLEL_MIN_BYTES = 1_000_000
#: Work items per worker: small enough that the processes finish close together.
CHUNKS_PER_WORKER = 8

_FIELD_INDEX = {f: i for i, f in enumerate(FIELDS)}


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def encode(part: DesiredState, normalized: list[tuple[str, str]]) -> tuple[dict[str, Any], bytes]:
    """``part`` as plain values: its *digest* (records) and its *located* text (where they stand).

    The digest holds tables of the part's distinct texts and (field, value) pairs, and
    ``numbers``: three columns, one item per number: its text, provider (0: none, else text
    index + 1) and [pair, …] — every item an index into a table, so a value many numbers share
    is stored once and read back as one string. ``normalized``: the (text, E.164) pairs reading
    the file taught :func:`~numsync.core.model.normalize_number`, taught again on decoding, so
    the export that follows finds its numbers normalized as after a parse here.

    The located text is JSON ``[places, key_at, keys_of, places_of]``: the distinct (line, column)
    pairs, flat, and per number its key's place and the [key text, …] and [place, …] of its
    values. It stays text until a message needs a place (:mod:`~numsync.core.located`).
    """
    texts: dict[str, int] = {}
    places: dict[tuple[int, int], int] = {}
    pairs: dict[tuple[int, int], int] = {}

    def text(value: str) -> int:
        return texts.setdefault(value, len(texts))

    def place(loc: Location) -> int:
        return places.setdefault((loc.line, loc.column), len(places))

    ((group_id, _),) = part.groups.items()
    number_at: list[int] = []
    provider_of: list[int] = []
    fields_of: list[list[int]] = []
    key_at: list[int] = []
    keys_of: list[list[int]] = []
    places_of: list[list[int]] = []
    for number, record in part.records.items():
        located = part.field_locations[number]
        number_at.append(text(number))
        provider_of.append(0 if record.provider is None else text(record.provider) + 1)
        fields_of.append([pairs.setdefault((_FIELD_INDEX[f], text(v)), len(pairs)) for f, v in record.fields.items()])
        key_at.append(place(part.locations[number]))
        keys_of.append([text(key) for key in located])
        places_of.append([place(loc) for loc in located.values()])
    digest = {
        "group": group_id,
        "texts": list(texts),
        "pairs": [n for pair in pairs for n in pair],
        "numbers": [number_at, provider_of, fields_of],
        "normalized": [text(n) for pair in normalized for n in pair],
    }
    flat = [n for at in places for n in at]
    return digest, json.dumps([flat, key_at, keys_of, places_of], separators=(",", ":")).encode()


def decode(digest: Any, located: bytes, shown: str, reread: Reread | None = None) -> DesiredState | None:
    """The part :func:`encode` gave ``digest`` and ``located`` for, in ``shown``; None when ``digest`` is malformed.

    ``located`` is decoded when a place is first asked for (``reread``: see :mod:`~numsync.core.located`).
    """
    try:
        return _decode(digest, located, shown, reread)
    except (TypeError, ValueError, KeyError, IndexError):
        return None


def _decode(digest: dict[str, Any], located: bytes, shown: str, reread: Reread | None) -> DesiredState | None:
    group_id, texts, pairs = digest["group"], digest["texts"], digest["pairs"]
    # Every string and integer a record holds comes from these tables: checking them checks the types of all.
    if type(group_id) is not str or not set(map(type, texts)) <= {str} or type(located) is not bytes:
        return None
    if not set(map(type, pairs)) <= {int} or min(pairs, default=0) < 0:
        return None
    values = [(FIELDS[f], texts[t]) for f, t in zip(pairs[::2], pairs[1::2])]
    providers = [None, *texts]
    number_at, provider_of, fields_of = digest["numbers"]
    if len({len(column) for column in digest["numbers"]}) != 1:
        return None
    if min(number_at, default=0) < 0 or min(provider_of, default=0) < 0:
        return None  # a negative index would read another table entry, not fail
    # Column by column through map and zip: no Python-level step per number but NumberRecord's own.
    text, value = texts.__getitem__, values.__getitem__
    numbers = list(map(text, number_at))
    fields = map(dict, map(map, repeat(value), fields_of))
    records = dict(
        zip(numbers, map(NumberRecord, numbers, repeat(group_id), fields, map(providers.__getitem__, provider_of)))
    )
    if len(records) != len(numbers):
        return None  # a number twice: the located columns would not line up
    part = DesiredState(records=records, groups={group_id: Path(shown)})
    places = PartPlaces(shown, numbers, texts, located, reread)
    cast(Located[Location], part.locations).add_part(places)
    cast(Located[dict[str, Location]], part.field_locations).add_part(places)
    normalized = list(map(texts.__getitem__, digest["normalized"]))
    memoize(zip(normalized[::2], normalized[1::2]))
    return part


def file_parts(
    files: Sequence[tuple[Path, str]],
    load: PartLoader,
    managed: set[str] | None,
    default_provider: str | None,
    store: DesiredCache | None,
    workers: int | None,
) -> tuple[list[DesiredState | None], list[str | None]]:
    """Per ``(file, shown path)``: its part read on its own (cached, in a worker, or here), or None; and its cache key.

    None also for a file that cannot be read: the loader reads it again and reports why. The
    keys are None without a cache, and for a file that could not be read.
    """
    parts: list[DesiredState | None] = [None] * len(files)
    keys: list[str | None] = [None] * len(files)
    todo: list[tuple[int, bytes, str, str | None]] = []
    for i, (file, shown) in enumerate(files):
        try:
            data = file.read_bytes()
        except OSError:
            continue
        key = entry_key(data, shown, default_provider, managed) if store is not None else None
        keys[i] = key
        if store is not None and key is not None:
            cached = store.read(key)
            if cached is not None:
                parts[i] = decode(*cached, shown, partial(_reread, file, shown, key, load, managed, default_provider))
                if parts[i] is not None:
                    continue
        todo.append((i, data, shown, key))
    cpus = available_cpus() if workers is None else workers
    forks = "fork" in multiprocessing.get_all_start_methods()  # workers that share this process's imports
    if forks and cpus > 1 and len(todo) > 1 and sum(len(data) for _, data, _, _ in todo) >= PARALLEL_MIN_BYTES:
        done = _in_workers(todo, load, managed, default_provider, store, cpus)
    else:
        done = [_here(item, load, managed, default_provider, store) for item in todo]
    for (i, *_), part in zip(todo, done):
        parts[i] = part
    if store is not None and todo:
        store.prune()
    return parts, keys


def _reread(
    file: Path, shown: str, key: str | None, load: PartLoader, managed: set[str] | None, default_provider: str | None
) -> tuple[dict[str, Location], dict[str, dict[str, Location]]] | None:
    """``file`` read again for its places, if its bytes still give ``key`` (a located text of the wrong shape)."""
    try:
        data = file.read_bytes()
    except OSError:
        return None
    if key is not None and entry_key(data, shown, default_provider, managed) != key:
        return None
    part = load(data, shown, managed, default_provider)
    return (dict(part.locations), dict(part.field_locations)) if part is not None else None


def _here(
    item: tuple[int, bytes, str, str | None],
    load: PartLoader,
    managed: set[str] | None,
    default_provider: str | None,
    store: DesiredCache | None,
) -> DesiredState | None:
    _, data, shown, key = item
    mark = memo_mark()
    part = load(data, shown, managed, default_provider)
    if part is not None and store is not None and key is not None:
        store.put(key, *encode(part, memoized_since(mark)))
    return part


#: What a worker sends back per file: its digest and located text, or None when it has a problem.
Reply = tuple[dict[str, Any], bytes] | None


def _worker(
    chunk: list[tuple[int, bytes, str, str | None]],
    load: PartLoader,
    managed: set[str] | None,
    default_provider: str | None,
    cache_root: Path | None,
) -> list[Reply]:
    """In a worker process: each file's digest and located text (None when it has a problem), stored in the cache too."""
    store = DesiredCache(cache_root) if cache_root is not None else None
    out: list[Reply] = []
    for _, data, shown, key in chunk:
        mark = memo_mark()
        part = load(data, shown, managed, default_provider)
        reply = encode(part, memoized_since(mark)) if part is not None else None
        if reply is not None and store is not None and key is not None:
            store.put(key, *reply)
        out.append(reply)
    return out


def _in_workers(
    todo: list[tuple[int, bytes, str, str | None]],
    load: PartLoader,
    managed: set[str] | None,
    default_provider: str | None,
    store: DesiredCache | None,
    cpus: int,
) -> list[DesiredState | None]:
    """One worker process per CPU reads the files, in chunks; this one decodes each chunk as it comes back.

    Forked workers start in milliseconds and share the loaded modules. This process parses no
    YAML itself: what a parse leaves behind (freed, but not given back to the system) stays in
    the workers, so its peak memory is about that of a load from the cache.
    """
    size = max(1, len(todo) // (cpus * CHUNKS_PER_WORKER))
    chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
    root = store.root if store is not None else None
    parts: list[DesiredState | None] = []
    with ProcessPoolExecutor(max_workers=cpus, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = deque(pool.submit(_worker, chunk, load, managed, default_provider, root) for chunk in chunks)
        for chunk in chunks:
            replies = futures.popleft().result()  # popped: a reply is freed once decoded, not kept to the end
            # a worker's reply is not re-read from the file: it was made from these very bytes
            parts += [decode(*reply, item[2]) if reply is not None else None for item, reply in zip(chunk, replies)]
            del replies
    return parts
