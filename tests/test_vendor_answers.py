"""The vendor's HTTP answers to an operation file: which say "refused, nothing applied" and which leave the outcome
unknown (apply then stops, and the caller re-reads live before going on)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from numsync.config import Environment
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.errors import ApiError
from numsync.ocp import Credentials, OCPAuth, OCPClient
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
