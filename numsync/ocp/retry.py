"""Retries and pacing at the transport: reads are retried, writes only when nothing was applied.

A request is *safe to resend* when it is a read (the export, a token request: marked with
the ``numsync_read`` extension) or when the server refused it before processing: a 429
answer, or a connection that could not even be opened. A write that was sent and got no
answer, or a 5xx, is never resent here: whether OCP applied it is unknown, and the caller
re-reads live state instead (see apply).

Backoff is exponential with full jitter, ``base * 2**attempt`` capped at ``max_delay``
seconds; a ``Retry-After`` header (seconds or an HTTP date) is honoured, capped at
``max_retry_after``. Pacing keeps at least ``min_interval`` seconds between requests.

Every attempt is logged at INFO on the ``numsync.ocp`` logger (method, URL without its query,
status or failure, seconds): ``numsync --verbose`` shows these lines. No header or body is logged.
Every 429 is also told to ``on_throttle(delay)``, so apply can send fewer files at once.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

READ = "numsync_read"
#: One line per attempt (see the module doc); the CLI's --verbose shows them.
REQUEST_LOG = logging.getLogger("numsync.ocp")
#: A request extension: a callable giving the request to send instead when this one must be sent again after it
#: may have reached the server. A password login carries it: its one-time code may have been accepted, and OCP
#: never accepts a code twice, so a resend needs a new code (numsync.ocp.auth).
RESEND = "numsync_resend"
#: A read whose body the caller consumes as it arrives (the streamed export): the transport does not read it
#: ahead, so a body broken mid-way surfaces in the caller, which starts the read again (client.export_records).
STREAMED = "numsync_streamed"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Times in seconds."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    min_interval: float = 0.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: ``"120"`` or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport with the retry and pacing rules of the module doc.

    ``sleep`` and ``rng`` are injectable for tests; ``on_retry(request, reason, delay)`` is
    told about every retry (for the journal), ``on_throttle(delay)`` about every 429 retried
    (from the thread that sent it).
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        policy: RetryPolicy = RetryPolicy(),
        *,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        on_retry: Callable[[httpx.Request, str, float], None] | None = None,
        on_throttle: Callable[[float], None] | None = None,
    ) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.policy = policy
        self.sleep = sleep or time.sleep
        self.rng = rng or random.Random()
        self.on_retry = on_retry
        self.on_throttle = on_throttle
        self._last = 0.0
        self._lock = threading.Lock()

    def _pace(self) -> None:
        if self.policy.min_interval <= 0:
            return
        with self._lock:
            wait = self._last + self.policy.min_interval - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            self._last = time.monotonic()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        backoff = self.rng.uniform(0, min(self.policy.max_delay, self.policy.base_delay * 2**attempt))
        if response is not None:
            told = retry_after_seconds(response.headers.get("Retry-After"))
            if told is not None:
                return min(told, self.policy.max_retry_after)
        return backoff

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        read = bool(request.extensions.get(READ))
        for attempt in range(self.policy.attempts):
            last = attempt == self.policy.attempts - 1
            self._pace()
            response: httpx.Response | None = None  # the answer to retry, when there was one
            started = time.monotonic()
            try:
                try:
                    answer = self.inner.handle_request(request)
                    if read and not request.extensions.get(STREAMED):
                        answer.read()  # a body cut mid-way surfaces here, where it can be retried
                except httpx.TransportError as exc:
                    _log_attempt(request, type(exc).__name__, started)
                    raise
                _log_attempt(request, f"HTTP {answer.status_code}", started)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if last:
                    raise
                # nothing was sent: safe to resend, even a write
                reason = "no connection"
            except (
                httpx.ReadError,
                httpx.RemoteProtocolError,
                httpx.ReadTimeout,
                httpx.WriteError,
                httpx.WriteTimeout,
            ):
                if not read or last:
                    raise
                reason = "connection broken"
            else:
                retry = answer.status_code == 429 or (read and answer.status_code in RETRYABLE_STATUS)
                if not retry or last:
                    return answer
                reason = f"HTTP {answer.status_code}"
                answer.read()
                answer.close()
                response = answer
            self.pause(request, reason, attempt, response)
            resend = request.extensions.get(RESEND)
            if resend is not None and reason != "no connection":  # a connection never opened carried nothing
                request = resend()
        raise AssertionError("unreachable")  # pragma: no cover

    def pause(self, request: httpx.Request, reason: str, attempt: int, response: httpx.Response | None = None) -> None:
        """Wait before attempt ``attempt + 1`` of ``request`` (0-based ``attempt`` just failed), telling the hooks."""
        delay = self._delay(attempt, response)
        if self.on_throttle and response is not None and response.status_code == 429:
            self.on_throttle(delay)
        if self.on_retry:
            self.on_retry(request, reason, delay)
        self.sleep(delay)

    def close(self) -> None:
        self.inner.close()


def _log_attempt(request: httpx.Request, outcome: str, started: float) -> None:
    if REQUEST_LOG.isEnabledFor(logging.INFO):
        url = request.url.copy_with(query=None)
        REQUEST_LOG.info("%s %s: %s in %.2fs", request.method, url, outcome, time.monotonic() - started)
