"""CSV codec: parse the numbers export, write operation files.

The export (``POST {base}/api/numbers/csv``) is read defensively: column order is free,
extra columns are ignored, a UTF-8 BOM and CRLF line ends are accepted, NOTE may hold
quoted commas, quotes and newlines. Anything that is not the expected CSV (an HTML
page, a cut-off body, a missing column) raises :class:`ExportFormatError` before any
diff is made. Operation files are written per RFC 4180 (CRLF, minimal quoting).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from sys import intern
from typing import Any

from numsync.core.model import FIELDS, KNOWN_E164, PLAIN_E164, Field, NumberRecord, normalize_number, normalize_value
from numsync.errors import ExportFormatError, NumberFormatError
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import (
    COLUMN,
    GROUP_ID,
    NULL,
    NUMBER,
    OPERATION,
    OPERATION_COLUMNS,
    PROVIDER,
    REQUIRED_EXPORT_COLUMNS,
    Operation,
)


def preview(data: bytes, limit: int = 120) -> str:
    """The first ``limit`` bytes of ``data`` as a printable, single-line repr (for error messages)."""
    head = data[:limit].decode("utf-8", errors="replace")
    suffix = "…" if len(data) > limit else ""
    return repr(head) + suffix


def printable(text: str) -> str:
    """``text`` from an answer (OCP's message) on one line: every character that is not printable (line ends,
    controls, bidi overrides, separators) as a visible escape, so it cannot forge a line or reorder one."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


@dataclass(frozen=True, slots=True)
class ExportRead:
    """The export read: its records, in file order, and warnings about what was accepted but is odd."""

    records: list[NumberRecord]
    warnings: tuple[str, ...] = ()


def parse_export(data: bytes) -> list[NumberRecord]:
    """The records of the export body (:func:`read_export` without its warnings)."""
    return read_export(data).records


def read_export(data: bytes) -> ExportRead:
    """Parse the export body into normalized records, in file order, with warnings.

    Shape: one :class:`NumberRecord` per data row; NUMBER normalized to E.164, values
    normalized with :func:`normalize_value`, empty cells absent.
    Raises ExportFormatError for: undecodable bytes, an HTML page, a missing required
    column (NUMBER, GROUP_ID, MINIAPP_ID, LOCALE, PHONE_NUMBER_SET_ID, APPLICATION_TAG,
    NOTE), a column named twice (case and surrounding spaces aside), a value under a header cell
    without a name (empty unnamed columns are accepted), a row whose cell count differs from the
    header (a cut-off body), a blank NUMBER or GROUP_ID, an unreadable NUMBER, or a NUMBER listed
    twice (after normalization). Messages name the CSV row (1 = first data row) and the column.
    Warnings: header cells without a name whose columns hold no value (accepted: no data is lost, but
    OCP's export names every column, so the file may have been through a spreadsheet).
    """
    return parse_export_stream([data])


def parse_export_stream(chunks: Iterable[bytes]) -> ExportRead:
    """:func:`read_export` over the body as it arrives (``chunks``: e.g. an HTTP response's ``iter_bytes()``).

    The CSV reader pulls bytes as it needs them, so the body is never held whole — neither as
    bytes nor as text — only the records made from it. The checks and messages are those of
    :func:`read_export`; a body that is not UTF-8 is reported at its first bad byte, counted
    from 0 over the whole body, with the row and column it is in (rows before it are checked first).
    An exception the chunks raise (a connection broken mid-body) passes through unchanged.
    """
    stream = _ExportBytes(iter(chunks))
    head = stream.head
    if head.decode("utf-8-sig", errors="replace").lstrip()[:1] == "<":
        raise ExportFormatError(f"the export is an HTML or XML page, not CSV; it starts with {preview(head)}")
    # newline="" recognizes line ends as the csv module wants; the BOM is dropped by utf-8-sig
    # surrogateescape: a bad byte reaches the reader as a lone surrogate, so _rows can name its row and column;
    # the stream itself has found it (stream.bad_byte) by then, and the body is refused either way
    text = io.TextIOWrapper(io.BufferedReader(stream), encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        _refuse_bad_byte(stream)
        raise ExportFormatError("the export is empty: not even a header row") from None
    except csv.Error as exc:
        raise ExportFormatError(f"the export header is not CSV ({exc}); it starts with {preview(head)}") from None
    if stream.bad_byte is not None and any(_ESCAPED.search(cell) for cell in header):
        _refuse_bad_byte(stream, "the export header")
    columns = [name.strip().upper() for name in header]
    _check_names_unique(header, columns)
    missing = [c for c in REQUIRED_EXPORT_COLUMNS if c not in columns]
    if missing:
        raise ExportFormatError(
            f"the export lacks column(s) {', '.join(missing)}; its header is {', '.join(columns) or '(empty)'}"
        )
    index = {name: columns.index(name) for name in REQUIRED_EXPORT_COLUMNS}
    records = _rows(reader, columns, index, stream)
    _refuse_bad_byte(stream)  # a bad byte in no cell (a blank row, a cut-off last character)
    unnamed = [str(position) for position, name in enumerate(columns, 1) if not name]
    warnings: tuple[str, ...] = ()
    if unnamed:
        warnings = (
            f"the export's header has no name in column(s) {', '.join(unnamed)} (of {len(columns)}); every value "
            "under them is empty, so they were ignored. OCP's export names each column: if this file was edited "
            "(a spreadsheet adds such columns), export it again from OCP",
        )
    return ExportRead(records, warnings)


#: Bytes of the body's start kept for the HTML check and for messages.
HEAD_BYTES = 120


#: A byte that is not UTF-8, as the surrogateescape error handler passes it on.
_ESCAPED = re.compile("[\udc80-\udcff]")


def _refuse_bad_byte(stream: _ExportBytes, where: str = "the export") -> None:
    """Raises ExportFormatError when the body held a byte that is not UTF-8; ``where``: its row and column, if known."""
    if stream.bad_byte is not None:
        raise ExportFormatError(
            f"{where} is not UTF-8 text (byte {stream.bad_byte}); the body starts with {preview(stream.head)}. "
            "OCP exports UTF-8: export again, and if the byte stays, fix that value in OCP"
        )


class _ExportBytes(io.RawIOBase):
    """The export body as a readable stream over its chunks, checked to be UTF-8 as it passes.

    ``head``: the first :data:`HEAD_BYTES` bytes and one more (or all, if fewer), read on creation.
    ``bad_byte``: the offset in the whole body of the first byte that is not UTF-8, once read past.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")  # what is left of the chunk being read
        self._queued: list[bytes] = []  # chunks pulled for the head, not yet read (never copied)
        self._offset = 0  # bytes of the body checked so far
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._ended = False
        self.bad_byte: int | None = None
        self.head = b""
        while len(self.head) <= HEAD_BYTES:  # one byte more: a preview then says the body goes on ("…")
            chunk = self._next()
            if chunk is None:
                break
            self._queued.append(chunk)
            self.head += chunk[: HEAD_BYTES + 1 - len(self.head)]

    def _next(self) -> bytes | None:
        """The next non-empty chunk, checked; None at the end of the body."""
        while not self._ended:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._ended = True
                self._check(b"", final=True)
            elif chunk:
                self._check(chunk)
                return chunk
        return None

    def _check(self, chunk: bytes, *, final: bool = False) -> None:
        if self.bad_byte is None:  # the first bad byte is the one reported; past it nothing is checked
            carried = len(self._utf8.getstate()[0])  # an unfinished character from the chunk before
            try:
                self._utf8.decode(chunk, final)
            except UnicodeDecodeError as exc:
                self.bad_byte = self._offset - carried + exc.start
        self._offset += len(chunk)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            chunk = self._queued.pop(0) if self._queued else self._next()
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _check_names_unique(header: Sequence[str], columns: Sequence[str]) -> None:
    """Raises ExportFormatError when two header cells name one column (case and surrounding spaces aside):
    which of them holds the values would be a guess."""
    first: dict[str, int] = {}
    for position, name in enumerate(columns, 1):
        if not name:
            continue
        if name in first:
            raise ExportFormatError(
                f"export header, column {position}: {header[position - 1]!r} names column {name} again "
                f"(first as {header[first[name] - 1]!r} in column {first[name]}); OCP's export names each column "
                "once, so this file was changed or made elsewhere: export it again from OCP"
            )
        first[name] = position


def _check_unnamed_cells(cells: Sequence[str], unnamed: Sequence[int], row_no: int) -> None:
    """Raises ExportFormatError for a value under a header cell without a name (the columns are out of line)."""
    for position in unnamed:
        if cells[position].strip():
            raise ExportFormatError(
                f"export row {row_no}, column {position + 1}: {cells[position].strip()[:40]!r} is under a header "
                "cell without a name, so numsync cannot tell which column it belongs to; export the numbers "
                "again from OCP, or give that column its name"
            )


#: Distinct cell texts remembered per column while reading an export (beyond it, cells are normalized each time).
MEMO_LIMIT = 4096


def _rows(
    reader: Iterable[list[str]], columns: list[str], index: dict[str, int], stream: _ExportBytes
) -> list[NumberRecord]:
    records: list[NumberRecord] = []
    seen: dict[str, int] = {}
    row_no = 0
    # (field, its column, its memo: cell text → the value normalized and interned, "" for none). A tenant
    # repeats a few miniapps, locales, sets and groups across all its numbers, so most cells are one dict
    # lookup, and each distinct value is one string (a 1M-row export then fits in well under 1 GB).
    # NOTE has no memo: notes rarely repeat.
    field_columns: tuple[tuple[Field, int, dict[str, str] | None], ...] = tuple(
        (f, index[COLUMN[f]], {} if f is not Field.NOTE else None) for f in FIELDS
    )
    groups: dict[str, str] = {}
    unnamed = [position for position, name in enumerate(columns) if not name]  # empty ones are accepted
    width = len(columns)
    at_number, at_group = index[NUMBER], index[GROUP_ID]
    add = records.append
    known = KNOWN_E164.get  # the numbers the desired files named: no call per row
    try:
        for cells in reader:
            # The per-row work is inline, not in a helper: it runs for every one of 100,000+ rows.
            if stream.bad_byte is not None:  # read ahead of the reader: find the row and cell that hold it (before the
                # cell count: a body cut at a bad byte is a bad byte, not a short row)
                for position, cell in enumerate(cells):
                    if _ESCAPED.search(cell):
                        name = columns[position] if position < len(columns) and columns[position] else position + 1
                        _refuse_bad_byte(stream, f"export row {row_no + 1}, column {name}")
            listed = cells[at_number].strip() if len(cells) == width else ""
            if not listed:  # a row with a NUMBER is not blank: only the others are looked at whole
                if not "".join(cells).strip():  # every cell blank (one C call rather than one per cell)
                    continue
                if len(cells) != width:
                    raise ExportFormatError(
                        f"export row {row_no + 1} has {len(cells)} cells but the header has {width}; "
                        "the response may have been cut off"
                    )
            row_no += 1
            if unnamed:
                _check_unnamed_cells(cells, unnamed, row_no)
            raw_number = cells[at_number]
            group_id = groups.get(cells[at_group])
            if group_id is None:
                group_id = intern(cells[at_group].strip())
                if len(groups) < MEMO_LIMIT:
                    groups[cells[at_group]] = group_id
            if not listed or not group_id:
                _blank_required(cells, index, row_no)
            try:
                number = known(raw_number) or normalize_number(raw_number)
            except NumberFormatError as exc:
                raise ExportFormatError(f"export row {row_no}: NUMBER {exc}") from None
            if number in seen:
                form = f" (as {listed!r})" if listed != number else ""
                raise ExportFormatError(
                    f"export row {row_no}: NUMBER {number}{form} is listed again (first in row {seen[number]})"
                )
            seen[number] = row_no
            values: dict[Field, str] = {}
            for f, column, memo in field_columns:
                raw = cells[column]
                if not raw:  # an empty cell is an absent value
                    continue
                if memo is None:
                    value = normalize_value(f, raw) or ""
                else:
                    remembered = memo.get(raw)
                    if remembered is not None:
                        value = remembered
                    else:
                        value = intern(normalize_value(f, raw) or "")
                        if len(memo) < MEMO_LIMIT:
                            memo[raw] = value
                if value:
                    values[f] = value
            add(NumberRecord(number, group_id, values, None, None if listed == number else listed))
    except csv.Error as exc:
        raise ExportFormatError(
            f"export row {row_no + 1} is not valid CSV ({exc}); the response may have been cut off"
        ) from None
    return records


def _blank_required(cells: Sequence[str], index: dict[str, int], row_no: int) -> None:
    """Raises ExportFormatError for the first of NUMBER, GROUP_ID that is blank in ``cells``."""
    for required in (NUMBER, GROUP_ID):
        if not cells[index[required]].strip():
            raise ExportFormatError(
                f"export row {row_no}, column {required} (column {index[required] + 1}) is blank; every row of OCP's "
                "export is one number in one group: export the numbers again from OCP"
            )


_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe_cell(column: str, value: str) -> str:
    """``value`` made safe to open in a spreadsheet: a leading ``'`` where it would run as a formula."""
    # A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
    # An E.164 NUMBER keeps its "+": digits only, never a formula. A number the export listed
    # in another form ("+44-20-7946-0959") would be computed, so it is quoted like the rest.
    if value.startswith(_FORMULA_PREFIXES) and value != NULL and not (column == NUMBER and PLAIN_E164.fullmatch(value)):
        return "'" + value
    return value


def write_operations(rows: Iterable[OperationRow], *, spreadsheet_safe: bool = False) -> bytes:
    """One operation file for ``PUT {base}/api/numbers/csv``, as UTF-8 bytes.

    Columns: OPERATION and NUMBER always, plus every other :data:`OPERATION_COLUMNS` column
    that some row sets (PROVIDER appears whenever a Create row is present), in that order.
    Empty cells mean "leave as is". ``spreadsheet_safe`` prefixes cells a spreadsheet would
    run as a formula with ``'`` — for files meant for people, never for upload.
    """
    rows = list(rows)
    used = {OPERATION, NUMBER}
    for row in rows:
        used.update(k for k, v in row.values.items() if v)
        if row.operation is Operation.CREATE:
            used.add(PROVIDER)  # the vendor requires the column whenever a row acquires a number
    columns = [c for c in OPERATION_COLUMNS if c in used]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        cells = row.cells()
        if spreadsheet_safe:
            writer.writerow([spreadsheet_safe_cell(c, cells[c]) for c in columns])
        else:
            writer.writerow([cells[c] for c in columns])
    return out.getvalue().encode("utf-8")


def upload_file_name(phase: int, batch: int) -> str:
    """The file name of one batch (both 1-based), as uploaded and as written by ``--emit-csv``."""
    return f"phase{phase:02d}-batch{batch:03d}.csv"
