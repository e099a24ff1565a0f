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
- ``html``: answer 200 with an HTML maintenance page instead.

``times`` caps how often a rule fires; ``after`` lets the first N requests it would match pass
untouched (``{target: token, kind: status, status: 401, after: 1}``: the first login works,
every later token request fails). The coin tosses come from ``random.Random(seed)``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass
from typing import Any

KINDS = ("latency", "status", "status_after", "reset_before", "reset_after", "cut", "html")
TARGETS = ("token", "export", "put", "any")


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
    fired: int = 0
    seen: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Build and check one rule; raises ValueError naming the problem."""
        unknown = set(data) - {"target", "kind", "probability", "status", "seconds", "retry_after", "times", "after"}
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

    def __init__(self, app: Any, rules: list[FaultRule], seed: int = 0) -> None:
        self.app = app
        self.rules = rules
        self.rng = random.Random(seed)
        self.injected: list[str] = []

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

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = _target(scope) if scope["type"] == "http" else None
        rule = self._pick(target) if target else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.kind == "latency":
            await asyncio.sleep(rule.seconds)
            await self.app(scope, receive, send)
        elif rule.kind == "status":
            await _answer(
                send,
                rule.status,
                _retry_after_header(rule.retry_after),
                b'{"error": "injected", "message": "injected fault: nothing was processed"}',
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
            status, headers, body = await _run(self.app, scope, receive)
            if rule.kind == "status_after":
                await _answer(
                    send,
                    rule.status,
                    [],
                    json.dumps({"error": "injected", "message": "injected fault after processing"}).encode(),
                )
            elif rule.kind == "reset_after":
                await _drop(send)
            else:  # cut
                kept = [(k, v) for k, v in headers if k.lower() != b"content-length"] + [
                    (b"content-length", str(len(body)).encode())
                ]
                await send({"type": "http.response.start", "status": status, "headers": kept})
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                raise InjectedDisconnect("injected: body cut off")


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
