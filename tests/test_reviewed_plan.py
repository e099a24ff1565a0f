"""On merge, the plan reviewed in the merge request is what runs (issue 18, item 1).

End to end over real HTTP: the plan job's plan.json is kept as a job artifact of the merge
request's pipeline in a GitLab stand-in (tests/gitlab_stub.py), and ``numsync apply --reviewed``
finds it from the merged commit (commit → merged MR → latest successful pipeline → plan job →
artifact) and applies it to an OCP emulator; when a plan made now differs, it refuses, or
posts the difference to the merge request for re-approval.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from cli_workspace import CREDENTIALS, emulator_process, live_records, run, workspace, write_desired
from gitlab_stub import GitLabStub

from numsync.emulator.process import EmulatorProcess
from numsync.errors import REAPPROVAL_EXIT_CODE
from numsync.workflow.plan import Plan
from numsync.workflow.reviewed import repost_marker

TOKEN = "glpat-reviewed-plan-test"
PROJECT, MR = "4242", "17"
MERGED = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"
CHANGED = "+442079460958"  # uk-care: the number the merge request edits


@dataclasses.dataclass
class Setup:
    config: Path
    emulator: EmulatorProcess
    gitlab: GitLabStub

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **CREDENTIALS,
            # not "in CI" even when the suite runs in a pipeline: no superseded check, no default journal
            "CI": "",
            "CI_DEFAULT_BRANCH": "",
            "CI_API_V4_URL": self.gitlab.api_url,
            "CI_PROJECT_ID": PROJECT,
            "CI_COMMIT_SHA": MERGED,
            "NUMSYNC_GITLAB_TOKEN": TOKEN,
            **extra,
        }

    def review(self, *flags: str, who: str = "alice") -> Plan:
        """The merge request's plan job: plan.json saved as the artifact of a successful pipeline of !17."""
        out = self.config.parent / "mr-plan.json"
        made = run(self.config, "plan", "--out", str(out), *flags, env=self.env(GITLAB_USER_LOGIN=who))
        assert made.exit_code == 0, made.output
        pipeline = self.gitlab.add_pipeline(sha="feedbeef" * 5, merge_request=MR)
        self.gitlab.add_job(pipeline, "plan: [test]", artifacts={"plan.json": out.read_bytes()})
        return Plan.from_json(json.loads(out.read_text()))

    def apply(self, *args: str) -> tuple[int, str]:
        done = run(self.config, "apply", "--reviewed", *args, env=self.env())
        return done.exit_code, done.output

    def edit_desired(self, number: str, note: str) -> None:
        path = self.config.parent / "desired" / "uk-care.yaml"
        data = yaml.safe_load(path.read_text())
        data["numbers"][number]["note"] = note
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def edit_live(self, number: str, column: str, value: str) -> None:
        """An out-of-band change, straight on the emulator."""
        answer = httpx.put(
            self.emulator.base_url + "/api/numbers/csv",
            headers={"Authorization": f"Bearer {self.emulator.token()}", "Content-Type": "text/csv"},
            content=f"OPERATION,NUMBER,{column}\r\nUpdate,{number},{value}\r\n".encode(),
        )
        assert answer.status_code == 200, answer.text

    def puts(self) -> int:
        return self.emulator.stats()["put_requests"]


def make_setup(tmp_path: Path, emulator: EmulatorProcess, gitlab: GitLabStub, *extra: str) -> Setup:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False}, *extra)
    write_desired(tmp_path, live_records(emulator), ["uk-care"])
    gitlab.commit_merge_requests[MERGED] = [
        {"iid": 3, "state": "closed"},  # another MR holding the commit, never merged: not the reviewed one
        {"iid": int(MR), "state": "merged", "merge_commit_sha": MERGED, "merged_at": "2026-12-02T03:00:00Z"},
    ]
    setup = Setup(config, emulator, gitlab)
    setup.edit_desired(CHANGED, "changed in review")
    return setup


@pytest.fixture
def stub() -> Iterator[GitLabStub]:
    with GitLabStub(token=TOKEN) as gitlab:
        yield gitlab


def test_merge_applies_the_reviewed_plan_exactly(tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub) -> None:
    setup = make_setup(tmp_path, emulator, stub)
    reviewed = setup.review()
    # a later, failed pipeline of the MR and a failed plan job do not count: the latest *successful* one does
    failed = stub.add_pipeline(sha="0" * 40, merge_request=MR, status="failed")
    stub.add_job(failed, "plan: [test]", status="failed", artifacts={"plan.json": b"{}"})
    assert setup.puts() == 0

    code, output = setup.apply("--save-reviewed", str(tmp_path / "reviewed.json"))

    assert code == 0, output
    assert f"Applying the plan reviewed in merge request !{MR}, pipeline #" in output and "still fresh" in output
    assert "Verified: live now matches desired." in output
    assert emulator.numbers()[CHANGED]["NOTE"] == "changed in review"
    assert setup.puts() == reviewed.request_count() > 0
    assert json.loads((tmp_path / "reviewed.json").read_text()) == reviewed.to_json()
    [artifact] = [r for r in stub.requests if "/artifacts/" in r.path]
    assert artifact.path.endswith("/artifacts/plan.json") and artifact.headers["private-token"] == TOKEN


def test_a_stale_reviewed_plan_that_a_new_plan_differs_from_is_refused(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    setup = make_setup(tmp_path, emulator, stub)
    setup.review()
    other = sorted(n for n, row in emulator.numbers().items() if row["GROUP_ID"] == "uk-care" and n != CHANGED)[0]
    setup.edit_live(other, "NOTE", "edited on the tenant after review")  # a plan made now also reverts this
    before = emulator.numbers()

    code, output = setup.apply()

    assert code == 1, output
    assert "is stale (the live numbers changed since it was made) and a plan made now differs from it" in output
    assert "Between the reviewed plan (old) and a plan made now (new):" in output
    assert f"Only in the new plan (1 number(s)):\n    + {other}" in output
    assert "set on_stale_review: repost" in output and "Nothing was written." in output
    assert emulator.numbers() == before and setup.puts() == 1  # only the out-of-band edit
    assert not stub.writes()  # refuse (the default) posts nothing


def test_a_stale_reviewed_plan_with_the_same_changes_runs_as_planned_now(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    setup = make_setup(tmp_path, emulator, stub, "ignore_fields: [application_tag]")
    reviewed = setup.review()
    other = next(n for n, row in emulator.numbers().items() if row["GROUP_ID"] == "uk-care" and n != CHANGED)
    setup.edit_live(other, "APPLICATION_TAG", "tagged-after-review")  # moves the fingerprint, not the plan

    code, output = setup.apply()

    assert code == 0, output
    assert "is stale (the live numbers changed since it was made), but a plan made now changes the same" in output
    assert emulator.numbers()[CHANGED]["NOTE"] == "changed in review"
    assert setup.puts() == 1 + reviewed.request_count()


def test_a_stale_reviewed_plan_is_reposted_for_reapproval_then_the_approved_replan_applies(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    setup = make_setup(tmp_path, emulator, stub, "on_stale_review: repost")
    setup.review()
    other = sorted(n for n, row in emulator.numbers().items() if row["GROUP_ID"] == "uk-care" and n != CHANGED)[0]
    setup.edit_live(other, "NOTE", "edited on the tenant after review")
    replan = tmp_path / "replan-test.json"

    code, output = setup.apply("--save-replan", str(replan), "--report", str(tmp_path / "report.json"))

    assert code == REAPPROVAL_EXIT_CODE, output
    assert f"posted to !{MR} for re-approval" in output and "approve: [test]" in output
    assert setup.puts() == 1
    [note] = stub.notes[(PROJECT, MR)]
    assert note["body"].startswith(repost_marker("test", MERGED))
    assert other in note["body"] and "edited on the tenant after review" in note["body"]
    assert "Nothing was written." in note["body"] and "`approve: [test]`" in note["body"]
    assert json.loads((tmp_path / "report.json").read_text())["outcome"] == "awaiting-approval"
    new = Plan.from_json(json.loads(replan.read_text()))
    assert {c.number for c in new.changes} == {CHANGED, other}

    again, _ = setup.apply("--save-replan", str(replan))  # a retried job edits the same note
    assert again == REAPPROVAL_EXIT_CODE and len(stub.notes[(PROJECT, MR)]) == 1

    approved = run(setup.config, "apply", str(replan), env=setup.env())  # the manual approve job
    assert approved.exit_code == 0, approved.output
    assert emulator.numbers()[CHANGED]["NOTE"] == "changed in review"
    assert emulator.numbers()[other]["NOTE"] != "edited on the tenant after review"


def test_overrides_travel_in_the_reviewed_plan_with_who_and_why(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    setup = make_setup(tmp_path, emulator, stub, "safety: {max_change_percent: 0.5, min_size: 1}")
    refused = run(setup.config, "plan", "--out", str(tmp_path / "p.json"), "--override-thresholds", env=setup.env())
    assert refused.exit_code == 1 and '--reason "<why>"' in refused.output  # a saved override says why

    reviewed = setup.review("--override-thresholds", "--reason", "MR !17: the carrier renumbered", who="alice")
    assert [o.to_json() for o in reviewed.overrides] == [
        {"flag": "--override-thresholds", "by": "alice", "reason": "MR !17: the carrier renumbered"}
    ]
    assert (
        "--override-thresholds by alice: MR !17: the carrier renumbered"
        in run(setup.config, "show", str(tmp_path / "mr-plan.json")).output
    )

    unlabelled, output = setup.apply()
    assert unlabelled == 1 and "records --override-thresholds, but the merge request does not carry" in output
    assert "numsync::override-thresholds" in output and setup.puts() == 0
    stub.commit_merge_requests[MERGED][1]["labels"] = ["numbers", "numsync::override-thresholds"]

    not_recorded, output = setup.apply("--allow-replace")
    assert not_recorded == 1 and "--allow-replace: the saved plan does not record this override" in output
    assert setup.puts() == 0

    code, output = setup.apply("--journal", str(tmp_path / "journal.jsonl"))
    assert code == 0, output  # over the threshold, lifted by the plan's own record
    assert emulator.numbers()[CHANGED]["NOTE"] == "changed in review"
    events = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    [recorded] = [e for e in events if e["event"] == "overrides"]
    assert recorded["overrides"] == [o.to_json() for o in reviewed.overrides]


def test_a_commit_without_a_reviewed_plan_is_refused_before_any_export(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    setup = make_setup(tmp_path, emulator, stub)
    exports = emulator.stats()["export_requests"]
    stub.commit_merge_requests[MERGED] = []  # pushed straight to the default branch
    code, output = setup.apply()
    assert code == 1 and f"commit {MERGED[:12]} is the result of no merged merge request" in output

    stub.commit_merge_requests[MERGED] = [{"iid": int(MR), "state": "merged", "merge_commit_sha": MERGED}]
    code, output = setup.apply()
    assert code == 1 and f"merge request !{MR} has no successful pipeline" in output

    pipeline = stub.add_pipeline(sha=MERGED, merge_request=MR)
    stub.add_job(pipeline, "plan: [other-env]", artifacts={"plan.json": b"{}"})
    code, output = setup.apply()
    assert code == 1 and "has no successful job 'plan: [test]'" in output

    without_token = run(setup.config, "apply", "--reviewed", env={**setup.env(), "NUMSYNC_GITLAB_TOKEN": ""})
    assert without_token.exit_code == 1 and "NUMSYNC_GITLAB_TOKEN not set" in without_token.output
    assert emulator.stats()["export_requests"] == exports and setup.puts() == 0  # OCP was never asked


def test_reviewed_plan_fields_are_additive_to_format_version_1() -> None:
    old = {"format_version": 1, "environment": "e", "changes": [], "phases": []}
    assert Plan.from_json(old).overrides == []
    with pytest.raises(ValueError, match="lifts no safety check"):
        Plan.from_json({**old, "overrides": [{"flag": "--yolo", "by": "x", "reason": "y"}]})


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    with emulator_process() as emu:
        yield emu


def test_gitlab_fetch_plan_saves_the_reviewed_plan(tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub) -> None:
    setup = make_setup(tmp_path, emulator, stub)
    reviewed = setup.review()
    out = tmp_path / "fetched.json"
    done = run(setup.config, "gitlab", "fetch-plan", "--out", str(out), env=setup.env())
    assert done.exit_code == 0, done.output
    assert f"Saved the plan reviewed in merge request !{MR}" in done.output and reviewed.summary_line() in done.output
    assert Plan.from_json(json.loads(out.read_text())).to_json() == reviewed.to_json()
    assert TOKEN not in done.output

    stub.artifacts.clear()  # the job's artifacts expired
    gone = run(setup.config, "gitlab", "fetch-plan", "--out", str(tmp_path / "none.json"), env=setup.env())
    assert gone.exit_code == 1 and "kept no artifact 'plan.json'" in gone.output
    assert not (tmp_path / "none.json").exists()


def test_an_apply_without_a_saved_plan_records_its_own_override_flags_in_the_journal(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    setup = make_setup(tmp_path, emulator, stub, "safety: {max_change_percent: 0.5, min_size: 1}")
    journal = tmp_path / "journal.jsonl"
    env = {**CREDENTIALS, "USER": "bob", "GITLAB_USER_LOGIN": "", "CI": ""}
    done = run(setup.config, "apply", "--auto-approve", "--override-thresholds", "--journal", str(journal), env=env)
    assert done.exit_code == 0, done.output
    [recorded] = [json.loads(line) for line in journal.read_text().splitlines() if '"overrides"' in line]
    assert recorded["overrides"] == [{"flag": "--override-thresholds", "by": "bob", "reason": "(no reason given)"}]


def test_a_reviewed_plan_that_numsync_yaml_changed_under_is_refused_not_called_tampered(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    setup = make_setup(tmp_path, emulator, stub)
    setup.review()
    # merged later: the same desired files and live numbers, but numsync.yaml now ignores the reviewed field
    setup.config.write_text(setup.config.read_text() + "    ignore_fields: [note]\n")

    code, output = setup.apply()

    assert code == 1, output
    assert "differ from planning the state it records now" in output and "was the file edited" not in output
    assert f"Only in the old plan (1 number(s)):\n    - {CHANGED}" in output
    assert setup.puts() == 0
