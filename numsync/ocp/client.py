"""Export and execute calls of the OCP numbers CSV API.

Source: vendor doc — ``POST {base}/api/numbers/csv`` exports, ``PUT {base}/api/numbers/csv``
executes an operation file. What the vendor leaves open is handled defensively:

- upload encoding: multipart/form-data with the file in field ``file`` (configurable);
- PUT answer: per-row JSON results are read when present (``results`` with ``row``,
  ``NUMBER``, ``OPERATION``, ``status``, ``message``); any other 2xx body means "accepted,
  outcome per row unknown" and apply's verification re-export decides;
- error bodies: JSON ``message``/``error`` when present, else the first bytes, shown safely;
  what the answer means (refused before processing, refused for every file) is read by
  numsync.ocp.answers from the vendor's "HTTP Code Responses".
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from numsync.errors import ApiError, ReadOnlyViolation
from numsync.ocp.answers import REFUSED_BEFORE_PROCESSING, read_answer
from numsync.ocp.auth import PRE_ISSUED, RENEWED, OCPAuth
from numsync.ocp.csvcodec import ExportRead, parse_export_stream, preview, printable
from numsync.ocp.retry import READ, STREAMED, RetryPolicy, RetryTransport
from numsync.ocp.transport import ProxyRouting

EXPORT_PATH = "/api/numbers/csv"
#: A body broken mid-way: the streamed export is read again from the start (nothing was parsed for good).
_BROKEN_BODY = (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout)


@dataclass(frozen=True, slots=True)
class RowResult:
    """OCP's verdict on one uploaded row (``row`` is 1-based, header excluded)."""

    row: int
    number: str
    operation: str
    ok: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class ExecuteResult:
    """The answer to one PUT: HTTP status, per-row results when OCP gave them (else None)."""

    status: int
    rows: list[RowResult] | None = None
    raw: str = field(default="", repr=False)

    @property
    def failed(self) -> list[RowResult]:
        """Rows OCP reported as failed (empty when it gave no per-row results)."""
        return [r for r in self.rows or [] if not r.ok]


class OCPReader:
    """A read-only session with one OCP tenant's Integrations API: it can only export.

    Every outgoing request passes a guard that lets through only the export
    (``POST {base}/api/numbers/csv``) and the token endpoint; anything else raises
    ReadOnlyViolation before it leaves. Drift reports use this class, so they cannot write.
    ``base_url``: e.g. ``https://eu1-m.ocp.ai/integrations``; ``timeout``: seconds per call;
    ``on_throttle(delay)`` hears of every 429 (see retry.py); ``proxy``: the proxy for every request
    (else the environment's, see numsync.ocp.transport). Use as a context manager; one session may
    be used from several threads at once (apply's concurrent files).
    """

    read_only = True

    def __init__(
        self,
        base_url: str,
        auth: OCPAuth,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        verify: bool | str = True,
        on_retry: Callable[[httpx.Request, str, float], None] | None = None,
        on_throttle: Callable[[float], None] | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token_url = auth.token_url
        hooks: dict[str, list[Callable[..., None]]] = {"response": [self._read_date]}
        if self.read_only:
            hooks["request"] = [self._guard]
        self._server_offset: float | None = None  # OCP's clock minus ours, seconds (the Date header)
        # proxy: numsync.yaml's proxy:, which wins; else HTTPS_PROXY/HTTP_PROXY/NO_PROXY unless trust_env is False
        inner = transport or ProxyRouting(verify=verify, proxy=proxy, trust_env=trust_env)
        wrapped = RetryTransport(inner, retry or RetryPolicy(), on_retry=on_retry, on_throttle=on_throttle)
        self._retry = wrapped
        self._http = httpx.Client(
            auth=auth, timeout=timeout, transport=wrapped, headers={"User-Agent": "numsync"}, event_hooks=hooks
        )

    def _guard(self, request: httpx.Request) -> None:
        url = str(request.url.copy_with(query=None))
        if request.method == "POST" and url in (self.base_url + EXPORT_PATH, self._token_url):
            return
        raise ReadOnlyViolation(f"read-only session refused {request.method} {url}")

    def _read_date(self, response: httpx.Response) -> None:
        try:
            when = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
        except (TypeError, ValueError):
            return  # no Date, or one that is not an HTTP date: keep what an earlier answer said
        if when.tzinfo is None:  # "-0000": RFC 5322's UTC of unknown origin
            when = when.replace(tzinfo=dt.UTC)
        self._server_offset = when.timestamp() - time.time()

    def server_time(self) -> dt.datetime | None:
        """OCP's clock now, by the ``Date`` header of its latest answer (to the second), or None before
        any answer carried one. Change freezes are checked by this clock as well as the local one."""
        if self._server_offset is None:
            return None
        return dt.datetime.fromtimestamp(time.time() + self._server_offset, dt.UTC)

    def __enter__(self) -> OCPReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def export(self) -> bytes:
        """The numbers CSV as bytes (``POST {base}/api/numbers/csv``, empty JSON filter = all visible numbers).

        Raises ApiError on a non-2xx status or a transport failure; AuthError when login fails.
        """
        url = self.base_url + EXPORT_PATH
        try:
            response = self._http.post(url, json={}, headers={"Accept": "text/csv"}, extensions={READ: True})
        except httpx.HTTPError as exc:
            raise ApiError(f"export from {url} failed: {type(exc).__name__}: {exc}", sent=False) from None
        _raise_for_status(response, "export")
        return response.content

    def export_records(self, on_progress: Callable[[int, int | None], None] | None = None) -> ExportRead:
        """The live numbers and the reader's warnings, parsed while the export arrives: its bytes are never held
        whole (see parse_export_stream).

        ``on_progress(received, total)`` is told the bytes received so far after each chunk
        (``total``: the Content-Length, when OCP sends one). A body broken mid-way is read again
        from the start, with the retry policy's attempts and backoff. Raises ApiError, AuthError,
        ExportFormatError.
        """
        url = self.base_url + EXPORT_PATH
        attempts = self._retry.policy.attempts
        for attempt in range(attempts):
            request = self._http.build_request(
                "POST", url, json={}, headers={"Accept": "text/csv"}, extensions={READ: True, STREAMED: True}
            )
            try:
                response = self._http.send(request, stream=True)
                try:
                    if not response.is_success:
                        response.read()
                        _raise_for_status(response, "export")
                    return parse_export_stream(_counted(response, on_progress))
                finally:
                    response.close()
            except _BROKEN_BODY as exc:
                if attempt == attempts - 1:
                    raise ApiError(f"export from {url} failed: {type(exc).__name__}: {exc}", sent=False) from None
                self._retry.pause(request, "connection broken", attempt)
            except httpx.HTTPError as exc:
                raise ApiError(f"export from {url} failed: {type(exc).__name__}: {exc}", sent=False) from None
        raise AssertionError("unreachable")  # pragma: no cover


class OCPClient(OCPReader):
    """A read-write session: export, and execute operation files.

    ``upload_field``: multipart field name of the operation file (vendor leaves it open).
    """

    read_only = False

    def __init__(self, base_url: str, auth: OCPAuth, *, upload_field: str = "file", **options: Any) -> None:
        super().__init__(base_url, auth, **options)
        self.upload_field = upload_field

    def __enter__(self) -> OCPClient:
        return self

    def execute(self, body: bytes, *, filename: str = "operations.csv") -> ExecuteResult:
        """Upload one operation file (``PUT {base}/api/numbers/csv``) and read OCP's answer.

        Raises ApiError on a non-2xx status (``sent`` False only when the request never left).
        """
        url = self.base_url + EXPORT_PATH
        try:
            response = self._http.put(
                url, files={self.upload_field: (filename, body, "text/csv")}, headers={"Accept": "application/json"}
            )
        except httpx.ConnectError as exc:
            raise ApiError(f"upload to {url} failed before sending: {exc}", sent=False) from None
        except httpx.HTTPError as exc:
            raise ApiError(f"upload to {url} failed, outcome unknown: {type(exc).__name__}: {exc}") from None
        _raise_for_status(response, "upload")
        return ExecuteResult(response.status_code, _row_results(response), response.text)


def _counted(response: httpx.Response, on_progress: Callable[[int, int | None], None] | None) -> Iterator[bytes]:
    """The body's chunks as they arrive, telling ``on_progress`` the bytes so far."""
    length = response.headers.get("Content-Length", "")
    total = int(length) if length.isdigit() else None
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if on_progress is not None:
            on_progress(received, total)
        yield chunk


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    message = error = ""
    try:
        body: Any = response.json()
        if isinstance(body, dict):
            error = str(body.get("error") or "")
            message = str(body.get("message") or body.get("error_description") or error)
    except (ValueError, json.JSONDecodeError):
        pass
    answer = read_answer(
        response.status_code,
        error,
        message,
        renewed=bool(response.extensions.get(RENEWED)),
        pre_issued=bool(response.extensions.get(PRE_ISSUED)),
    )
    message = printable(message)  # remote text: one line, nothing hidden
    if not message:
        message = f"body starts with {preview(response.content)}"
    hint = f" ({answer.hint})" if answer.hint else ""
    # a 5xx, 402, 409 ... is no refusal: OCP may have processed an upload (apply then reads live again)
    if response.status_code in REFUSED_BEFORE_PROCESSING:
        verb = "refused by OCP"
    else:
        verb = "failed at OCP, outcome unknown" if what == "upload" else "failed at OCP"
    raise ApiError(
        f"{what} {verb}: HTTP {response.status_code}{hint}: {message}",
        status=response.status_code,
        every_file=answer.every_file,
    )


def _row_results(response: httpx.Response) -> list[RowResult] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return None
    rows = []
    for i, item in enumerate(results, start=1):
        if not isinstance(item, dict):
            return None
        try:
            row = int(item.get("row", i))
        except (TypeError, ValueError):
            return None  # a result naming no row: which rows were applied is unknown
        status = str(item.get("status", "")).lower()
        rows.append(
            RowResult(
                row,
                str(item.get("NUMBER", "")),
                str(item.get("OPERATION", "")),
                status in ("applied", "ok", "success"),
                str(item.get("message", "")),
            )
        )
    return rows
