"""The emulator's HTTP surface: a Starlette app over a :class:`TenantState`.

Routes (see the package docstring for every behaviour choice):

- ``POST /auth/realms/master/protocol/openid-connect/token`` — Keycloak-shaped token endpoint.
- ``POST /integrations/api/numbers/csv`` — export CSV.
- ``PUT  /integrations/api/numbers/csv`` — execute an operation CSV.
- ``/_emulator/...`` — unauthenticated admin endpoints (stats, state, out-of-band edits, reset).
"""

from __future__ import annotations

import copy
import csv
import email.utils
import hmac
import io
import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import phonenumbers
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from numsync.emulator.state import (
    EXPORT_COLUMNS,
    OWNER,
    STORED_COLUMNS,
    WRITABLE_COLUMNS,
    NumberRow,
    TenantState,
    User,
    save_state,
)
from numsync.emulator.twofactor import TwoFactor

TOKEN_PATH = "/auth/realms/master/protocol/openid-connect/token"
#: Form field of the password grant that carries the two-factor code (vendor documentation).
OTP_FIELD = "otp"
NUMBERS_CSV_PATH = "/integrations/api/numbers/csv"
CLIENT_ID = "ocp"

#: The literal that clears a field in an operation row.
NULL = "<NULL>"
#: OPERATION values, canonical spelling (matched case-insensitively).
OPERATIONS: tuple[str, ...] = ("Create", "Update", "Attach", "Detach", "Delete")
#: Columns an operation file may have (matched case-insensitively, any order).
OPERATION_COLUMNS: tuple[str, ...] = (
    "OPERATION",
    "GROUP_ID",
    "NUMBER",
    "PROVIDER",
    "MINIAPP_ID",
    "PHONE_NUMBER_SET_ID",
    "APPLICATION_TAG",
    "LOCALE",
    "NOTE",
)
#: Rows per operation type and uploaded file, unless overridden by ``limits``.
DEFAULT_LIMITS: dict[str, int] = {"Update": 800, "Attach": 800, "Detach": 100, "Delete": 10, "Create": 100}
#: Columns each operation reads besides OPERATION and NUMBER; other non-empty cells are ignored.
OPERATION_READS: dict[str, tuple[str, ...]] = {
    "Create": ("GROUP_ID", "PROVIDER"),
    "Update": ("GROUP_ID", *WRITABLE_COLUMNS),
    "Attach": ("GROUP_ID", "MINIAPP_ID", "LOCALE"),
    "Detach": ("GROUP_ID",),
    "Delete": ("GROUP_ID",),
}
#: Columns ``PATCH /_emulator/numbers/{number}`` may set.
ADMIN_COLUMNS: tuple[str, ...] = tuple(c for c in STORED_COLUMNS if c != "NUMBER")

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|[0-9]{3}))?$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_CSV_TYPES = ("text/csv", "application/csv")
_MAX_LISTED = 5

Clock = Callable[[], float]


class RequestRefused(Exception):
    """An HTTP error answer: ``status``, a short ``code`` and a human ``message`` (JSON body)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> JSONResponse:
        """``{"error": code, "message": message, **extra}`` with ``status``."""
        headers = {"WWW-Authenticate": 'Bearer realm="ocp"'} if self.status == 401 else None
        return JSONResponse({"error": self.code, "message": self.message, **self.extra}, self.status, headers=headers)


class RowRefused(Exception):
    """A row of an operation file that could not be applied; the message goes into its result."""


# ---------------------------------------------------------------------------
# tokens


@dataclass(slots=True)
class _Grant:
    username: str
    expires_at: float


class TokenStore:
    """Opaque bearer tokens in memory. Expiry is measured with ``clock()`` in seconds."""

    def __init__(self, clock: Clock, access_ttl: int, refresh_ttl: int) -> None:
        self._clock, self.access_ttl, self.refresh_ttl = clock, access_ttl, refresh_ttl
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}

    def issue(self, username: str) -> dict[str, Any]:
        """A new access + refresh token pair for ``username``, as the Keycloak token answer."""
        now = self._clock()
        self._purge(now)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._access[access] = _Grant(username, now + self.access_ttl)
        self._refresh[refresh] = _Grant(username, now + self.refresh_ttl)
        return {
            "access_token": access,
            "expires_in": self.access_ttl,
            "refresh_token": refresh,
            "refresh_expires_in": self.refresh_ttl,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "email profile",
        }

    def access_user(self, token: str) -> str | None:
        """The username of a live access token; None when unknown or expired."""
        return self._live(self._access, token)

    def refresh_user(self, token: str) -> str | None:
        """The username of a live refresh token; None when unknown or expired."""
        return self._live(self._refresh, token)

    def _live(self, table: dict[str, _Grant], token: str) -> str | None:
        grant = table.get(token)
        if grant is None:
            return None
        if grant.expires_at <= self._clock():
            del table[token]
            return None
        return grant.username

    def _purge(self, now: float) -> None:
        for table in (self._access, self._refresh):
            for token in [t for t, g in table.items() if g.expires_at <= now]:
                del table[token]


# ---------------------------------------------------------------------------
# operation files


@dataclass(frozen=True, slots=True)
class OpRow:
    """One data row of an operation file.

    ``index`` is the 1-based data row (header and blank lines not counted),
    ``operation`` the canonical OPERATION, ``cells`` maps UPPERCASE column -> cell
    stripped of surrounding whitespace (``""`` = leave as is, :data:`NULL` = clear).
    """

    index: int
    operation: str
    cells: dict[str, str]

    @property
    def number(self) -> str:
        """The NUMBER cell."""
        return self.cells.get("NUMBER", "")

    def value(self, column: str) -> str:
        """The cell of ``column``, ``""`` when the column is absent."""
        return self.cells.get(column, "")


def decode_csv_bytes(data: bytes) -> str:
    """UTF-8 text of an upload, without a BOM. Raises RequestRefused 400 ``bad_encoding``."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestRefused(
            400, "bad_encoding", f"the file is not UTF-8: byte {exc.start} cannot be decoded", applied=0
        ) from None


def parse_operation_file(text: str) -> tuple[list[str], list[OpRow]]:
    """Header (UPPERCASE) and rows of an operation CSV.

    Raises RequestRefused 400 for: no header (``empty_file``), unreadable CSV or a row whose
    cell count differs from the header (``bad_csv``), a duplicate or unknown column
    (``unknown_column``/``duplicate_column``), no OPERATION or NUMBER column
    (``missing_column``), an OPERATION value outside :data:`OPERATIONS` (``invalid_operation``).
    """
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise RequestRefused(400, "bad_csv", f"the file is not valid CSV: {exc}", applied=0) from None
    if not records:
        raise RequestRefused(400, "empty_file", "the file has no header row", applied=0)
    header = _check_header(records[0])
    rows = [_op_row(index, header, record) for index, record in enumerate(records[1:], start=1)]
    return header, rows


def _check_header(raw: list[str]) -> list[str]:
    header = [c.strip().upper() for c in raw]
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise RequestRefused(
            400, "duplicate_column", f"column {', '.join(duplicates)} appears more than once", applied=0
        )
    unknown = [c or "(empty)" for c in header if c not in OPERATION_COLUMNS]
    if unknown:
        raise RequestRefused(
            400,
            "unknown_column",
            f"unknown column {', '.join(unknown)}; allowed columns are {', '.join(OPERATION_COLUMNS)}",
            applied=0,
        )
    for required in ("OPERATION", "NUMBER"):
        if required not in header:
            raise RequestRefused(400, "missing_column", f"the file has no {required} column", applied=0)
    return header


def _op_row(index: int, header: list[str], record: list[str]) -> OpRow:
    if len(record) != len(header):
        raise RequestRefused(
            400, "bad_csv", f"row {index} has {len(record)} cells but the header has {len(header)}", applied=0
        )
    cells = {column: cell.strip() for column, cell in zip(header, record)}
    canonical = {op.lower(): op for op in OPERATIONS}.get(cells["OPERATION"].lower())
    if canonical is None:
        raise RequestRefused(
            400,
            "invalid_operation",
            f"row {index}: OPERATION {cells['OPERATION']!r} is not one of {', '.join(OPERATIONS)}",
            applied=0,
        )
    return OpRow(index, canonical, cells)


def check_file(state: TenantState, user: User, header: list[str], rows: list[OpRow], limits: Mapping[str, int]) -> None:
    """File-level checks after parsing, in this order; any failure raises RequestRefused and nothing is applied.

    PROVIDER column when a row is a Create (400 ``missing_column``); rows per operation
    within ``limits`` (400 ``limit_exceeded``, message ``Delete: 11 rows exceed the limit
    of 10 per file``); permission on the group of every number touched (403 ``forbidden``);
    no NUMBER twice in the file (400 ``duplicate_number``).
    """
    if "PROVIDER" not in header and any(r.operation == "Create" for r in rows):
        first = next(r.index for r in rows if r.operation == "Create")
        raise RequestRefused(
            400, "missing_column", f"the file has Create rows (first: row {first}) but no PROVIDER column", applied=0
        )
    _check_limits(rows, limits)
    _check_permissions(state, user, rows)
    _check_duplicates(rows)


def _check_limits(rows: list[OpRow], limits: Mapping[str, int]) -> None:
    counts = Counter(r.operation for r in rows)
    over = [
        f"{op}: {counts[op]} rows exceed the limit of {limits[op]} per file"
        for op in OPERATIONS
        if counts[op] > limits[op]
    ]
    if over:
        raise RequestRefused(400, "limit_exceeded", "; ".join(over), applied=0)


def _groups_touched(state: TenantState, row: OpRow) -> list[str]:
    """Groups a row needs permission on: the number's current group, and for Create the row's GROUP_ID."""
    groups = []
    existing = state.numbers.get(row.number)
    if existing is not None:
        groups.append(existing.group_id)
    if row.operation == "Create" and row.value("GROUP_ID") not in ("", NULL):
        groups.append(row.value("GROUP_ID"))
    return groups


def _check_permissions(state: TenantState, user: User, rows: list[OpRow]) -> None:
    offending = []
    for row in rows:
        denied = [g for g in _groups_touched(state, row) if not user.may_access(g)]
        if denied:
            offending.append(f"row {row.index} ({row.number}, group {denied[0]})")
    if offending:
        more = f" and {len(offending) - _MAX_LISTED} more" if len(offending) > _MAX_LISTED else ""
        raise RequestRefused(
            403,
            "forbidden",
            f"user {user.username} has no permission on the group of {', '.join(offending[:_MAX_LISTED])}{more}",
            applied=0,
        )


def _check_duplicates(rows: list[OpRow]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if not row.number:
            continue
        if row.number in seen:
            raise RequestRefused(
                400,
                "duplicate_number",
                f"NUMBER {row.number} appears in rows {seen[row.number]} and {row.index}; one row per number and file",
                applied=0,
            )
        seen[row.number] = row.index


# ---------------------------------------------------------------------------
# row operations


def apply_row(state: TenantState, row: OpRow) -> str:
    """Apply one row to ``state``; returns a short success message. Raises RowRefused (nothing changed)."""
    if not row.number:
        raise RowRefused("NUMBER is required")
    message = _HANDLERS[row.operation](state, row)
    ignored = [
        c for c in row.cells if c not in ("OPERATION", "NUMBER", *OPERATION_READS[row.operation]) and row.cells[c]
    ]
    if ignored:
        message += f" (ignored on {row.operation}: {', '.join(ignored)})"
    return message


def _create(state: TenantState, row: OpRow) -> str:
    missing = [c for c in ("GROUP_ID", "NUMBER", "PROVIDER") if row.value(c) in ("", NULL)]
    if missing:
        raise RowRefused(f"Create needs {', '.join(missing)}")
    number, group_id = row.number, row.value("GROUP_ID")
    _check_e164(number)
    if group_id not in state.groups:
        raise RowRefused(f"unknown GROUP_ID {group_id}")
    if number in state.numbers:
        raise RowRefused("number already exists")
    state.numbers[number] = NumberRow(number, group_id, provider=row.value("PROVIDER"))
    return "created"


def _check_e164(number: str) -> None:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if (
        not _E164.match(number)
        or parsed is None
        or not phonenumbers.is_valid_number(parsed)
        or phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != number
    ):
        raise RowRefused(f"NUMBER {number} is not a valid E.164 number")


def _existing(state: TenantState, row: OpRow) -> NumberRow:
    """The number a non-Create row works on; checks a given GROUP_ID matches. Raises RowRefused."""
    current = state.numbers.get(row.number)
    if current is None:
        raise RowRefused("unknown number")
    given = row.value("GROUP_ID")
    if given and given != current.group_id:
        raise RowRefused(f"GROUP_ID cannot be changed (the number is in {current.group_id}, the row says {given})")
    return current


def _check_miniapp(state: TenantState, number: NumberRow, miniapp_id: str) -> None:
    app = state.miniapps.get(miniapp_id)
    if app is None:
        raise RowRefused(f"unknown MINIAPP_ID {miniapp_id}")
    if app.group != number.group_id:
        raise RowRefused(f"MINIAPP_ID {miniapp_id} belongs to group {app.group}, not {number.group_id}")


def _check_set(state: TenantState, number: NumberRow, set_id: str) -> None:
    group = state.groups.get(number.group_id)
    if group is None or set_id not in group.phone_number_sets:
        owner = state.set_owner(set_id)
        where = f"it belongs to group {owner}" if owner else "no group has it"
        raise RowRefused(f"PHONE_NUMBER_SET_ID {set_id} is not a set of group {number.group_id} ({where})")


def _check_locale(locale: str) -> None:
    if not _LOCALE.match(locale):
        raise RowRefused(f"LOCALE {locale!r} is not a language tag like en-US")


def _update(state: TenantState, row: OpRow) -> str:
    number = _existing(state, row)
    changes = {c: ("" if row.value(c) == NULL else row.value(c)) for c in WRITABLE_COLUMNS if row.value(c)}
    if changes.get("MINIAPP_ID"):
        _check_miniapp(state, number, changes["MINIAPP_ID"])
    if changes.get("PHONE_NUMBER_SET_ID"):
        _check_set(state, number, changes["PHONE_NUMBER_SET_ID"])
    if changes.get("LOCALE"):
        _check_locale(changes["LOCALE"])
    attached_after = changes.get("MINIAPP_ID", number.miniapp_id)
    locale_after = changes.get("LOCALE", number.locale)
    attaching = bool(changes.get("MINIAPP_ID")) and not number.attached
    clearing_locale = changes.get("LOCALE") == ""
    if attached_after and not locale_after and (attaching or clearing_locale):
        raise RowRefused("an attached number needs a LOCALE: give LOCALE on the row or keep the one it has")
    changed = [c for c, v in changes.items() if number.get(c) != v]
    for column in changed:
        number.set(column, changes[column])
    return f"updated {', '.join(changed)}" if changed else "no change"


def _attach(state: TenantState, row: OpRow) -> str:
    number = _existing(state, row)
    missing = [c for c in ("MINIAPP_ID", "LOCALE") if row.value(c) in ("", NULL)]
    if missing:
        raise RowRefused(f"Attach needs {' and '.join(missing)}")
    _check_miniapp(state, number, row.value("MINIAPP_ID"))
    _check_locale(row.value("LOCALE"))
    number.miniapp_id, number.locale = row.value("MINIAPP_ID"), row.value("LOCALE")
    return f"attached to {state.miniapps[number.miniapp_id].name}"


def _detach(state: TenantState, row: OpRow) -> str:
    number = _existing(state, row)
    if not number.attached:
        return "not attached; nothing to do"
    number.miniapp_id = ""
    return "detached"


def _delete(state: TenantState, row: OpRow) -> str:
    number = _existing(state, row)
    if number.attached:
        raise RowRefused(f"the number is attached to {number.miniapp_id}: detach it first")
    del state.numbers[number.number]
    return "deleted"


_HANDLERS: dict[str, Callable[[TenantState, OpRow], str]] = {
    "Create": _create,
    "Update": _update,
    "Attach": _attach,
    "Detach": _detach,
    "Delete": _delete,
}


def execute_rows(state: TenantState, rows: Iterable[OpRow]) -> dict[str, Any]:
    """Apply rows in file order, each on its own (not atomic across rows).

    Returns ``{"applied": N, "failed": M, "results": [{"row", "NUMBER", "OPERATION",
    "status": "applied"|"failed", "message"}]}``.
    """
    results = []
    for row in rows:
        try:
            message, status = apply_row(state, row), "applied"
        except RowRefused as exc:
            message, status = str(exc), "failed"
        results.append(
            {"row": row.index, "NUMBER": row.number, "OPERATION": row.operation, "status": status, "message": message}
        )
    applied = sum(1 for r in results if r["status"] == "applied")
    return {"applied": applied, "failed": len(results) - applied, "results": results}


# ---------------------------------------------------------------------------
# export


def export_filter(body: bytes) -> set[str] | None:
    """Groups to export from the optional request body: ``{"group_ids": [...]}`` filters, anything else does not.

    Raises RequestRefused 400 ``invalid_filter`` when ``group_ids`` is present but not a list of strings.
    """
    try:
        data = json.loads(body.decode("utf-8-sig")) if body.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "group_ids" not in data:
        return None
    groups = data["group_ids"]
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise RequestRefused(400, "invalid_filter", "group_ids must be a list of GROUP_ID strings")
    return set(groups)


def export_csv(state: TenantState, user: User, groups: set[str] | None) -> str:
    """The export CSV text: header of :data:`EXPORT_COLUMNS`, then visible rows sorted by NUMBER (CRLF, RFC 4180 quoting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for key in sorted(state.numbers):
        row = state.numbers[key]
        if user.may_access(row.group_id) and (groups is None or row.group_id in groups):
            exported = state.export_row(row)
            writer.writerow([exported[c] for c in EXPORT_COLUMNS])
    return out.getvalue()


def public_state(state: TenantState) -> dict[str, Any]:
    """What ``GET /_emulator/state`` shows: numbers as 12-column rows, groups, sets, miniapps, users without passwords."""
    return {
        "groups": {
            gid: {"country": g.country, "phone_number_sets": list(g.phone_number_sets)}
            for gid, g in sorted(state.groups.items())
        },
        "phone_number_sets": [
            {"PHONE_NUMBER_SET_ID": s, "GROUP_ID": gid}
            for gid, g in sorted(state.groups.items())
            for s in g.phone_number_sets
        ],
        "miniapps": [
            {
                "MINIAPP_ID": m.id,
                "MINIAPP_NAME": m.name,
                "MINIAPP_TYPE": m.type,
                "MINIAPP_GROUP": m.group,
                "MINIAPP_DIAMANT_APP_NAME": m.diamant_app_name,
            }
            for _, m in sorted(state.miniapps.items())
        ],
        "numbers": [state.export_row(state.numbers[n]) for n in sorted(state.numbers)],
        "users": [u.public_json() for _, u in sorted(state.users.items())],
    }


# ---------------------------------------------------------------------------
# the app


@dataclass(slots=True)
class Stats:
    """Request counters shown by ``GET /_emulator/stats``."""

    put_requests: int = 0
    export_requests: int = 0
    token_requests: int = 0
    rows_applied: int = 0
    #: Password logins whose two-factor code was accepted, refused, and refused because it was used before.
    otp_accepted: int = 0
    otp_refused: int = 0
    otp_reused: int = 0
    #: PUTs between their arrival and their answer now, and the most there ever were at once
    #: (counted outside the fault layer, so an injected latency counts as time in flight).
    puts_in_flight: int = 0
    max_puts_in_flight: int = 0


class CountPutsInFlight:
    """The outermost ASGI layer: counts the PUTs of operation files in flight in ``stats``.

    Uploads are handled one at a time in the event loop (a file is checked and applied without
    an await in between, so concurrent PUTs never interleave their rows); only waiting — an
    injected latency, reading the body — overlaps. This counter shows how much a client overlaps.
    """

    def __init__(self, app: Any, stats: Stats) -> None:
        self.app, self.stats = app, stats

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "PUT" or scope.get("path") != NUMBERS_CSV_PATH:
            await self.app(scope, receive, send)
            return
        stats = self.stats
        stats.puts_in_flight += 1
        stats.max_puts_in_flight = max(stats.max_puts_in_flight, stats.puts_in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            stats.puts_in_flight -= 1


@dataclass(slots=True)
class Emulator:
    """The running emulator: current and initial state, limits, tokens, counters. Reachable as ``app.state.emulator``."""

    state: TenantState
    initial: TenantState
    limits: dict[str, int]
    tokens: TokenStore
    persist_path: str | os.PathLike[str] | None = None
    stats: Stats = field(default_factory=Stats)
    two_factor: TwoFactor | None = None
    clock: Clock = time.time
    #: Every row OCP carried out, in order (``GET /_emulator/log``): what a chaos run audits.
    log: list[dict[str, Any]] = field(default_factory=list)

    def persist(self) -> None:
        """Save the state file, when there is one."""
        if self.persist_path is not None:
            save_state(self.state, self.persist_path)

    def user_of(self, request: Request) -> User:
        """The user behind the request's bearer token. Raises RequestRefused 401."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestRefused(401, "unauthorized", "missing bearer token: send Authorization: Bearer <access_token>")
        username = self.tokens.access_user(token.strip())
        user = self.state.users.get(username) if username else None
        if user is None:
            raise RequestRefused(401, "invalid_token", "the access token is unknown or expired")
        return user


def merge_limits(limits: Mapping[str, int] | None) -> dict[str, int]:
    """:data:`DEFAULT_LIMITS` overridden by ``limits`` (operation names case-insensitive). Raises ValueError."""
    merged = dict(DEFAULT_LIMITS)
    canonical = {op.lower(): op for op in OPERATIONS}
    for name, value in (limits or {}).items():
        op = canonical.get(name.lower())
        if op is None:
            raise ValueError(f"unknown operation {name!r} in limits; expected one of {', '.join(OPERATIONS)}")
        if value < 0:
            raise ValueError(f"limit for {op} must not be negative")
        merged[op] = int(value)
    return merged


Handler = Callable[[Emulator, Request], Awaitable[Response]]


def _endpoint(emulator: Emulator, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(emulator, request)
        except RequestRefused as exc:
            return exc.response()

    return endpoint


async def _token(emu: Emulator, request: Request) -> Response:
    emu.stats.token_requests += 1
    form = await request.form()
    if form.get("client_id") != CLIENT_ID:
        return JSONResponse(
            {"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}, 401
        )
    grant = form.get("grant_type")
    if grant == "password":
        user = emu.state.users.get(str(form.get("username") or ""))
        password = str(form.get("password") or "")
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid user credentials"}, 401)
        if emu.two_factor is not None:
            code = str(form.get(OTP_FIELD) or "")
            refusal, reused = emu.two_factor.check(user.username, code, emu.clock(), user.totp_secret)
            if refusal is not None:
                emu.stats.otp_refused += 1
                emu.stats.otp_reused += reused
                return JSONResponse({"error": "invalid_grant", "error_description": refusal}, 401)
            emu.stats.otp_accepted += 1
        return JSONResponse(emu.tokens.issue(user.username))
    if grant == "refresh_token":
        username = emu.tokens.refresh_user(str(form.get("refresh_token") or ""))
        if username is None or username not in emu.state.users:
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid refresh token"}, 400)
        return JSONResponse(emu.tokens.issue(username))
    return JSONResponse({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}, 400)


async def _export(emu: Emulator, request: Request) -> Response:
    emu.stats.export_requests += 1
    user = emu.user_of(request)
    groups = export_filter(await request.body())
    return Response(export_csv(emu.state, user, groups), media_type="text/csv; charset=utf-8")


async def _upload_text(request: Request) -> str:
    """The operation CSV of a PUT: multipart field ``file`` or a raw ``text/csv`` body. Raises RequestRefused."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form() as form:
            upload = form.get("file")
            if upload is None:
                fields = ", ".join(sorted(form.keys())) or "none"
                raise RequestRefused(
                    400, "missing_file", f"the multipart upload has no field named file (fields: {fields})", applied=0
                )
            data = await upload.read() if isinstance(upload, UploadFile) else upload.encode("utf-8")
    elif content_type in _CSV_TYPES:
        data = await request.body()
    else:
        raise RequestRefused(
            415,
            "unsupported_media_type",
            f"send the CSV as multipart/form-data (field file) or as a text/csv body, not {content_type or 'no content type'}",
            applied=0,
        )
    return decode_csv_bytes(data)


async def _execute(emu: Emulator, request: Request) -> Response:
    emu.stats.put_requests += 1
    user = emu.user_of(request)
    if user.role != OWNER:
        raise RequestRefused(
            403, "forbidden", f"user {user.username} has role {user.role}; writing needs the {OWNER} role", applied=0
        )
    header, rows = parse_operation_file(await _upload_text(request))
    check_file(emu.state, user, header, rows, emu.limits)
    before = {row.number: _snapshot(emu.state, row.number) for row in rows}
    outcome = execute_rows(emu.state, rows)
    for row, result in zip(rows, outcome["results"]):
        emu.log.append(
            {
                "OPERATION": row.operation,
                "NUMBER": row.number,
                "cells": {k: v for k, v in row.cells.items() if v},
                "status": result["status"],
                "message": result["message"],
                "changed": before[row.number] != _snapshot(emu.state, row.number),
            }
        )
    emu.stats.rows_applied += outcome["applied"]
    if outcome["applied"]:
        emu.persist()
    return JSONResponse(outcome)


def _snapshot(state: TenantState, number: str) -> dict[str, str] | None:
    row = state.numbers.get(number)
    return row.to_json() if row is not None else None


async def _log(emu: Emulator, request: Request) -> Response:
    return JSONResponse(emu.log)


async def _stats(emu: Emulator, request: Request) -> Response:
    return JSONResponse(asdict(emu.stats))


async def _state(emu: Emulator, request: Request) -> Response:
    return JSONResponse(public_state(emu.state))


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RequestRefused(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise RequestRefused(400, "bad_json", "the body must be a JSON object")
    return data


def _admin_values(data: Mapping[str, Any], allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise RequestRefused(
            400, "unknown_column", f"unknown or read-only column {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    bad = [k for k, v in data.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise RequestRefused(400, "bad_value", f"values must be strings or null: {', '.join(bad)}")
    return {k: ("" if v is None else v) for k, v in data.items()}


def _admin_number(emu: Emulator, request: Request) -> NumberRow:
    number = request.path_params["number"]
    row = emu.state.numbers.get(number)
    if row is None:
        raise RequestRefused(404, "not_found", f"unknown number {number}")
    return row


async def _patch_number(emu: Emulator, request: Request) -> Response:
    row = _admin_number(emu, request)
    values = _admin_values(await _json_object(request), ADMIN_COLUMNS)
    for column, value in values.items():
        row.set(column, value)
    emu.persist()
    return JSONResponse(emu.state.export_row(row))


async def _delete_number(emu: Emulator, request: Request) -> Response:
    row = _admin_number(emu, request)
    del emu.state.numbers[row.number]
    emu.persist()
    return JSONResponse({"deleted": row.number})


async def _create_number(emu: Emulator, request: Request) -> Response:
    values = _admin_values(await _json_object(request), STORED_COLUMNS)
    missing = [c for c in ("NUMBER", "GROUP_ID") if not values.get(c)]
    if missing:
        raise RequestRefused(400, "missing_column", f"the row needs {', '.join(missing)}")
    if values["NUMBER"] in emu.state.numbers:
        raise RequestRefused(409, "exists", f"number {values['NUMBER']} already exists")
    row = NumberRow.from_json(values)
    emu.state.numbers[row.number] = row
    emu.persist()
    return JSONResponse(emu.state.export_row(row), 201)


async def _reset(emu: Emulator, request: Request) -> Response:
    emu.state = copy.deepcopy(emu.initial)
    emu.persist()
    return JSONResponse({"reset": True, "numbers": len(emu.state.numbers)})


async def _http_error(request: Request, exc: Exception) -> Response:
    """404/405 as JSON ``{"error", "message"}`` (keeps the Allow header of a 405)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return JSONResponse(
        {"error": code, "message": f"{request.method} {request.url.path}: HTTP {status}"}, status, headers=headers
    )


def create_app(
    state: TenantState,
    *,
    limits: Mapping[str, int] | None = None,
    access_ttl: int = 300,
    refresh_ttl: int = 1800,
    persist_path: str | os.PathLike[str] | None = None,
    clock: Clock = time.time,
    two_factor: TwoFactor | None = None,
) -> Starlette:
    """A Starlette app emulating one OCP tenant.

    ``state`` is used (and mutated) in place; a deep copy is kept for ``POST /_emulator/reset``.
    ``limits`` overrides :data:`DEFAULT_LIMITS` per operation (rows per file). ``access_ttl``
    and ``refresh_ttl`` are token lifetimes in seconds, measured with ``clock()`` (seconds,
    like :func:`time.time`). With ``persist_path`` every successful change is saved there
    atomically. With ``two_factor`` every password login also needs a fresh TOTP code in form
    field ``otp`` (see numsync.emulator.twofactor). Raises ValueError on bad limits.
    """
    emu = Emulator(
        state=state,
        initial=copy.deepcopy(state),
        limits=merge_limits(limits),
        tokens=TokenStore(clock, access_ttl, refresh_ttl),
        persist_path=persist_path,
        two_factor=two_factor,
        clock=clock,
    )

    def route(path: str, handler: Handler, method: str) -> Route:
        return Route(path, _endpoint(emu, handler), methods=[method])

    app = Starlette(
        routes=[
            route(TOKEN_PATH, _token, "POST"),
            route(NUMBERS_CSV_PATH, _export, "POST"),
            route(NUMBERS_CSV_PATH, _execute, "PUT"),
            route("/_emulator/stats", _stats, "GET"),
            route("/_emulator/state", _state, "GET"),
            route("/_emulator/log", _log, "GET"),
            route("/_emulator/numbers", _create_number, "POST"),
            route("/_emulator/numbers/{number}", _patch_number, "PATCH"),
            route("/_emulator/numbers/{number}", _delete_number, "DELETE"),
            route("/_emulator/reset", _reset, "POST"),
        ],
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.emulator = emu
    return app


class DateHeader:
    """ASGI middleware: every answer's ``Date`` header from the emulator's clock, the machine's plus
    ``offset`` seconds (``--clock-offset``; negative: behind). Only the header moves: token lifetimes and
    two-factor codes keep the real clock. Run uvicorn with ``date_header=False`` so there is one Date."""

    def __init__(self, app: Any, offset: float = 0.0, clock: Clock = time.time) -> None:
        self.app, self.offset, self.clock = app, offset, clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def send_dated(message: Any) -> None:
            if message.get("type") == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                date = email.utils.formatdate(self.clock() + self.offset, usegmt=True)
                message = {**message, "headers": [*headers, (b"date", date.encode("ascii"))]}
            await send(message)

        await self.app(scope, receive, send_dated)
