"""RetryTransport: which requests are resent, how long it waits, and pacing.

The inner transport is an ``httpx.MockTransport`` whose handler scripts the answers; the
transport's ``sleep`` records the delays instead of sleeping and ``rng`` is seeded, so every
delay is known exactly.
"""

from __future__ import annotations

import email.utils
import itertools
import random
import time
from collections.abc import Iterator

import httpx
import pytest
from cli_workspace import TOTP_SECRET

from numsync.ocp.retry import READ, RETRYABLE_STATUS, RetryPolicy, RetryTransport, retry_after_seconds

URL = "http://ocp.test/integrations/api/numbers/csv"
POLICY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=4.0, max_retry_after=120.0)
CSV = b"NUMBER,GROUP_ID\r\n+12015550100,ocp-qa\r\n"


class Script:
    """A MockTransport handler answering from a list: a Response, an exception to raise, or a callable."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(request)
        assert isinstance(answer, httpx.Response)
        return answer


class CutStream(httpx.SyncByteStream):
    """A body that stops half-way, as a dropped connection does."""

    def __iter__(self) -> Iterator[bytes]:
        yield CSV[:10]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def cut() -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/csv", "content-length": str(len(CSV))}, stream=CutStream()
    )


def client(
    script: Script, policy: RetryPolicy = POLICY, seed: int = 7, retries: list | None = None
) -> tuple[httpx.Client, list[float]]:
    sleeps: list[float] = []
    on_retry = (lambda req, reason, delay: retries.append((req.method, reason, delay))) if retries is not None else None
    transport = RetryTransport(
        httpx.MockTransport(script), policy, sleep=sleeps.append, rng=random.Random(seed), on_retry=on_retry
    )
    return httpx.Client(transport=transport), sleeps


def read(http: httpx.Client) -> httpx.Response:
    return http.post(URL, json={}, extensions={READ: True})


def write(http: httpx.Client) -> httpx.Response:
    return http.put(URL, files={"file": ("ops.csv", b"OPERATION,NUMBER\r\nDelete,+12015550100\r\n", "text/csv")})


def expected_backoff(seed: int, n: int, policy: RetryPolicy = POLICY) -> list[float]:
    """The delays the transport must draw: full jitter, uniform(0, min(max_delay, base * 2**attempt))."""
    rng = random.Random(seed)
    return [rng.uniform(0, min(policy.max_delay, policy.base_delay * 2**attempt)) for attempt in range(n)]


# --- reads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 502, 500, 429])
def test_read_is_retried_on_a_retryable_status_with_jittered_exponential_backoff(status: int) -> None:
    script = Script(
        httpx.Response(status), httpx.Response(status), httpx.Response(status), httpx.Response(200, content=CSV)
    )
    retries: list = []
    http, sleeps = client(script, retries=retries)
    response = read(http)
    assert response.status_code == 200 and response.content == CSV
    assert len(script.calls) == 4
    assert sleeps == pytest.approx(expected_backoff(7, 3))
    caps = [min(POLICY.max_delay, POLICY.base_delay * 2**a) for a in range(3)]
    assert all(0 <= d <= cap for d, cap in zip(sleeps, caps))
    assert [r[1] for r in retries] == [f"HTTP {status}"] * 3
    assert [r[2] for r in retries] == sleeps


def test_backoff_is_capped_at_max_delay_and_jittered() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=3.0)
    script = Script(*[httpx.Response(503)] * 9, httpx.Response(200, content=CSV))
    http, sleeps = client(script, policy, seed=1)
    assert read(http).status_code == 200
    assert len(sleeps) == 9
    assert max(sleeps) <= 3.0
    assert sleeps == pytest.approx(expected_backoff(1, 9, policy))
    assert len(set(sleeps)) == 9, "full jitter: no two delays alike"


def test_same_seed_same_delays_other_seed_other_delays() -> None:
    def delays(seed: int) -> list[float]:
        http, sleeps = client(Script(httpx.Response(503), httpx.Response(503), httpx.Response(200)), seed=seed)
        read(http)
        return sleeps

    assert delays(3) == delays(3)
    assert delays(3) != delays(4)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
    ],
    ids=["ReadError", "RemoteProtocolError", "ReadTimeout", "ConnectError"],
)
def test_read_is_retried_on_transport_errors(error: Exception) -> None:
    script = Script(error, httpx.Response(200, content=CSV))
    retries: list = []
    http, sleeps = client(script, retries=retries)
    assert read(http).content == CSV
    assert len(script.calls) == 2 and len(sleeps) == 1
    assert retries[0][1] == ("no connection" if isinstance(error, httpx.ConnectError) else "connection broken")


def test_read_whose_body_is_cut_mid_way_is_retried() -> None:
    script = Script(lambda r: cut(), lambda r: httpx.Response(200, content=CSV))
    retries: list = []
    http, sleeps = client(script, retries=retries)
    response = read(http)
    assert response.content == CSV
    assert len(script.calls) == 2
    assert retries == [("POST", "connection broken", sleeps[0])]


def test_read_gives_up_after_attempts_and_returns_the_last_response() -> None:
    answers = [httpx.Response(503, content=f"try {i}".encode()) for i in range(POLICY.attempts)]
    script = Script(*answers, httpx.Response(200))
    http, sleeps = client(script)
    response = read(http)
    assert response.status_code == 503 and response.text == f"try {POLICY.attempts - 1}"
    assert len(script.calls) == POLICY.attempts
    assert len(sleeps) == POLICY.attempts - 1


def test_read_gives_up_after_attempts_and_raises_the_last_transport_error() -> None:
    script = Script(httpx.ReadError("reset"))
    http, sleeps = client(script)
    with pytest.raises(httpx.ReadError):
        read(http)
    assert len(script.calls) == POLICY.attempts and len(sleeps) == POLICY.attempts - 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_read_is_not_retried_on_a_client_error(status: int) -> None:
    script = Script(httpx.Response(status), httpx.Response(200))
    http, sleeps = client(script)
    assert read(http).status_code == status
    assert len(script.calls) == 1 and sleeps == []


def test_retryable_statuses_are_the_documented_ones() -> None:
    assert {429, 500, 502, 503, 504} == RETRYABLE_STATUS


# --- Retry-After ---------------------------------------------------------------------------


def test_retry_after_seconds_is_honoured() -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(200),
    )
    http, sleeps = client(script)
    assert read(http).status_code == 200
    assert sleeps == [7.0, 2.0]


def test_retry_after_http_date_is_honoured() -> None:
    when = time.time() + 30
    script = Script(
        httpx.Response(429, headers={"Retry-After": email.utils.formatdate(when, usegmt=True)}), httpx.Response(200)
    )
    http, sleeps = client(script)
    assert read(http).status_code == 200
    assert 28.0 <= sleeps[0] <= 30.5  # HTTP dates have one-second resolution


@pytest.mark.parametrize("header", ["3600", "http-date"])
def test_retry_after_is_capped_by_max_retry_after(header: str) -> None:
    value = email.utils.formatdate(time.time() + 3600, usegmt=True) if header == "http-date" else header
    script = Script(httpx.Response(429, headers={"Retry-After": value}), httpx.Response(200))
    http, sleeps = client(script, RetryPolicy(attempts=3, max_retry_after=9.0))
    assert read(http).status_code == 200
    assert sleeps == [9.0]


def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    script = Script(httpx.Response(503, headers={"Retry-After": "soon"}), httpx.Response(200))
    http, sleeps = client(script)
    assert read(http).status_code == 200
    assert sleeps == pytest.approx(expected_backoff(7, 1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
    ],
)
def test_retry_after_seconds_parsing(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_seconds_http_date_relative_to_now() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412400.0) == 80.0  # 07:26:40 → 07:28:00
    assert retry_after_seconds(email.utils.formatdate(1_000_000_100, usegmt=True), now=1_000_000_000) == 100.0


# --- writes --------------------------------------------------------------------------------


def test_write_is_resent_on_429_honouring_retry_after() -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(429), httpx.Response(200, json={"applied": 1})
    )
    retries: list = []
    http, sleeps = client(script, retries=retries)
    response = write(http)
    assert response.status_code == 200
    assert len(script.calls) == 3
    assert sleeps[0] == 3.0
    assert [r[:2] for r in retries] == [("PUT", "HTTP 429"), ("PUT", "HTTP 429")]
    assert all(c.content == script.calls[0].content for c in script.calls), "the same body is resent"


def test_write_is_resent_when_the_connection_could_not_be_opened() -> None:
    script = Script(httpx.ConnectError("connection refused"), httpx.Response(200, json={"applied": 1}))
    http, sleeps = client(script)
    assert write(http).status_code == 200
    assert len(script.calls) == 2 and len(sleeps) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_write_is_not_resent_on_5xx(status: int) -> None:
    script = Script(httpx.Response(status), httpx.Response(200))
    http, sleeps = client(script)
    assert write(http).status_code == status
    assert len(script.calls) == 1 and sleeps == []


@pytest.mark.parametrize(
    "error",
    [httpx.ReadError("reset"), httpx.RemoteProtocolError("Server disconnected"), httpx.ReadTimeout("timed out")],
    ids=["ReadError", "RemoteProtocolError", "ReadTimeout"],
)
def test_write_is_not_resent_after_the_body_was_sent(error: Exception) -> None:
    script = Script(error, httpx.Response(200))
    http, sleeps = client(script)
    with pytest.raises(type(error)):
        write(http)
    assert len(script.calls) == 1 and sleeps == []


def test_write_whose_answer_is_cut_is_not_resent() -> None:
    script = Script(lambda r: cut(), lambda r: httpx.Response(200, content=CSV))
    http, sleeps = client(script)
    with pytest.raises(httpx.RemoteProtocolError):
        write(http)
    assert len(script.calls) == 1 and sleeps == []


def test_write_gives_up_on_429_after_attempts_and_returns_it() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "1"}))
    http, sleeps = client(script)
    assert write(http).status_code == 429
    assert len(script.calls) == POLICY.attempts and sleeps == [1.0] * (POLICY.attempts - 1)


def test_a_post_without_the_read_mark_is_treated_as_a_write() -> None:
    script = Script(httpx.Response(503), httpx.Response(200))
    http, _sleeps = client(script)
    assert http.post(URL, json={}).status_code == 503
    assert len(script.calls) == 1


# --- pacing --------------------------------------------------------------------------------


def test_pacing_keeps_min_interval_between_requests() -> None:
    interval = 0.05
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return httpx.Response(200, content=CSV)

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    transport = RetryTransport(
        httpx.MockTransport(handler), RetryPolicy(min_interval=interval), sleep=sleep, rng=random.Random(0)
    )
    with httpx.Client(transport=transport) as http:
        for _ in range(6):
            read(http)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= interval * 0.95, gaps
    assert len(sleeps) >= 5 and all(0 < s <= interval for s in sleeps)


def test_pacing_also_spaces_retries_and_is_off_by_default() -> None:
    sleeps: list[float] = []
    transport = RetryTransport(
        httpx.MockTransport(Script(httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200))),
        RetryPolicy(min_interval=0.2),
        sleep=sleeps.append,
        rng=random.Random(0),
    )
    with httpx.Client(transport=transport) as http:
        read(http)
    # the Retry-After 0 wait, then a pacing wait close to min_interval before the resend
    assert sleeps[0] == 0.0
    assert 0.15 < sleeps[1] <= 0.2

    quiet: list[float] = []
    plain = RetryTransport(httpx.MockTransport(Script(httpx.Response(200))), RetryPolicy(), sleep=quiet.append)
    with httpx.Client(transport=plain) as http:
        for _ in range(5):
            read(http)
    assert quiet == []


def test_pacing_spaces_requests_that_do_not_sleep_in_between() -> None:
    """With a sleep that returns at once, every request after the first asks to wait about min_interval."""
    sleeps: list[float] = []
    transport = RetryTransport(
        httpx.MockTransport(Script(httpx.Response(200))), RetryPolicy(min_interval=1.0), sleep=sleeps.append
    )
    with httpx.Client(transport=transport) as http:
        for _ in range(4):
            read(http)
    assert len(sleeps) == 3 and all(0.9 < s <= 1.0 for s in sleeps)


# --- connect timeouts and errors while sending ---------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.WriteError("connection reset while sending"),
        httpx.WriteTimeout("write timed out"),
    ],
    ids=["ConnectTimeout", "WriteError", "WriteTimeout"],
)
def test_read_is_retried_on_connect_timeout_and_errors_while_sending(error: Exception) -> None:
    script = Script(error, httpx.Response(200, content=CSV))
    retries: list = []
    http, sleeps = client(script, retries=retries)
    assert read(http).content == CSV
    assert len(script.calls) == 2 and len(sleeps) == 1
    assert retries[0][1] == ("no connection" if isinstance(error, httpx.ConnectTimeout) else "connection broken")


def test_write_is_resent_after_a_connect_timeout() -> None:
    """No connection was made, so nothing was sent: safe to resend even a write."""
    script = Script(httpx.ConnectTimeout("connect timed out"), httpx.Response(200, json={"applied": 1}))
    http, sleeps = client(script)
    assert write(http).status_code == 200
    assert len(script.calls) == 2 and len(sleeps) == 1


@pytest.mark.parametrize(
    "error",
    [httpx.WriteError("reset while sending"), httpx.WriteTimeout("write timed out")],
    ids=["WriteError", "WriteTimeout"],
)
def test_write_is_not_resent_after_an_error_while_sending(error: Exception) -> None:
    """Part of the body may have reached OCP: the outcome is unknown, so it is not resent here."""
    script = Script(error, httpx.Response(200))
    http, sleeps = client(script)
    with pytest.raises(type(error)):
        write(http)
    assert len(script.calls) == 1 and sleeps == []


def test_the_retry_block_of_an_environment_reaches_the_client(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """numsync.yaml ``retry:`` sets attempts, backoff cap and pace of the clients plan/apply/drift use."""
    from numsync.config import load_config
    from numsync.ocp.auth import Credentials
    from numsync.ocp.client import ApiError
    from numsync.workflow.pipeline import connect, connect_readonly

    (tmp_path / "desired").mkdir()
    config = tmp_path / "numsync.yaml"
    config.write_text(
        "environments:\n  test:\n    base_url: http://127.0.0.1:9/integrations\n    desired: desired\n"
        "    groups:\n      ocp-qa: {}\n    retry: {attempts: 2, max_delay: 0.001, min_interval: 5}\n"
    )
    env = load_config(config).environment("test")
    assert env.retry == RetryPolicy(attempts=2, max_delay=0.001, min_interval=5.0)

    for make in (connect, connect_readonly):
        exports: list[httpx.Request] = []
        sleeps: list[float] = []
        monkeypatch.setattr(time, "sleep", sleeps.append)  # the transport's sleep, looked up when it is built

        def handler(request: httpx.Request, exports: list[httpx.Request] = exports) -> httpx.Response:
            if request.url.path.endswith("/token"):
                return httpx.Response(
                    200, json={"access_token": "t", "expires_in": 300, "refresh_token": "r", "refresh_expires_in": 1800}
                )
            exports.append(request)
            return httpx.Response(503)

        with make(
            env, Credentials("demo", "demo-secret", totp_secret=TOTP_SECRET), transport=httpx.MockTransport(handler)
        ) as client:
            with pytest.raises(ApiError):
                client.export()
        assert len(exports) == 2, make.__name__  # attempts: 2, not the default 6
        paced = [s for s in sleeps if s > 1]
        # min_interval 5 s between the token request and the two exports
        assert paced and all(s <= 5.0 for s in paced), sleeps
        monkeypatch.undo()


def test_retry_settings_out_of_range_are_config_errors(tmp_path) -> None:
    from numsync.config import ConfigError, load_config

    (tmp_path / "desired").mkdir()
    config = tmp_path / "numsync.yaml"
    config.write_text(
        "environments:\n  test:\n    base_url: http://127.0.0.1:9/integrations\n    desired: desired\n"
        "    groups:\n      ocp-qa: {}\n    retry:\n      attempts: 0\n      pace: 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert f"{config}:8:17" in text and "attempts" in text  # 0 is less than the minimum of 1
    assert "pace" in text  # unknown key
