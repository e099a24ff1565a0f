"""Fault injection for the emulator: a flaky OCP on demand, deterministic with a seed.

A fault spec is a YAML list of rules; the first rule that matches a request and wins its
coin toss (``probability``) fires. Example::

    - {target: export, kind: status, status: 503, probability: 0.3}
    - {target: put, kind: status, status: 429, retry_after: "2", probability: 0.2}
    - {target: put, kind: status, status: 429, retry_after: http-date, probability: 0.1}
    - {target: put, kind: reset_after, probability: 0.1}    # applied, then the connection drops
    - {target: put, kind: status_after, status: 502}         # applied, then a 5xx
    - {target: export, kind: cut, probability: 0.1}          # CSV cut off mid-way
    - {target: export, kind: html, times: 1}                 # a 200 maintenance page
    - {target: any, kind: latency, seconds: 0.2}

``target``: token, export, put, or any. ``kind``:

- ``latency``: wait ``seconds``, then answer normally;
- ``status``: answer ``status`` before processing (nothing applied); a ``retry_after`` of
  seconds or ``http-date`` adds a Retry-After header;
- ``status_after``: process the request (a PUT is applied), then answer ``status``;
- ``reset_before``: drop the connection before processing;
- ``reset_after``: process, then drop the connection without an answer;
- ``cut``: process, then send only the first half of the body and drop the connection;
- ``html``: answer 200 with an HTML maintenance page instead;
- ``blank_column`` (export): process, then end every line with one more cell, empty, under a header
  cell without a name (what a spreadsheet's save can add): numsync accepts it, with a warning.

Faults of a tenant that is more than flaky:

- ``late`` (put): answer at once without processing — ``status`` (``answer: status``, the
  default) or a dropped connection (``answer: reset``) — and apply the file ``seconds``
  later anyway: OCP finishing a request the client already gave up on;
- ``lag`` (export): the export shows the tenant as it was ``seconds`` ago (a read replica
  behind its writes);
- ``echo`` (any): answer ``status`` with an error body that repeats what the request sent:
  its Authorization header and every form field and body byte (a careless server's error page);
- ``writer`` (put): process the file, then change the NOTE of another number (``number``,
  or the first one the file does not name): a second writer between two files.

``message`` (and ``error``) give the JSON body of a ``status``, ``status_after`` or ``late`` answer,
``{"error": error, "message": message}`` (a token answer also as ``error_description``), so each of the
vendor's answers can be played: ``{target: put, kind: status, status: 403, message: "No available
licenses"}``, a 402, 409 or 202 with the vendor's words, ``{target: put, kind: status, status: 400,
error: limit_exceeded, message: "Delete: 11 rows exceed the limit of 10 per file"}``. Without them the
body says the fault was injected.

``times`` caps how often a rule fires; ``after`` lets the first N requests it would match pass
untouched (``{target: token, kind: status, status: 401, after: 1}``: the first login works,
every later token request fails). The coin tosses come from ``random.Random(seed)``.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import email.utils
import io
import json
import random
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from numsync.emulator.app import RequestRefused, export_csv, export_filter

KINDS = (
    "latency",
    "status",
    "status_after",
    "reset_before",
    "reset_after",
    "cut",
    "html",
    "late",
    "lag",
    "echo",
    "writer",
    "blank_column",
)
TARGETS = ("token", "export", "put", "any")
#: Kinds that only make sense for one target.
KIND_TARGET = {"late": "put", "lag": "export", "writer": "put", "blank_column": "export"}
ANSWERS = ("status", "reset")
RULE_KEYS = {
    "target",
    "kind",
    "probability",
    "status",
    "seconds",
    "retry_after",
    "times",
    "after",
    "answer",
    "number",
    "message",
    "error",
}


class InjectedDisconnect(Exception):
    """Raised inside the ASGI app to make the server drop the connection (an injected fault)."""


@dataclass(slots=True)
class FaultRule:
    """One rule of a fault spec (see the module doc)."""

    target: str
    kind: str
    probability: float = 1.0
    status: int = 503
    seconds: float = 0.0
    retry_after: str | None = None
    times: int | None = None
    after: int = 0
    answer: str = "status"
    number: str | None = None
    message: str | None = None
    error: str = "injected"
    fired: int = 0
    seen: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Build and check one rule; raises ValueError naming the problem."""
        unknown = set(data) - RULE_KEYS
        if unknown:
            raise ValueError(f"unknown fault rule key(s) {sorted(unknown)}")
        missing = {"target", "kind"} - set(data)
        if missing:
            raise ValueError(f"a fault rule needs {' and '.join(sorted(missing))}: {data!r}")
        rule = cls(**{k: v for k, v in data.items()})
        _check_number(rule.probability, "probability", 0, 1)
        _check_number(rule.seconds, "seconds", 0, 3600)
        if isinstance(rule.status, bool) or not isinstance(rule.status, int) or not 100 <= rule.status <= 599:
            raise ValueError(f"status must be an HTTP status code (100-599), not {rule.status!r}")
        if rule.times is not None and (
            isinstance(rule.times, bool) or not isinstance(rule.times, int) or rule.times < 0
        ):
            raise ValueError(f"times must be a whole number ≥ 0, not {rule.times!r}")
        if isinstance(rule.after, bool) or not isinstance(rule.after, int) or rule.after < 0:
            raise ValueError(f"after must be a whole number ≥ 0, not {rule.after!r}")
        if rule.target not in TARGETS:
            raise ValueError(f"fault target {rule.target!r} is not one of {TARGETS}")
        if rule.kind not in KINDS:
            raise ValueError(f"fault kind {rule.kind!r} is not one of {KINDS}")
        needed = KIND_TARGET.get(rule.kind)
        if needed and rule.target != needed:
            raise ValueError(f"fault kind {rule.kind} applies to target {needed}, not {rule.target!r}")
        if rule.answer not in ANSWERS:
            raise ValueError(f"answer must be one of {ANSWERS}, not {rule.answer!r}")
        if rule.message is not None and not isinstance(rule.message, str):
            raise ValueError(f'message must be text like "No available licenses", not {rule.message!r}')
        if not isinstance(rule.error, str) or not rule.error:
            raise ValueError(f"error must be a non-empty code like limit_exceeded, not {rule.error!r}")
        if rule.number is not None and not isinstance(rule.number, str):
            raise ValueError(f'number must be a string like "+12015550123", not {rule.number!r}')
        if rule.retry_after is not None:
            rule.retry_after = str(rule.retry_after)
        return rule


def _target(scope: dict[str, Any]) -> str | None:
    path, method = scope.get("path", ""), scope.get("method", "")
    if path.endswith("/openid-connect/token"):
        return "token"
    if path.endswith("/api/numbers/csv"):
        return {"POST": "export", "PUT": "put"}.get(method)
    return None


class FaultInjector:
    """ASGI middleware applying ``rules`` to the API endpoints (admin endpoints are never faulted)."""

    def __init__(self, app: Any, rules: list[FaultRule], seed: int = 0, clock: Any = time.monotonic) -> None:
        self.app = app
        self.rules = rules
        self.rng = random.Random(seed)
        self.clock = clock
        self.injected: list[str] = []
        # (until, state): the tenant was ``state`` until ``until``; kept only while a lag rule may need it
        self.history: list[tuple[float, Any]] = []
        self.max_lag = max((r.seconds for r in rules if r.kind == "lag"), default=0.0)
        self.late_tasks: set[asyncio.Task[None]] = set()

    def _pick(self, target: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.target not in (target, "any"):
                continue
            rule.seen += 1
            if rule.seen <= rule.after:
                continue
            if rule.times is not None and rule.fired >= rule.times:
                continue
            if self.rng.random() < rule.probability:
                rule.fired += 1
                self.injected.append(f"{target}:{rule.kind}")
                return rule
        return None

    @property
    def emulator(self) -> Any:
        return self.app.state.emulator

    def _remember(self, scope: dict[str, Any]) -> None:
        """Before a write, keep the state it replaces (for ``lag``): the tenant was that until now."""
        if not self.max_lag or scope.get("type") != "http" or scope.get("method") in ("GET", "HEAD"):
            return
        if _target(scope) in ("token", "export"):
            return
        now = self.clock()
        self.history = [(t, s) for t, s in self.history if t > now - self.max_lag]
        self.history.append((now, copy.deepcopy(self.emulator.state)))

    def _as_of(self, moment: float) -> Any:
        """The tenant as it was at ``moment``."""
        return next((state for until, state in self.history if until > moment), self.emulator.state)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self._remember(scope)
        await self.app(scope, receive, send)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = _target(scope) if scope["type"] == "http" else None
        rule = self._pick(target) if target else None
        if rule is None:
            await self._app(scope, receive, send)
            return
        if rule.kind == "late":
            body = await _read_body(receive)
            task = asyncio.get_running_loop().create_task(self._late(rule.seconds, scope, body))
            self.late_tasks.add(task)
            task.add_done_callback(self.late_tasks.discard)
            if rule.answer == "reset":
                await _drop(send)
            await _answer(
                send, rule.status, [], _body(rule, "put", "injected fault: still processing after this answer")
            )
        elif rule.kind == "lag":
            await self._lagging_export(rule.seconds, scope, receive, send)
        elif rule.kind == "echo":
            body = await _read_body(receive)
            await _answer(send, rule.status, [], _echo(scope, body))
        elif rule.kind == "writer":
            body = await _read_body(receive)
            await self._app(scope, _replay(body), send)
            self._second_writer(rule, body)
        elif rule.kind == "latency":
            await asyncio.sleep(rule.seconds)
            await self._app(scope, receive, send)
        elif rule.kind == "status":
            await _answer(
                send,
                rule.status,
                _retry_after_header(rule.retry_after),
                _body(rule, target or "", "injected fault: nothing was processed"),
            )
        elif rule.kind == "html":
            await _answer(
                send,
                200,
                [(b"content-type", b"text/html; charset=utf-8")],
                b"<!DOCTYPE html><html><body><h1>Scheduled maintenance</h1></body></html>",
            )
        elif rule.kind == "reset_before":
            await _drop(send)
        else:
            status, headers, body = await _run(self._app, scope, receive)
            if rule.kind == "status_after":
                await _answer(send, rule.status, [], _body(rule, target or "", "injected fault after processing"))
            elif rule.kind == "reset_after":
                await _drop(send)
            elif rule.kind == "blank_column":
                await _answer(send, status, [(b"content-type", b"text/csv; charset=utf-8")], _widened(body))
            else:  # cut
                kept = [(k, v) for k, v in headers if k.lower() != b"content-length"] + [
                    (b"content-length", str(len(body)).encode())
                ]
                await send({"type": "http.response.start", "status": status, "headers": kept})
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                raise InjectedDisconnect("injected: body cut off")

    async def _lagging_export(self, seconds: float, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # answered here from the old state: swapping the live state in and out would lose a late write landing meanwhile
        emu = self.emulator
        emu.stats.export_requests += 1
        body = await _read_body(receive)
        try:
            user = emu.user_of(Request(scope, _replay(body)))
        except RequestRefused as exc:
            await exc.response()(scope, _replay(body), send)
            return
        text = export_csv(self._as_of(self.clock() - seconds), user, export_filter(body))
        await _answer(send, 200, [(b"content-type", b"text/csv; charset=utf-8")], text.encode("utf-8"))

    async def _late(self, seconds: float, scope: dict[str, Any], body: bytes) -> None:
        await asyncio.sleep(seconds)
        await _run(self._app, scope, _replay(body))

    def _second_writer(self, rule: FaultRule, body: bytes) -> None:
        """Another writer edits a number between two files (as the admin PATCH would)."""
        emu = self.emulator
        numbers = emu.state.numbers
        text = body.decode("utf-8", errors="replace")
        target = rule.number or next((n for n in sorted(numbers) if n not in text), None)
        if target is None or target not in numbers:
            return
        self._remember({"type": "http", "method": "PATCH", "path": "/_emulator/writer"})
        numbers[target].set("NOTE", f"changed by another writer ({rule.fired})")
        emu.persist()


def _widened(body: bytes) -> bytes:
    """The CSV ``body`` with one more, empty cell at the end of every row (under an unnamed header cell)."""
    rows = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([*row, ""] for row in rows)
    return out.getvalue().encode("utf-8")


def _body(rule: FaultRule, target: str, default: str) -> bytes:
    """The JSON body of an injected answer: the rule's ``error`` and ``message``, Keycloak's field too for a token."""
    message = default if rule.message is None else rule.message
    body = {"error": rule.error, "message": message}
    if target == "token":
        body["error_description"] = message
    return json.dumps(body, ensure_ascii=False).encode()


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # like a client that keeps the connection open
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _echo(scope: dict[str, Any], body: bytes) -> bytes:
    """An error body repeating the request: its Authorization header, its form fields decoded, its raw body."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    text = body.decode("utf-8", errors="replace")
    fields = urllib.parse.parse_qsl(text, keep_blank_values=True) if "=" in text and "\n" not in text else []
    message = (
        f"could not process {scope.get('method')} {scope.get('path')}: "
        f"Authorization: {headers.get('authorization', '')}; "
        f"fields: {', '.join(f'{k}={v}' for k, v in fields)}; body: {text[:2000]}"
    )
    return json.dumps(
        {"error": "injected", "error_description": message, "message": message}, ensure_ascii=False
    ).encode()


async def _drop(send: Any) -> None:
    # An ASGI app cannot close the socket itself; promising a body and failing before it
    # makes the server drop the connection mid-answer, which the client sees as a reset.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
    raise InjectedDisconnect("injected: connection dropped")


def _retry_after_header(value: str | None) -> list[tuple[bytes, bytes]]:
    if value is None:
        return [(b"content-type", b"application/json")]
    text = email.utils.formatdate(time.time() + 2, usegmt=True) if value == "http-date" else value
    return [(b"content-type", b"application/json"), (b"retry-after", text.encode())]


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if not any(k == b"content-type" for k, _ in headers):
        headers = headers + [(b"content-type", b"application/json")]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": headers + [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _run(app: Any, scope: dict[str, Any], receive: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run the app to completion, capturing its answer instead of sending it."""
    captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

    async def capture(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            captured["status"], captured["headers"] = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            captured["body"] += message.get("body", b"")

    await app(scope, receive, capture)
    return captured["status"], captured["headers"], captured["body"]


def load_rules(data: Any) -> list[FaultRule]:
    """Rules from a parsed YAML/JSON fault spec (a list of mappings). Raises ValueError."""
    if not isinstance(data, list):
        raise ValueError("a fault spec is a list of rules")
    rules = []
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"rule {i}: expected a mapping like {{target: put, kind: status}}, got {item!r}")
        try:
            rules.append(FaultRule.from_dict(item))
        except ValueError as exc:
            raise ValueError(f"rule {i}: {exc}") from None
    return rules


def _check_number(value: object, name: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}, not {value!r}")
