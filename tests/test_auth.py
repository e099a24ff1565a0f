"""Token auth: renewal before expiry, one renewal + replay on a 401, pre-issued tokens, two-factor, refusals.

Against the emulator (a real process, real clock) where the server's verdict matters, and
with ``httpx.MockTransport`` where the exact form sent to the token endpoint is the point.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pyotp
import pytest
from cli_workspace import OTP_POLICY, TOTP_SECRET, emulator_process
from freezegun import freeze_time

from numsync.config import Environment
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.emulator.process import EmulatorProcess
from numsync.ocp import ApiError, AuthError, Credentials, OCPAuth, OCPClient, OCPReader
from numsync.ocp.auth import EXPIRY_LEEWAY
from numsync.ocp.otp import OtpPolicy, StepLedger
from numsync.ocp.retry import RetryPolicy
from numsync.ocp.vocabulary import Operation
from numsync.workflow.apply import apply_plan
from numsync.workflow.pipeline import export_live
from numsync.workflow.plan import make_plan

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
DEMO = Credentials("demo", "demo-secret", totp_secret=TOTP_SECRET)
TOKEN_URL = "http://ocp.test/auth/realms/master/protocol/openid-connect/token"
BASE = "http://ocp.test/integrations"
CSV = b"NUMBER,GROUP_ID,MINIAPP_ID,LOCALE,PHONE_NUMBER_SET_ID,APPLICATION_TAG,NOTE\r\n"
SECRET = TOTP_SECRET  # the emulator's seeded users have it


class Recorder(httpx.BaseTransport):
    """Records (kind, grant or method, status, bearer) for every request on the wire."""

    def __init__(self, inner: httpx.BaseTransport | None = None, on_api=None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.on_api = on_api
        self.log: list[tuple[str, str, int, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            kind, what = "token", parse_qs(request.read().decode())["grant_type"][0]
        else:
            kind, what = "api", request.method
            if self.on_api:
                self.on_api()
        response = self.inner.handle_request(request)
        self.log.append((kind, what, response.status_code, request.headers.get("Authorization", "")))
        return response

    def close(self) -> None:
        self.inner.close()

    def grants(self) -> list[str]:
        return [what for kind, what, _, _ in self.log if kind == "token"]

    def api(self) -> list[tuple[str, int]]:
        return [(what, status) for kind, what, status, _ in self.log if kind == "api"]


def reader(emu: EmulatorProcess, auth: OCPAuth, recorder: Recorder) -> OCPReader:
    return OCPReader(emu.base_url, auth, transport=recorder, retry=FAST)


# --- renewal against the emulator ------------------------------------------------------------


def test_tokens_shorter_than_the_leeway_are_renewed_before_every_request(tmp_path: Path) -> None:
    with emulator_process("--access-ttl", "1", "--refresh-ttl", "60") as emu:
        recorder = Recorder()
        auth = OCPAuth(emu.token_url, DEMO, otp=OTP_POLICY)
        with reader(emu, auth, recorder) as client:
            for _ in range(4):
                client.export()
                time.sleep(0.45)  # 1.8 s in all: longer than one access token lives
        assert recorder.api() == [("POST", 200)] * 4, "never a 401: renewed before expiry"
        assert recorder.grants() == ["password", "refresh_token", "refresh_token", "refresh_token"]
        bearers = [b for kind, _, _, b in recorder.log if kind == "api"]
        assert len(set(bearers)) == 4


def test_a_twenty_minute_apply_with_300_s_tokens(tmp_path: Path) -> None:
    """21 requests, the client's clock moving 60 s before each: renewed every 300 s through the refresh grant."""
    now = [1000.0]

    def tick() -> None:
        now[0] += 60

    with emulator_process() as emu:  # 300 s access tokens, 1800 s refresh tokens
        recorder = Recorder(on_api=None)
        auth = OCPAuth(emu.token_url, DEMO, clock=lambda: now[0], otp=OTP_POLICY)
        env = Environment(
            "long",
            emu.base_url,
            emu.token_url,
            tmp_path,
            {"ocp-qa": GroupPolicy("ocp-qa")},
            limits={op: 1 for op in Operation},
        )
        with OCPClient(emu.base_url, auth, transport=recorder, retry=FAST) as client:
            live = export_live(client)
            qa = sorted((r for r in live if r.group_id == "ocp-qa"), key=lambda r: r.number)[:20]
            desired = {
                r.number: NumberRecord(r.number, r.group_id, {**r.fields, Field.NOTE: f"long apply {i}"})
                for i, r in enumerate(qa)
            }
            desired.update({r.number: r for r in live if r.group_id == "ocp-qa" and r.number not in desired})
            the_plan = make_plan(env, desired, live, diff(desired, live, env.groups))
            assert the_plan.request_count() == 20
            recorder.on_api = tick
            result = apply_plan(the_plan, client)
            started_at, ended_at = 1000.0, now[0]
        assert result.ok and result.applied == 20
        assert ended_at - started_at >= 20 * 60  # a 20-minute apply, as the client saw it
        assert all(status == 200 for _, status in recorder.api()), "no request was refused"
        grants = recorder.grants()
        assert grants[0] == "password" and set(grants[1:]) == {"refresh_token"}
        # Each token serves 300 s of the client's clock (5 PUTs 60 s apart), then is renewed before it expires:
        # the check at +300 s is past expiry - EXPIRY_LEEWAY, the one at +240 s is not.
        assert grants == ["password"] + ["refresh_token"] * 3, grants
        put_bearers = [b for kind, what, _, b in recorder.log if what == "PUT"]
        runs = [len(list(group)) for _, group in itertools.groupby(put_bearers)]
        assert runs == [5, 5, 5, 5], runs
        final = emu.numbers()
        assert all(final[n]["NOTE"] == r.fields[Field.NOTE] for n, r in desired.items() if n in {q.number for q in qa})


def test_after_the_refresh_token_expires_the_client_logs_in_again() -> None:
    now = [0.0]
    with emulator_process() as emu:
        recorder = Recorder()
        auth = OCPAuth(emu.token_url, DEMO, clock=lambda: now[0], otp=OTP_POLICY)
        with reader(emu, auth, recorder) as client:
            client.export()
            now[0] = 290.0  # access token within the leeway: refresh grant
            client.export()
            now[0] = 290.0 + 1800  # past the refresh token too: password again
            client.export()
        assert recorder.grants() == ["password", "refresh_token", "password"]
        assert recorder.api() == [("POST", 200)] * 3


def test_a_401_renews_once_and_replays_the_request() -> None:
    """The server expires a token the client still trusts (its clock lags): 401 → refresh → the same request again."""
    now = [0.0]
    with emulator_process("--access-ttl", "1") as emu:
        recorder = Recorder()
        auth = OCPAuth(emu.token_url, DEMO, clock=lambda: now[0], otp=OTP_POLICY)
        with OCPClient(emu.base_url, auth, transport=recorder, retry=FAST) as client:
            client.export()
            now[0] = -100.0  # the client now believes its token has ~100 s left
            time.sleep(1.3)  # the server's token has expired
            result = client.execute(b"OPERATION,NUMBER,NOTE\r\nUpdate,+12015550100,replayed\r\n")
        assert result.failed == [] and result.rows and result.rows[0].ok
        assert [(k, w, s) for k, w, s, _ in recorder.log] == [
            ("token", "password", 200),
            ("api", "POST", 200),
            ("api", "PUT", 401),
            ("token", "refresh_token", 200),
            ("api", "PUT", 200),
        ]
        put_bearers = [b for k, w, _, b in recorder.log if w == "PUT"]
        assert put_bearers[0] != put_bearers[1]
        assert emu.stats()["rows_applied"] == 1 and emu.numbers()["+12015550100"]["NOTE"] == "replayed"


def test_a_second_401_is_not_retried_again() -> None:
    log: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            log.append("token")
            return httpx.Response(
                200,
                json={
                    "access_token": f"t{len(log)}",
                    "expires_in": 300,
                    "refresh_token": "r",
                    "refresh_expires_in": 1800,
                },
            )
        log.append(request.headers["Authorization"])
        return httpx.Response(401, json={"error": "invalid_token"})

    with OCPReader(
        BASE, OCPAuth(TOKEN_URL, DEMO, otp=OTP_POLICY), transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        with pytest.raises(ApiError) as caught:
            client.export()
    assert caught.value.status == 401 and "the token was refused" in str(caught.value)
    assert log == ["token", "Bearer t1", "token", "Bearer t3"]


def test_an_apply_outliving_every_token_works_in_real_time(tmp_path: Path) -> None:
    """Access tokens of 1 s and refresh tokens of 2 s on the server; an apply of 5 files spread over ~2.5 s.

    Every request logs in with a fresh two-factor code, so the OTP period is short (1 s) on both sides."""
    with emulator_process("--access-ttl", "1", "--refresh-ttl", "2", otp_period=1) as emu:
        recorder = Recorder()
        env = Environment(
            "real",
            emu.base_url,
            emu.token_url,
            tmp_path,
            {"uk-care": GroupPolicy("uk-care")},
            limits={op: 1 for op in Operation},
        )
        auth = OCPAuth(emu.token_url, DEMO, otp=OtpPolicy(period=1))
        with OCPClient(emu.base_url, auth, transport=recorder, retry=FAST) as client:
            live = export_live(client)
            care = sorted((r for r in live if r.group_id == "uk-care"), key=lambda r: r.number)
            desired = {r.number: r for r in care}
            for r in care[:5]:
                desired[r.number] = NumberRecord(r.number, r.group_id, {**r.fields, Field.NOTE: "slow apply"})
            the_plan = make_plan(env, desired, live, diff(desired, live, env.groups))
            result = apply_plan(the_plan, client, on_batch=lambda outcome: time.sleep(0.5))
        assert result.ok and result.applied == 5
        assert all(status == 200 for _, status in recorder.api())
        assert recorder.grants().count("password") == 6  # lifetimes below the leeway: a fresh login each request
        assert all(emu.numbers()[r.number]["NOTE"] == "slow apply" for r in care[:5])


def test_the_leeway_is_thirty_seconds() -> None:
    assert EXPIRY_LEEWAY == 30.0


# --- pre-issued token ----------------------------------------------------------------------


def test_a_pre_issued_token_is_used_as_is_and_never_renewed() -> None:
    with emulator_process("--access-ttl", "1") as emu:
        token = emu.token()
        credentials = Credentials.from_env({"OCP_TOKEN": token, "OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret"})
        assert credentials.token == token and credentials.password is None  # the token wins
        recorder = Recorder()
        with reader(emu, OCPAuth(emu.token_url, credentials), recorder) as client:
            client.export()
            time.sleep(1.2)
            with pytest.raises(ApiError) as caught:
                client.export()
        assert caught.value.status == 401 and "the token was refused" in str(caught.value)
        assert token not in str(caught.value)
        assert recorder.grants() == []
        assert recorder.log[0][3] == f"Bearer {token}"
        assert recorder.api() == [("POST", 200), ("POST", 401)]  # not replayed: nothing to renew with
        assert emu.stats()["token_requests"] == 1  # only the one the test made


# --- two-factor ----------------------------------------------------------------------------


def fresh_ledger() -> StepLedger:
    """A step ledger of its own: the default OTP policy (30 s codes) without waiting for steps other tests used."""
    return StepLedger(Path(tempfile.mkdtemp(prefix="numsync-ledger-")) / "otp-steps.json")


def capture_token_forms(
    credentials: Credentials, requests: int = 1, expires_in: int = 300, refresh: bool = True
) -> list[dict[str, str]]:
    forms: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            forms.append({k: v[0] for k, v in parse_qs(request.content.decode()).items()})
            body = {"access_token": f"access-{len(forms)}", "expires_in": expires_in}
            if refresh:
                body |= {"refresh_token": f"refresh-{len(forms)}", "refresh_expires_in": 1800}
            return httpx.Response(200, json=body)
        return httpx.Response(200, content=CSV)

    with OCPReader(
        BASE, OCPAuth(TOKEN_URL, credentials, ledger=fresh_ledger()), transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        for _ in range(requests):
            client.export()
    return forms


def test_ocp_otp_is_sent_in_the_vendors_otp_field() -> None:
    # Behaviour change (issue #12): the vendor's token endpoint reads the code from "otp", not "totp".
    credentials = Credentials.from_env({"OCP_USERNAME": "demo", "OCP_PASSWORD": "pw", "OCP_OTP": "123456"})
    [form] = capture_token_forms(credentials)
    assert form == {
        "client_id": "ocp",
        "grant_type": "password",
        "username": "demo",
        "password": "pw",
        "otp": "123456",
    }


def test_ocp_totp_secret_generates_a_valid_six_digit_code() -> None:
    credentials = Credentials.from_env({"OCP_USERNAME": "demo", "OCP_PASSWORD": "pw", "OCP_TOTP_SECRET": SECRET})
    [form] = capture_token_forms(credentials)
    code = form["otp"]
    assert len(code) == 6 and code.isdigit()
    assert pyotp.TOTP(SECRET).verify(code, valid_window=1)
    assert SECRET not in json.dumps(form)


def test_each_password_login_generates_the_code_of_its_own_time() -> None:
    credentials = Credentials("demo", "pw", totp_secret=SECRET)
    forms: list[dict[str, str]] = []
    with freeze_time("2026-03-01 12:00:00") as frozen:

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/token"):
                forms.append({k: v[0] for k, v in parse_qs(request.content.decode()).items()} | {"at": time.time()})
                return httpx.Response(200, json={"access_token": "a", "expires_in": 10})  # no refresh token
            return httpx.Response(200, content=CSV)

        with OCPReader(
            BASE,
            OCPAuth(TOKEN_URL, credentials, clock=time.time, ledger=fresh_ledger()),
            transport=httpx.MockTransport(handler),
            retry=FAST,
        ) as client:
            client.export()
            frozen.tick(90)
            client.export()
    assert len(forms) == 2 and all(f["grant_type"] == "password" for f in forms)
    assert forms[0]["otp"] != forms[1]["otp"]
    for form in forms:
        assert form["otp"] == pyotp.TOTP(SECRET).at(form["at"])


def test_ocp_otp_wins_over_the_secret_and_no_code_without_either() -> None:
    both = Credentials.from_env(
        {"OCP_USERNAME": "u", "OCP_PASSWORD": "p", "OCP_OTP": "654321", "OCP_TOTP_SECRET": SECRET}
    )
    assert capture_token_forms(both)[0]["otp"] == "654321"
    assert "otp" not in capture_token_forms(Credentials.from_env({"OCP_USERNAME": "u", "OCP_PASSWORD": "p"}))[0]


def test_the_refresh_grant_sends_neither_password_nor_code() -> None:
    forms = capture_token_forms(Credentials("demo", "pw", totp_secret=SECRET), requests=2, expires_in=5)
    assert [f["grant_type"] for f in forms] == ["password", "refresh_token"]
    assert forms[1] == {"client_id": "ocp", "grant_type": "refresh_token", "refresh_token": "refresh-1"}


def test_an_empty_otp_variable_means_no_code() -> None:
    credentials = Credentials.from_env({"OCP_USERNAME": "u", "OCP_PASSWORD": "p", "OCP_OTP": "", "OCP_TOTP_SECRET": ""})
    [form] = capture_token_forms(credentials)
    assert "otp" not in form and "totp" not in form


# --- refusals ------------------------------------------------------------------------------


def test_a_wrong_password_is_an_auth_error_without_the_password() -> None:
    password = "Wr0ng-P4ss-XyZ-42"
    with emulator_process() as emu:
        recorder = Recorder()
        with reader(emu, OCPAuth(emu.token_url, Credentials("demo", password), otp=OTP_POLICY), recorder) as client:
            with pytest.raises(AuthError) as caught:
                client.export()
        assert recorder.api() == []  # nothing sent to the API
    message = str(caught.value)
    assert "OCP refused to log in user 'demo': HTTP 401" in message and "Invalid user credentials" in message
    assert password not in message and password not in repr(caught.value)


def test_credentials_repr_and_errors_hide_every_secret() -> None:
    credentials = Credentials("demo", "pw-secret-1", otp="998877", totp_secret=SECRET)
    assert all(s not in repr(credentials) for s in ("pw-secret-1", "998877", SECRET))
    assert set(credentials.secrets()) == {"pw-secret-1", "998877", SECRET}
    assert "tok-123" not in repr(Credentials(token="tok-123"))
    with pytest.raises(AuthError) as caught:
        Credentials.from_env({"OCP_USERNAME": "demo"})
    assert "OCP_PASSWORD" in str(caught.value)


def test_a_refused_refresh_falls_back_to_the_password() -> None:
    grants: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            grant = parse_qs(request.content.decode())["grant_type"][0]
            grants.append(grant)
            if grant == "refresh_token":
                return httpx.Response(
                    400, json={"error": "invalid_grant", "error_description": "Invalid refresh token"}
                )
            return httpx.Response(
                200, json={"access_token": "a", "expires_in": 5, "refresh_token": "r", "refresh_expires_in": 1800}
            )
        return httpx.Response(200, content=CSV)

    with OCPReader(
        BASE, OCPAuth(TOKEN_URL, DEMO, otp=OTP_POLICY), transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        client.export()
        client.export()
    assert grants == ["password", "refresh_token", "password"]


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, text="<html>login</html>"), httpx.Response(200, json={"token_type": "Bearer"})],
    ids=["html", "no-access-token"],
)
def test_a_token_answer_without_access_token_is_an_auth_error(answer: httpx.Response) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer if request.url.path.endswith("/token") else httpx.Response(200, content=CSV)

    with OCPReader(
        BASE, OCPAuth(TOKEN_URL, DEMO, otp=OTP_POLICY), transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        with pytest.raises(AuthError) as caught:
            client.export()
    assert "without an access_token" in str(caught.value) and "demo-secret" not in str(caught.value)


def test_a_refusal_that_echoes_the_password_or_code_does_not_leak_them() -> None:
    password = "echoed-Secret-77"

    def handler(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        echo = f"bad password {form['password'][0]} or code {form['otp'][0]}"
        return httpx.Response(401, json={"error": "invalid_grant", "error_description": echo})

    credentials = Credentials("demo", password, otp="246810")
    with OCPReader(
        BASE, OCPAuth(TOKEN_URL, credentials, ledger=fresh_ledger()), transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        with pytest.raises(AuthError) as caught:
            client.export()
    message = str(caught.value)
    assert "bad password *** or code ***" in message
    assert password not in message and "246810" not in message


def test_the_words_of_a_refusal_are_shown_on_one_line_with_visible_escapes() -> None:
    """OCP's error_description (or message) was put into the error raw: its newline forged a line of the
    CLI's output (a "Verified …" that never happened), and a U+202E reordered what followed."""
    said = "Invalid\nVerified: live now matches desired.\u202eX"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(401, json={"error": "invalid_grant", "error_description": said})
        return httpx.Response(400, json={"error": "bad", "message": said})

    for credentials in (DEMO, Credentials(token="t" * 20)):
        auth = OCPAuth(TOKEN_URL, credentials, ledger=fresh_ledger())
        with OCPReader(BASE, auth, transport=httpx.MockTransport(handler), retry=FAST) as client:
            with pytest.raises((AuthError, ApiError)) as caught:
                client.export()
        message = str(caught.value)
        assert "\n" not in message and "\u202e" not in message, message
        assert "Invalid\\nVerified: live now matches desired.\\u202eX" in message, message


def test_a_lost_login_answer_is_not_resent_with_the_same_code() -> None:
    """The first token request reaches OCP but its answer is lost: the retry carries another code (TOTP secret),
    and with OCP_OTP's single code there is none, which the error says."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            sent.append(parse_qs(request.read().decode())["otp"][0])
            if len(sent) == 1:
                raise httpx.ReadError("connection reset by peer")
            return httpx.Response(200, json={"access_token": "a" * 20, "expires_in": 300})
        return httpx.Response(200, content=CSV)

    with tempfile.TemporaryDirectory() as folder:
        auth = OCPAuth(TOKEN_URL, DEMO, otp=OtpPolicy(period=30, look_around=1), ledger=StepLedger(Path(folder) / "l"))
        with OCPReader(BASE, auth, transport=httpx.MockTransport(handler), retry=FAST) as client:
            assert client.export() == CSV
    assert len(sent) == 2 and sent[0] != sent[1]

    sent.clear()
    given = Credentials("demo", "demo-secret", otp="123456")
    with OCPReader(BASE, OCPAuth(TOKEN_URL, given), transport=httpx.MockTransport(handler), retry=FAST) as client:
        with pytest.raises(AuthError) as caught:
            client.export()
    assert (
        sent == ["123456"] and "OCP_OTP holds one code" in str(caught.value) and "OCP_TOTP_SECRET" in str(caught.value)
    )


@pytest.mark.parametrize("code", ["abc", "12345", "12 34 56", "１２３４５６", "12345678901", "123456\n7"])
def test_an_ocp_otp_that_is_no_code_is_refused_before_anything_is_sent(code: str) -> None:
    with pytest.raises(AuthError) as refused:
        Credentials.from_env({"OCP_USERNAME": "demo", "OCP_PASSWORD": "pw", "OCP_OTP": code})
    assert "OCP_OTP is not a one-time code" in str(refused.value) and code.strip() not in str(refused.value)


def test_an_ocp_otp_of_six_or_eight_digits_is_taken_without_its_spaces() -> None:
    for code in ("123456", " 12345678\n"):
        assert Credentials.from_env({"OCP_USERNAME": "u", "OCP_PASSWORD": "p", "OCP_OTP": code}).otp == code.strip()
