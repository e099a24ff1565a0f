"""The vendor's HTTP answers to an operation file: which say "refused, nothing applied" and which leave the outcome
unknown (apply then stops, and the caller re-reads live before going on)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cli_workspace import CREDENTIALS, emulator_process, live_records, run, workspace, write_desired

from numsync.config import Environment
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.errors import ApiError
from numsync.ocp import Credentials, OCPAuth, OCPClient
from numsync.ocp.answers import Refusal, read_answer
from numsync.ocp.client import ExecuteResult
from numsync.ocp.vocabulary import Operation
from numsync.workflow.apply import apply_plan
from numsync.workflow.plan import Plan, make_plan

NUMBERS = ("+12015550100", "+12015550101")


def two_file_plan() -> Plan:
    """Two Update rows, one file each."""
    env = Environment(
        "prod",
        "http://127.0.0.1:9/integrations",
        "http://127.0.0.1:9/token",
        Path("/nonexistent"),
        {"a": GroupPolicy("a")},
        limits={op: 1 for op in Operation},
    )
    live = {n: NumberRecord(n, "a", {}, provider="twilio") for n in NUMBERS}
    desired = {n: NumberRecord(n, "a", {Field.NOTE: "new"}, provider="twilio") for n in NUMBERS}
    return make_plan(env, desired, list(live.values()), diff(desired, list(live.values()), env.groups))


class Answering:
    """An Executor giving one answer (a result, or an ApiError to raise) to every file, counting the files."""

    def __init__(self, answer: ExecuteResult | ApiError) -> None:
        self.answer = answer
        self.files = 0

    def execute(self, body: bytes, *, filename: str = "operations.csv") -> ExecuteResult:
        self.files += 1
        if isinstance(self.answer, ApiError):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    "answer",
    [
        ExecuteResult(202, None),
        ExecuteResult(202, []),
        ExecuteResult(200, None),
        ApiError("upload refused by OCP: HTTP 402: payment required", status=402),
        ApiError("upload refused by OCP: HTTP 409: conflict", status=409),
        ApiError("upload refused by OCP: HTTP 502: bad gateway", status=502),
    ],
    ids=["202", "202-with-results", "200-unreadable", "402", "409", "502"],
)
def test_an_answer_that_does_not_say_refused_leaves_the_outcome_unknown_and_stops(
    answer: ExecuteResult | ApiError,
) -> None:
    client = Answering(answer)
    result = apply_plan(two_file_plan(), client)
    assert client.files == 1  # nothing more is sent after an unknown outcome
    assert result.applied == 0 and result.failures == []
    assert result.interrupted is not None and "unknown" in result.interrupted


def test_an_unknown_outcome_counts_only_the_rows_after_that_file_as_not_sent() -> None:
    """The file whose outcome is unknown was sent: of two one-row files, one row was not sent, not two."""
    result = apply_plan(two_file_plan(), Answering(ExecuteResult(202, None)))
    assert result.interrupted is not None
    assert "1 later row(s) were not sent" in result.interrupted, result.interrupted


@pytest.mark.parametrize("status", [400, 403, 413, 422])
def test_a_refusal_before_processing_fails_that_files_rows_and_goes_on(status: int) -> None:
    message = f"upload refused by OCP: HTTP {status}: the user has no licence for numbers"
    client = Answering(ApiError(message, status=status))
    result = apply_plan(two_file_plan(), client)
    assert client.files == 2 and result.interrupted is None
    assert [f.row.number for f in result.failures] == list(NUMBERS)
    assert all("no licence for numbers" in f.message for f in result.failures)  # the vendor's text is kept


@pytest.mark.parametrize(
    "results",
    [
        [{"row": "first", "NUMBER": "+12015550100", "status": "applied"}],
        [{"row": None, "NUMBER": "+12015550100", "status": "applied"}],
        [{"row": [1], "NUMBER": "+12015550100", "status": "applied"}],
        ["applied"],
    ],
)
def test_a_malformed_per_row_result_is_no_result_not_a_traceback(results: list[object]) -> None:
    body = json.dumps({"applied": 1, "results": results}).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    auth = OCPAuth("http://ocp.test/token", Credentials(token="pre-issued"))
    with OCPClient("http://ocp.test/integrations", auth, transport=transport) as client:
        assert client.execute(b"OPERATION,NUMBER\r\n").rows is None


# --- over real HTTP: the emulator plays each answer the vendor documents, numsync apply reacts -----------


UK = ("+442079460900", "+442079460901", "+442079460902")


def _apply_three_notes(tmp_path: Path, emu_args: tuple[str, ...], faults: list[dict] | None = None, **env: str):
    """``numsync apply --auto-approve`` of three NOTE changes in uk-care, one file each; (result, emulator stats, notes)."""
    args = list(emu_args)
    if faults is not None:
        (tmp_path / "faults.yaml").write_text(json.dumps(faults))
        args += ["--faults", str(tmp_path / "faults.yaml")]
    with emulator_process(*args) as emu:
        # one file at a time: "nothing more is sent" is about files not yet sent (with apply_concurrency above 1,
        # the files of the phase already in flight finish first; test_apply_concurrency covers that)
        config = workspace(
            tmp_path,
            emu.base_url,
            {"uk-care": False},
            "limits: {Update: 1}",
            "apply_concurrency: 1",
            "settle: {interval: 0.2, timeout: 20}",
        )
        live = [r for r in live_records(emu) if r.group_id == "uk-care"]
        changed = [NumberRecord(r.number, r.group_id, {**r.fields, Field.NOTE: "vendor answers"}) for r in live]
        desired = [c if c.number in UK else r for c, r in zip(changed, live)]
        write_desired(tmp_path, desired, ["uk-care"])
        result = run(config, "apply", "--auto-approve", env={**CREDENTIALS, **env})
        notes = {n: emu.numbers()[n]["NOTE"] for n in UK}
        return result, emu.stats(), notes


@pytest.mark.parametrize(
    "text",
    ["No available licenses", "user demo has role VIEWER; writing needs the OWNER role", "Access denied"],
    ids=["licences", "role", "other"],
)
def test_a_403_every_file_would_meet_stops_apply_after_the_first_file(tmp_path: Path, text: str) -> None:
    fault = {"target": "put", "kind": "status", "status": 403, "error": "forbidden", "message": text}
    result, stats, notes = _apply_three_notes(tmp_path, (), [fault])
    assert result.exit_code == 1
    assert stats["put_requests"] == 0  # the fault answered before the API: nothing was processed
    assert text in result.output  # the vendor's text, passed through
    assert "would refuse every later file" in result.output and "2 later row(s) were not sent" in result.output
    assert set(notes.values()) != {"vendor answers"}
    assert result.output.count("HTTP 403") >= 1 and "phase 1 batch 2" not in result.output


def test_the_emulators_own_role_refusal_stops_apply(tmp_path: Path) -> None:
    """The seeded VIEWER cannot write: the emulator's 403 names the role, and apply sends one file only."""
    result, stats, _ = _apply_three_notes(tmp_path, (), None, OCP_USERNAME="viewer", OCP_PASSWORD="viewer-secret")
    assert result.exit_code == 1 and stats["put_requests"] == 1
    assert "has role VIEWER" in result.output and "role cannot write numbers" in result.output
    assert "2 later row(s) were not sent" in result.output
    # the summary counts the whole plan: the file refused, and the two never sent
    assert "Applied 0 of 3 operation(s) in 1 request(s), 1 failed, 0 skipped, 2 not sent or of unknown outcome." in (
        result.output
    )


def test_rows_applied_before_rounds_of_unknown_outcomes_are_counted_in_the_summary(tmp_path: Path) -> None:
    """The first file is applied, every later one answers 503 until apply gives up: the line still counts the first."""
    fault = {"target": "put", "kind": "status", "status": 503, "after": 1}
    result, _, notes = _apply_three_notes(tmp_path, (), [fault])
    assert result.exit_code == 1 and "gave up after" in result.output
    assert list(notes.values()).count("vendor answers") == 1  # one row did reach OCP
    assert "Applied 1 of 3 operation(s)" in result.output and "2 not sent or of unknown outcome." in result.output


def test_a_403_for_a_group_fails_that_file_only(tmp_path: Path) -> None:
    """A group permission is per file: other files (other groups) may still be allowed, so apply goes on."""
    fault = {
        "target": "put",
        "kind": "status",
        "status": 403,
        "times": 1,
        "message": "user demo has no permission on the group of row 1 (+442079460900, group uk-care)",
    }
    result, _, notes = _apply_three_notes(tmp_path, (), [fault])
    assert result.exit_code == 1
    assert "lacks permission on a group" in result.output and "would refuse every later file" not in result.output
    assert notes == {UK[0]: notes[UK[0]], UK[1]: "vendor answers", UK[2]: "vendor answers"}
    assert notes[UK[0]] != "vendor answers"


@pytest.mark.parametrize(
    ("status", "message"),
    [(202, "Accepted for processing"), (402, "The parameters were valid but the request failed"), (409, "Conflict")],
)
def test_202_402_409_leave_the_outcome_unknown_and_apply_rereads_live(
    tmp_path: Path, status: int, message: str
) -> None:
    fault = {"target": "put", "kind": "status", "status": status, "times": 1, "message": message}
    result, stats, notes = _apply_three_notes(tmp_path, (), [fault])
    assert result.exit_code == 0, result.output
    assert "outcome unknown" in result.output  # settled, re-planned from live
    assert set(notes.values()) == {"vendor answers"} and stats["put_requests"] == 3


def test_a_tenant_limit_below_the_configured_one_hints_at_limits(tmp_path: Path) -> None:
    """The tenant takes 1 Update per file; numsync.yaml says 2, so the first file (2 rows) is refused whole."""
    with emulator_process("--limit", "Update=1") as emu:
        config = workspace(tmp_path, emu.base_url, {"uk-care": False}, "limits: {Update: 2}")
        live = [r for r in live_records(emu) if r.group_id == "uk-care"]
        desired = [
            NumberRecord(r.number, r.group_id, {**r.fields, Field.NOTE: "x"}) if r.number in UK[:2] else r for r in live
        ]
        write_desired(tmp_path, desired, ["uk-care"])
        result = run(config, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert "limit_exceeded" in result.output or "exceed the limit" in result.output
    assert "limits: {Update: 1}" in result.output and "numsync.yaml" in result.output, result.output


def test_a_401_mid_run_is_cured_by_one_renewal_without_reusing_a_code(tmp_path: Path) -> None:
    """The first PUT gets a 401 (a revoked session), and the refresh token is refused too: numsync logs in again
    with a new code and replays the file, which was refused unprocessed."""
    faults = [
        {
            "target": "put",
            "kind": "status",
            "status": 401,
            "times": 1,
            "message": "the access token is unknown or expired",
        },
        {"target": "token", "kind": "status", "status": 400, "after": 2, "times": 1, "message": "Session not active"},
    ]
    result, stats, notes = _apply_three_notes(tmp_path, (), faults)
    assert result.exit_code == 0, result.output
    assert set(notes.values()) == {"vendor answers"}
    # the test's own login (reading live), apply's, and apply's second one after the refused refresh
    assert stats["otp_accepted"] == 3 and stats["otp_reused"] == 0 and stats["otp_refused"] == 0


def test_a_401_that_a_renewal_does_not_cure_is_a_clear_error_and_stops(tmp_path: Path) -> None:
    fault = {"target": "put", "kind": "status", "status": 401, "message": "the access token is unknown or expired"}
    result, stats, _ = _apply_three_notes(tmp_path, (), [fault])
    assert result.exit_code == 1
    assert "refused again right after numsync renewed it" in result.output
    assert "2 later row(s) were not sent" in result.output
    assert stats["otp_reused"] == 0


@pytest.mark.parametrize(
    ("status", "error", "message", "refusal", "every_file"),
    [
        (403, "", "No available licenses", Refusal.LICENCES, True),
        (403, "", "no licences left", Refusal.LICENCES, True),
        (403, "forbidden", "user x has role VIEWER; writing needs the OWNER role", Refusal.ROLE, True),
        (403, "forbidden", "user x has no permission on the group of row 1", Refusal.GROUP, False),
        (403, "", "Access denied", Refusal.FORBIDDEN, True),
        (404, "", "Not Found", Refusal.NOT_FOUND, True),
        (401, "invalid_token", "expired", Refusal.TOKEN, True),
        (400, "limit_exceeded", "Delete: 11 rows exceed the limit of 10 per file", Refusal.LIMIT, False),
        (400, "bad_csv", "row 2 has 3 cells", Refusal.OTHER, False),
        (409, "", "Conflict", Refusal.OTHER, False),
    ],
)
def test_read_answer(status: int, error: str, message: str, refusal: Refusal, every_file: bool) -> None:
    answer = read_answer(status, error, message)
    assert (answer.refusal, answer.every_file) == (refusal, every_file)


def test_the_limit_hint_names_the_tenants_figures() -> None:
    hint = read_answer(
        400, "", "Delete: 11 rows exceed the limit of 10 per file; Create: 120 rows exceed the limit of 50 per file"
    ).hint
    assert "limits: {Delete: 10, Create: 50}" in hint


def test_the_401_hint_tells_a_pre_issued_token_from_a_renewed_one() -> None:
    assert "pre-issued" in read_answer(401, "", "", pre_issued=True).hint
    assert "right after numsync renewed it" in read_answer(401, "", "", renewed=True).hint


def test_a_404_from_the_client_stops_apply_after_one_file() -> None:
    """The vendor's 404 ("the requested resource doesn't exist": a wrong base_url) would meet every file."""
    puts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        puts.append(request.method)
        return httpx.Response(404, json={"message": "Not Found"})

    auth = OCPAuth("http://ocp.test/token", Credentials(token="pre-issued"))
    with OCPClient("http://ocp.test/integrations", auth, transport=httpx.MockTransport(handler)) as client:
        result = apply_plan(two_file_plan(), client)
    assert puts == ["PUT"] and result.stopped and [f.row.number for f in result.failures] == [NUMBERS[0]]
    assert (
        result.interrupted is not None and "base_url" in result.interrupted and "1 later row(s)" in result.interrupted
    )


@pytest.mark.parametrize(("status", "worded"), [(502, "failed at OCP, outcome unknown"), (403, "refused by OCP")])
def test_an_upload_error_is_called_a_refusal_only_when_it_is_one(status: int, worded: str) -> None:
    body = json.dumps({"error": "e", "message": "vendor text"}).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    auth = OCPAuth("http://ocp.test/token", Credentials(token="pre-issued"))
    with OCPClient("http://ocp.test/integrations", auth, transport=transport) as client:
        with pytest.raises(ApiError) as caught:
            client.execute(b"OPERATION,NUMBER\r\n")
    assert str(caught.value).startswith(f"upload {worded}: HTTP {status}") and "vendor text" in str(caught.value)
