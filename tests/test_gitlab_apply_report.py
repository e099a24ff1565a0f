"""Apply reports back: the merged merge request hears what apply did (GitLab stand-in over real HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_workspace import CREDENTIALS, live_records, run, workspace, write_desired
from gitlab_stub import GitLabStub

from numsync.core.model import Field
from numsync.emulator.process import EmulatorProcess

TOKEN = "glpat-report-test"
PROJECT, COMMIT = "4242", "c0ffee" * 6 + "abcd"


@pytest.fixture
def gitlab() -> Iterator[GitLabStub]:
    with GitLabStub(token=TOKEN) as stub:
        stub.commit_merge_requests[COMMIT] = [{"iid": 17, "state": "merged"}, {"iid": 3, "state": "closed"}]
        yield stub


def gitlab_env(gitlab: GitLabStub) -> dict[str, str]:
    return CREDENTIALS | {
        "CI_API_V4_URL": gitlab.api_url,
        "CI_PROJECT_ID": PROJECT,
        "CI_COMMIT_SHA": COMMIT,
        "CI_JOB_URL": "https://gitlab.example.com/numbers/-/jobs/7",
        "NUMSYNC_GITLAB_TOKEN": TOKEN,
    }


def workspace_with_changes(tmp_path: Path, emulator: EmulatorProcess, *extra: str, move: bool = False) -> Path:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False, "ocp-qa": False}, *extra)
    records = [r for r in live_records(emulator) if r.group_id in ("uk-care", "ocp-qa")]
    first = min(r.number for r in records if r.group_id == "uk-care")
    edited = []
    for r in records:
        fields = {**r.fields, Field.NOTE: "reported"} if r.number == first else r.fields
        group = "ocp-qa" if move and r.number == first else r.group_id
        edited.append(type(r)(r.number, group, fields, provider="twilio"))
    write_desired(tmp_path, edited, ["uk-care", "ocp-qa"])
    return config


def notes(gitlab: GitLabStub, iid: str) -> list[str]:
    return [n["body"] for n in gitlab.notes.get((PROJECT, iid), [])]


def test_an_applied_and_verified_apply_is_reported_on_the_merged_merge_request(
    tmp_path: Path, emulator: EmulatorProcess, gitlab: GitLabStub
) -> None:
    config = workspace_with_changes(tmp_path, emulator)
    report = tmp_path / "apply-report.json"
    applied = run(config, "apply", "--auto-approve", "--report", str(report), "--journal", str(tmp_path / "j"))
    assert applied.exit_code == 0, applied.output
    assert json.loads(report.read_text())["outcome"] == "applied"

    posted = run(config, "gitlab", "report-apply", "--report", str(report), env=gitlab_env(gitlab))
    assert posted.exit_code == 0, posted.output
    assert "Reported the apply on !17." in posted.output
    [body] = notes(gitlab, "17")
    assert "applied and verified" in body and "1 row(s) applied, 0 failed, 0 not sent" in body
    assert "[The apply job](https://gitlab.example.com/numbers/-/jobs/7)" in body
    assert notes(gitlab, "3") == []  # a closed MR that also holds the commit hears nothing
    # a retried job does not post the same report twice
    assert run(config, "gitlab", "report-apply", "--report", str(report), env=gitlab_env(gitlab)).exit_code == 0
    assert len(notes(gitlab, "17")) == 1
    assert TOKEN not in posted.output


def test_a_refusal_is_reported_with_the_flag_that_lifts_it(
    tmp_path: Path, emulator: EmulatorProcess, gitlab: GitLabStub
) -> None:
    config = workspace_with_changes(tmp_path, emulator, move=True)  # a group move: a replacement
    report = tmp_path / "apply-report.json"
    refused = run(config, "apply", "--auto-approve", "--report", str(report), "--journal", str(tmp_path / "j"))
    assert refused.exit_code == 1
    assert json.loads(report.read_text())["flags"] == ["--allow-replace"]
    assert emulator.stats()["put_requests"] == 0

    assert run(config, "gitlab", "report-apply", "--report", str(report), env=gitlab_env(gitlab)).exit_code == 0
    [body] = notes(gitlab, "17")
    assert "refused: nothing was written" in body
    # in a merge request the label lifts it, not the flag
    assert "add the label(s) `numsync::allow-replace` to a merge request" in body and "`--allow-replace`" not in body


def test_without_a_token_it_says_how_to_enable_reports(tmp_path: Path, gitlab: GitLabStub) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"environment": "prod", "outcome": "superseded", "message": "superseded by x"}))
    env = gitlab_env(gitlab) | {"NUMSYNC_GITLAB_TOKEN": ""}
    result = run(tmp_path / "none.yaml", "gitlab", "report-apply", "--report", str(report), env=env)
    assert result.exit_code == 0 and "NUMSYNC_GITLAB_TOKEN is not set" in result.output
    assert gitlab.requests == []
