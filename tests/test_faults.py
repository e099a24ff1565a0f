"""Each fault kind of the emulator (``--faults FILE --fault-seed N``), seen two ways:

- by a raw httpx client: the status, header, exception or cut body the fault produces, and
  for PUTs whether the write was applied (``/_emulator/state``);
- by numsync's client: reads recover, a 429 write is resent and applied once, an ambiguous
  write is never resent blindly — ``apply_with_recovery`` re-exports, re-plans, converges.

The randomized mix lives in tests/test_chaos.py; here each rule fires a fixed number of times
(``times``): usually once for the raw client, then once for numsync's, in one emulator.
"""

from __future__ import annotations

import csv
import email.utils
import io
import time
from pathlib import Path

import httpx
import pytest
import yaml
from cli_workspace import OTP_POLICY, OTP_SETTING, TOTP_SECRET, emulator_process
from click.testing import CliRunner

from numsync.config import Environment, Settle
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.emulator.command import emulator_command
from numsync.emulator.faults import load_rules
from numsync.emulator.process import EmulatorProcess, EmulatorStartError
from numsync.ocp import ApiError, Credentials, OCPAuth, OCPClient
from numsync.ocp.csvcodec import ExportFormatError, parse_export
from numsync.ocp.retry import RetryPolicy
from numsync.workflow.apply import BatchOutcome
from numsync.workflow.pipeline import apply_with_recovery, export_live
from numsync.workflow.plan import make_plan

FAST = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, max_retry_after=5.0)
PUT_UPDATE = b"OPERATION,NUMBER,NOTE\r\nUpdate,+12015550100,written by the fault test\r\n"
PUT_CREATE = b"OPERATION,GROUP_ID,NUMBER,PROVIDER\r\nCreate,ocp-qa,+12025550150,twilio\r\n"
NEW_NUMBERS = ["+12025550150", "+12025550151", "+12025550152"]


# --- helpers -------------------------------------------------------------------------------


def emulator(tmp_path: Path, rules: list[dict], seed: int = 0, *extra: str) -> EmulatorProcess:
    spec = tmp_path / f"faults-{len(list(tmp_path.glob('faults-*')))}.yaml"
    spec.write_text(yaml.safe_dump(rules))
    return emulator_process("--faults", str(spec), "--fault-seed", str(seed), *extra)


#: How a dropped connection surfaces: a clean close mid-answer, or a reset when the server
#: closed before reading the whole request body (then the kernel answers with RST).
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)

#: The raw client: plain httpx, no retries (one instance: building a client costs ~50 ms).
RAW = httpx.Client(timeout=10)


def bearer(emu: EmulatorProcess) -> dict[str, str]:
    form = emu.login_form()
    return {"Authorization": f"Bearer {RAW.post(emu.token_url, data=form).raise_for_status().json()['access_token']}"}


def raw_export(emu: EmulatorProcess, headers: dict[str, str]) -> httpx.Response:
    return RAW.post(emu.base_url + "/api/numbers/csv", headers=headers, json={})


def raw_put(emu: EmulatorProcess, headers: dict[str, str], body: bytes = PUT_UPDATE) -> httpx.Response:
    return RAW.put(emu.base_url + "/api/numbers/csv", headers=headers, files={"file": ("ops.csv", body, "text/csv")})


class Recorder(httpx.BaseTransport):
    """The inner transport of numsync's client: records every attempt that goes on the wire."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, str, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path, request.read()))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def puts(self) -> list[bytes]:
        return [body for method, _, body in self.sent if method == "PUT"]

    def numbers(self, operation: str) -> list[str]:
        """The NUMBER of every ``operation`` row sent, in order (a number sent twice shows twice)."""
        found = []
        for body in self.puts():
            # the multipart body: the CSV sits between the part headers and the closing boundary
            text = body.decode()
            csv_text = text.split("\r\n\r\n", 1)[1].rsplit("\r\n--", 1)[0]
            found += [row["NUMBER"] for row in csv.DictReader(io.StringIO(csv_text)) if row["OPERATION"] == operation]
        return found


def numsync_client(
    emu: EmulatorProcess, recorder: Recorder | None = None, retries: list | None = None, **options
) -> OCPClient:
    on_retry = (lambda req, reason, delay: retries.append((req.method, reason, delay))) if retries is not None else None
    return OCPClient(
        emu.base_url,
        OCPAuth(emu.token_url, Credentials("demo", "demo-secret", totp_secret=TOTP_SECRET), otp=OTP_POLICY),
        retry=options.pop("retry", FAST),
        transport=recorder,
        on_retry=on_retry,
        **options,
    )


def environment(emu: EmulatorProcess, tmp_path: Path) -> Environment:
    return Environment(
        name="faults",
        base_url=emu.base_url,
        token_url=emu.token_url,
        desired=tmp_path,
        groups={"ocp-qa": GroupPolicy("ocp-qa", prune=True)},
        default_provider="twilio",
        settle=Settle(interval=0.1, timeout=10),
    )


def outcome(call) -> str:
    """What a raw client saw, as a short string (for determinism checks)."""
    try:
        response = call()
    except DROPPED:
        return "dropped"
    except httpx.HTTPError as exc:
        return type(exc).__name__
    kind = response.headers.get("content-type", "").split(";")[0]
    return f"{response.status_code} {kind}"


@pytest.fixture(scope="module")
def clean_export() -> bytes:
    with emulator_process() as emu:
        return raw_export(emu, bearer(emu)).content


# --- latency ---------------------------------------------------------------------------------


def test_latency_delays_the_answer_and_a_read_timeout_is_retried(tmp_path: Path, clean_export: bytes) -> None:
    with emulator(tmp_path, [{"target": "export", "kind": "latency", "seconds": 0.6, "times": 2}]) as emu:
        headers = bearer(emu)
        started = time.monotonic()
        slow = raw_export(emu, headers)
        assert time.monotonic() - started >= 0.6
        assert slow.status_code == 200 and slow.content == clean_export  # then answered normally

        retries: list = []
        with numsync_client(emu, retries=retries, timeout=0.3) as client:
            assert client.export() == clean_export  # the second latency made it time out once; retried
        assert [r[:2] for r in retries] == [("POST", "connection broken")]


# --- status before processing: export 503, token 502, put 429 -------------------------------


def test_export_503_is_seen_raw_and_retried_by_numsync(tmp_path: Path, clean_export: bytes) -> None:
    with emulator(tmp_path, [{"target": "export", "kind": "status", "status": 503, "times": 2}]) as emu:
        headers = bearer(emu)
        first = raw_export(emu, headers)
        assert first.status_code == 503 and first.json()["error"] == "injected"
        retries: list = []
        with numsync_client(emu, retries=retries) as client:
            assert client.export() == clean_export
        assert [r[1] for r in retries] == ["HTTP 503"]
        assert emu.stats()["export_requests"] == 1  # the faulted ones never reached the API


def test_token_502_is_retried_by_the_auth_flow(tmp_path: Path, clean_export: bytes) -> None:
    with emulator(tmp_path, [{"target": "token", "kind": "status", "status": 502, "times": 2}]) as emu:
        retries: list = []
        with numsync_client(emu, retries=retries) as client:
            assert client.export() == clean_export
        assert [(r[0], r[1]) for r in retries] == [("POST", "HTTP 502")] * 2
        assert emu.stats()["token_requests"] == 1


def test_put_429_with_retry_after_seconds_is_not_applied_then_resent_and_applied_once(tmp_path: Path) -> None:
    rule = {"target": "put", "kind": "status", "status": 429, "retry_after": "1", "times": 2}
    with emulator(tmp_path, [rule]) as emu:
        refused = raw_put(emu, bearer(emu))
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert emu.numbers()["+12015550100"]["NOTE"] == ""  # refused before processing
        assert emu.stats()["put_requests"] == 0

        recorder, retries = Recorder(), []
        with numsync_client(emu, recorder, retries) as client:
            result = client.execute(PUT_CREATE)
        assert result.status == 200 and result.failed == [] and len(result.rows or []) == 1
        assert retries == [("PUT", "HTTP 429", 1.0)]  # waited what Retry-After said
        assert len(recorder.puts()) == 2 and recorder.puts()[0] == recorder.puts()[1]
        assert emu.stats()["rows_applied"] == 1 and "+12025550150" in emu.numbers()


def test_put_429_with_retry_after_http_date_is_honoured(tmp_path: Path) -> None:
    rule = {"target": "put", "kind": "status", "status": 429, "retry_after": "http-date", "times": 2}
    with emulator(tmp_path, [rule]) as emu:
        refused = raw_put(emu, bearer(emu))
        assert refused.status_code == 429
        when = email.utils.parsedate_to_datetime(refused.headers["Retry-After"])
        assert when.tzinfo is not None and 0 < when.timestamp() - time.time() <= 3
        assert emu.numbers()["+12015550100"]["NOTE"] == ""

        recorder, retries = Recorder(), []
        started = time.monotonic()
        with numsync_client(emu, recorder, retries) as client:
            result = client.execute(PUT_CREATE)
        assert result.failed == []
        assert retries[0][:2] == ("PUT", "HTTP 429") and 0.5 <= retries[0][2] <= 3.0
        assert time.monotonic() - started >= retries[0][2]
        assert len(recorder.puts()) == 2 and emu.stats()["rows_applied"] == 1


# --- ambiguous writes: status_after, reset_before, reset_after ------------------------------


def test_put_status_after_502_is_applied_and_numsync_reports_it_ambiguous(tmp_path: Path) -> None:
    rule = {"target": "put", "kind": "status_after", "status": 502, "times": 2}
    with emulator(tmp_path, [rule]) as emu:
        answer = raw_put(emu, bearer(emu))
        assert answer.status_code == 502
        assert emu.numbers()["+12015550100"]["NOTE"] == "written by the fault test"  # processed anyway

        recorder = Recorder()
        with numsync_client(emu, recorder) as client, pytest.raises(ApiError) as caught:
            client.execute(PUT_CREATE)
        assert caught.value.status == 502 and caught.value.sent
        assert len(recorder.puts()) == 1  # a 5xx write is never resent
        assert "+12025550150" in emu.numbers()


def test_put_reset_before_is_not_applied_and_numsync_does_not_resend_it(tmp_path: Path) -> None:
    rule = {"target": "put", "kind": "reset_before", "times": 2}
    with emulator(tmp_path, [rule]) as emu:
        with pytest.raises(DROPPED):
            raw_put(emu, bearer(emu))
        assert emu.numbers()["+12015550100"]["NOTE"] == ""  # dropped before processing
        assert emu.stats()["put_requests"] == 0

        recorder = Recorder()
        with numsync_client(emu, recorder) as client, pytest.raises(ApiError) as caught:
            client.execute(PUT_UPDATE)
        # On the wire a reset before processing looks like one after: outcome unknown, not resent.
        assert caught.value.status is None and caught.value.sent and "outcome unknown" in str(caught.value)
        assert len(recorder.puts()) == 1
        assert emu.numbers()["+12015550100"]["NOTE"] == ""


def test_put_reset_after_is_applied_and_the_next_plan_never_sends_a_second_create(tmp_path: Path) -> None:
    rule = {"target": "put", "kind": "reset_after", "times": 2}
    with emulator(tmp_path, [rule]) as emu:
        with pytest.raises(DROPPED):
            raw_put(emu, bearer(emu))
        assert emu.numbers()["+12015550100"]["NOTE"] == "written by the fault test"  # committed, then dropped

        recorder = Recorder()
        with numsync_client(emu, recorder) as client:
            with pytest.raises(ApiError) as caught:
                client.execute(PUT_CREATE)
            assert caught.value.status is None and caught.value.sent and "outcome unknown" in str(caught.value)
            assert len(recorder.puts()) == 1
            assert "+12025550150" in emu.numbers()

            live = export_live(client)
            desired, env = _desired_with_new_numbers(live), environment(emu, tmp_path)
            outcomes: list[BatchOutcome] = []
            result, replans = _apply(env, desired, client, live, outcomes)
        creates = recorder.numbers("Create")
        assert sorted(creates) == NEW_NUMBERS, "each number created exactly once"
        assert not any("already exists" in f.message for o in outcomes for f in o.failures)
        assert result.ok and replans == 0
        _assert_converged(emu, env, desired)


@pytest.mark.parametrize("kind", ["reset_after", "status_after", "reset_before"])
def test_apply_with_recovery_replans_after_an_ambiguous_create_batch(tmp_path: Path, kind: str) -> None:
    rule = {"target": "put", "kind": kind, "status": 502, "times": 1}
    with emulator(tmp_path, [rule]) as emu:
        recorder = Recorder()
        with numsync_client(emu, recorder) as client:
            live = export_live(client)
            desired, env = _desired_with_new_numbers(live), environment(emu, tmp_path)
            outcomes: list[BatchOutcome] = []
            result, replans = _apply(env, desired, client, live, outcomes)
        assert outcomes[0].ambiguous and outcomes[0].failures == ()
        assert replans == 1
        assert result.ok and result.failures == [] and result.interrupted is None
        assert result.applied == 2 * len(NEW_NUMBERS)  # Create + Update per new number
        creates = recorder.numbers("Create")
        expected = 2 if kind == "reset_before" else 1  # sent again only when the first never landed
        assert sorted(creates) == sorted(NEW_NUMBERS * expected), creates
        assert not any("already exists" in f.message for o in outcomes for f in o.failures)
        _assert_converged(emu, env, desired)


@pytest.mark.parametrize("kind", ["reset_after", "status_after"])
def test_a_delete_that_landed_before_the_fault_counts_as_done(tmp_path: Path, kind: str) -> None:
    rule = {"target": "put", "kind": kind, "status": 503, "times": 1}
    with emulator(tmp_path, [rule]) as emu:
        recorder = Recorder()
        with numsync_client(emu, recorder) as client:
            live = export_live(client)
            qa = sorted(
                (r for r in live if r.group_id == "ocp-qa" and Field.MINIAPP_ID not in r.fields), key=lambda r: r.number
            )
            gone = {r.number for r in qa[:3]}
            desired = {r.number: r for r in live if r.group_id == "ocp-qa" and r.number not in gone}
            env = environment(emu, tmp_path)
            result, replans = _apply(env, desired, client, live)
        assert result.ok and result.applied == 3 and result.failures == []
        assert replans == 0  # the re-export shows the deletes done: nothing left to plan
        assert len(recorder.numbers("Delete")) == 3 and len(recorder.puts()) == 1
        assert not gone & emu.numbers().keys()


def test_put_timeout_is_ambiguous_and_recovery_converges(tmp_path: Path) -> None:
    """A write that times out (the server was slow) is not resent blindly; the re-plan decides."""
    with emulator(tmp_path, [{"target": "put", "kind": "latency", "seconds": 1.5, "times": 1}]) as emu:
        recorder = Recorder()
        with numsync_client(emu, recorder, timeout=0.5) as client:
            live = export_live(client)
            desired, env = _desired_with_new_numbers(live), environment(emu, tmp_path)
            outcomes: list[BatchOutcome] = []
            result, replans = _apply(env, desired, client, live, outcomes)
        assert outcomes[0].ambiguous and "ReadTimeout" in (outcomes[0].error or "")
        assert replans == 1 and result.ok
        assert not any("already exists" in f.message for o in outcomes for f in o.failures)
        time.sleep(1.2)  # let the slow request finish on the server: it must not add anything
        _assert_converged(emu, env, desired)


# --- export faults: cut, html ----------------------------------------------------------------


def test_cut_export_is_truncated_raw_and_retried_by_numsync(tmp_path: Path, clean_export: bytes) -> None:
    with emulator(tmp_path, [{"target": "export", "kind": "cut", "times": 2}]) as emu:
        headers = bearer(emu)
        received = b""
        with (
            pytest.raises(DROPPED),
            RAW.stream("POST", emu.base_url + "/api/numbers/csv", headers=headers, json={}) as response,
        ):
            assert response.status_code == 200
            assert int(response.headers["content-length"]) == len(clean_export)
            for chunk in response.iter_raw():
                received += chunk
        assert received == clean_export[: len(clean_export) // 2]
        with pytest.raises(ExportFormatError):
            parse_export(received)  # a cut body never parses as a complete export

        retries: list = []
        with numsync_client(emu, retries=retries) as client:
            assert len(export_live(client)) == len(parse_export(clean_export))
        assert [r[1] for r in retries] == ["connection broken"]


def test_html_page_with_status_200_stops_before_any_diff(tmp_path: Path) -> None:
    with emulator(tmp_path, [{"target": "export", "kind": "html", "times": 2}]) as emu:
        page = raw_export(emu, bearer(emu))
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.text.startswith("<!DOCTYPE html>")

        retries: list = []
        with numsync_client(emu, retries=retries) as client:
            body = client.export()  # a 200 is not retried: the parser must catch it
            with pytest.raises(ExportFormatError) as caught:
                parse_export(body)
        message = str(caught.value)
        assert retries == []
        assert "HTML" in message and "not CSV" in message
        assert repr(body.decode()) in message  # the start, quoted as a single line
        assert "\n" not in message


def test_html_preview_is_bounded_and_escapes_control_characters() -> None:
    body = b"<html>\x1b[31mred\x1b[0m\r\n<script>evil()</script>" + b"x" * 5000
    with pytest.raises(ExportFormatError) as caught:
        parse_export(body)
    message = str(caught.value)
    assert "\x1b" not in message and "\r" not in message and "\n" not in message
    assert "\\x1b[31m" in message
    assert len(message) < 300 and message.endswith("…")


def test_cli_apply_against_an_html_export_writes_nothing(tmp_path: Path) -> None:
    from numsync.cli import main

    with emulator(tmp_path, [{"target": "export", "kind": "html"}]) as emu:
        (tmp_path / "desired").mkdir()
        (tmp_path / "desired" / "qa.yaml").write_text('group_id: ocp-qa\nnumbers:\n  "+12015550100": {note: "x"}\n')
        (tmp_path / "numsync.yaml").write_text(
            f"environments:\n  t:\n    base_url: {emu.base_url}\n    desired: desired\n    {OTP_SETTING}\n    groups: {{ocp-qa: {{}}}}\n"
        )
        result = CliRunner().invoke(
            main,
            ["--config", str(tmp_path / "numsync.yaml"), "apply", "--auto-approve"],
            env={"OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret", "OCP_TOTP_SECRET": TOTP_SECRET},
        )
        assert result.exit_code == 1
        assert "the live export cannot be read: the export is an HTML or XML page" in result.output
        assert "'<!DOCTYPE html>" in result.output and "Nothing was planned or written" in result.output
        assert emu.stats()["put_requests"] == 0


# --- determinism, times, bad specs -------------------------------------------------------------

MIX = [
    {"target": "export", "kind": "status", "status": 503, "probability": 0.25},
    {"target": "export", "kind": "cut", "probability": 0.25},
    {"target": "export", "kind": "html", "probability": 0.25},
    {"target": "put", "kind": "status", "status": 429, "retry_after": "0", "probability": 0.3},
    {"target": "put", "kind": "reset_after", "probability": 0.3},
]


def _sequence(tmp_path: Path, seed: int) -> list[str]:
    with emulator(tmp_path, MIX, seed) as emu:
        headers = bearer(emu)
        seen = [outcome(lambda: raw_export(emu, headers)) for _ in range(12)]
        seen += [outcome(lambda: raw_put(emu, headers)) for _ in range(8)]
        return seen


def test_the_same_seed_gives_the_same_outcomes(tmp_path: Path) -> None:
    first, again = _sequence(tmp_path, 11), _sequence(tmp_path, 11)
    assert first == again
    assert {"503 application/json", "dropped", "200 text/html", "200 text/csv"} <= set(first[:12])
    assert {"429 application/json", "dropped"} & set(first[12:])
    assert _sequence(tmp_path, 12) != first


def test_times_caps_how_often_a_rule_fires(tmp_path: Path) -> None:
    with emulator(tmp_path, [{"target": "any", "kind": "status", "status": 503, "times": 3}]) as emu:
        seen = [outcome(lambda: raw_export(emu, {})) for _ in range(5)]
    assert seen == ["503 application/json"] * 3 + ["401 application/json"] * 2


BAD_SPECS = [
    ("- {target: put, kind: explode}\n", "fault kind 'explode' is not one of"),
    ("- {target: delete, kind: html}\n", "fault target 'delete' is not one of"),
    ("- {target: put, kind: html, chance: 0.5}\n", "unknown fault rule key(s) ['chance']"),
    ("target: put\nkind: html\n", "a fault spec is a list of rules"),
    ("", "a fault spec is a list of rules"),
    ("- {target: put, kind: [html\n", "expected ',' or ']'"),
]


@pytest.mark.parametrize(
    ("text", "message"), BAD_SPECS, ids=["kind", "target", "key", "not-a-list", "empty", "yaml-syntax"]
)
def test_a_bad_spec_stops_the_emulator_command_with_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(
        emulator_command, ["--port", "0", "--port-file", str(tmp_path / "port"), "--faults", str(spec)]
    )
    assert result.exit_code == 1
    assert f"Error: {spec}: " in result.output and message in result.output
    assert not (tmp_path / "port").exists(), "it must stop before listening"


def test_a_bad_spec_makes_the_emulator_process_exit_non_zero(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD_SPECS[0][0])
    with pytest.raises(EmulatorStartError) as caught:
        emulator_process("--faults", str(spec)).start()
    assert "exited with status 1 before listening" in str(caught.value)
    assert f"Error: {spec}: rule 1: fault kind 'explode' is not one of" in str(caught.value)


def test_a_missing_spec_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(emulator_command, ["--port", "0", "--faults", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"target": "export", "kind": "html", "probability": "high"},
            "probability must be a number from 0 to 1, not 'high'",
        ),
        ({"target": "export", "kind": "html", "probability": 2}, "probability must be a number from 0 to 1, not 2"),
        (
            {"target": "export", "kind": "status", "status": "abc"},
            "status must be an HTTP status code (100-599), not 'abc'",
        ),
        ({"target": "export", "kind": "latency", "seconds": "slow"}, "seconds must be a number"),
        ({"target": "export", "kind": "html", "times": -1}, "times must be a whole number"),
        ({"target": "put", "kind": "status", "status": 403, "message": 403}, "message must be text"),
        ({"target": "put", "kind": "status", "error": ""}, "error must be a non-empty code"),
        ({"target": "put", "kind": "blank_column"}, "fault kind blank_column applies to target export"),
    ],
    ids=[
        "probability-text",
        "probability-above-1",
        "status-text",
        "seconds-text",
        "times-negative",
        "message-number",
        "error-empty",
        "blank-column-on-put",
    ],
)
def test_a_rule_with_wrong_value_types_is_refused(rule: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_rules([{"target": "put", "kind": "html"}, rule])
    assert str(caught.value).startswith("rule 2: ") and message in str(caught.value)


def test_a_text_probability_stops_the_emulator_before_it_listens(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("- {target: export, kind: html, probability: high}\n")
    result = CliRunner().invoke(
        emulator_command, ["--port", "0", "--port-file", str(tmp_path / "port"), "--faults", str(spec)]
    )
    assert result.exit_code == 1 and "rule 1: probability must be a number" in result.output
    assert not (tmp_path / "port").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [(["html"], "rule 1: expected a mapping"), ([{"target": "export"}], "rule 1: a fault rule needs kind")],
    ids=["scalar-rule", "no-kind"],
)
def test_a_malformed_rule_is_named_in_the_message(data: list, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_rules(data)
    assert str(caught.value).startswith(message)
    assert "dictionary update sequence" not in str(caught.value) and "__init__" not in str(caught.value)


# --- recovery helpers --------------------------------------------------------------------------


def _desired_with_new_numbers(live: list[NumberRecord]) -> dict[str, NumberRecord]:
    """Live ocp-qa as is, plus new numbers with a note: each is Create → Update."""
    desired = {r.number: r for r in live if r.group_id == "ocp-qa"}
    for number in NEW_NUMBERS:
        desired[number] = NumberRecord(number, "ocp-qa", {Field.NOTE: "new by the fault test"}, provider="twilio")
    return desired


def _apply(
    env: Environment,
    desired: dict[str, NumberRecord],
    client: OCPClient,
    live: list[NumberRecord],
    outcomes: list | None = None,
):
    the_plan = make_plan(env, desired, live, diff(desired, live, env.groups))
    assert not the_plan.empty
    replans: list[str] = []
    result = apply_with_recovery(
        env,
        desired,
        client,
        the_plan,
        on_batch=(outcomes.append if outcomes is not None else None),
        on_replan=lambda p, why: replans.append(why),
    )
    return result, len(replans)


def _assert_converged(emu: EmulatorProcess, env: Environment, desired: dict[str, NumberRecord]) -> None:
    final = parse_export(raw_export(emu, bearer(emu)).content)
    remaining = diff(desired, final, env.groups)
    assert remaining.empty and not remaining.unmanaged, remaining.changes


# --- an export with a trailing empty, unnamed column: accepted, and plan, apply and drift say so ----------


@pytest.mark.parametrize("command", [("plan",), ("apply", "--auto-approve"), ("drift",)])
def test_a_trailing_empty_unnamed_export_column_is_a_warning_in_plan_apply_and_drift(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    from cli_workspace import live_records, run, workspace, write_desired

    with emulator(tmp_path, [{"target": "export", "kind": "blank_column"}]) as emu:
        config = workspace(tmp_path, emu.base_url, {"uk-care": False})
        write_desired(tmp_path, [r for r in live_records(emu) if r.group_id == "uk-care"], ["uk-care"])
        result = run(config, *command)
        puts = emu.stats()["put_requests"]
    assert result.exit_code == 0, result.output
    assert "Warning: the export's header has no name in column(s) 13 (of 13)" in result.output
    assert result.output.count("has no name in column") == 1  # once per run, not per export
    assert puts == 0  # the desired number matches live: nothing to write
