"""The GitLab pipeline's jobs really run: gitlab-ci-local executes .gitlab-ci.yml's plan job as a
merge-request pipeline and its apply job as a default-branch pipeline, in a throwaway git
copy of this project, against an OCP emulator and a stand-in for GitLab's API (notes, and the
merge request's pipelines, jobs and artifacts, where apply finds the plan that was reviewed).

gitlab-ci-local runs the jobs with its shell executor (no container engine here); the job's
``make venv``-style install is skipped by giving the copy a ``.venv/bin/numsync`` that runs
this checkout's interpreter on the copy's code (the tests must not need the network).
In CI (``CI`` set) a missing gitlab-ci-local or rsync fails the test; .ci/run installs both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from cli_workspace import TOTP_SECRET, emulator_process
from click.testing import CliRunner
from gitlab_stub import GitLabStub

from numsync.cli import main
from numsync.core.model import Field
from numsync.emulator.process import EmulatorProcess
from numsync.gitlab import marker
from numsync.ocp.csvcodec import upload_file_name, write_operations
from numsync.reports.plan_json import terraform_report
from numsync.workflow.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "glpat-ci-local-test"
PROJECT_ID, MR_IID = "4242", "17"
GIT = ["git", "-c", "user.name=numsync test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
#: Predefined variables the test sets on purpose (gitlab-ci-local warns about each otherwise).
PREDEFINED = (
    "CI_PIPELINE_SOURCE,CI_MERGE_REQUEST_IID,CI_PROJECT_ID,CI_API_V4_URL,CI_DEFAULT_BRANCH,"
    "CI_MERGE_REQUEST_LABELS,CI_MERGE_REQUEST_TITLE,GITLAB_USER_LOGIN"
)
NEW_NOTE = "Main line, after-hours routing to Manchester and Leeds"
#: The bundled numsync.yaml's demo environment has ``otp: {period: 2}`` (Keycloak's look-around, 1): the jobs' emulator too.
DEMO_OTP_PERIOD = 2


def required_tool(name: str, how: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({how})"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it", pytrace=False)
        pytest.skip(message)
    return path


@dataclass
class Run:
    returncode: int
    output: str
    artifacts: Path | None

    def tail(self) -> str:
        return self.output[-6000:]


class Project:
    """A throwaway git repository holding a copy of this project, and gitlab-ci-local to run its jobs."""

    def __init__(self, path: Path, gcl: str, emulator: EmulatorProcess, gitlab: GitLabStub) -> None:
        self.path, self.gcl, self.emulator, self.gitlab = path, gcl, emulator, gitlab
        #: The jobs' record of used two-factor steps, shared by the jobs (one user logs in in several of them).
        self.state_dir = path.parent / "numsync-state"
        path.mkdir()
        for relative in project_files():
            target = path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, target)
        venv_bin = path / ".venv" / "bin"  # ignored by .gitignore, like a real venv
        venv_bin.mkdir(parents=True)
        wrapper = venv_bin / "numsync"
        wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec "{sys.executable}" -m numsync "$@"\n')
        wrapper.chmod(0o755)
        self.git("init", "-q", "-b", "main")
        # GitLab's repository: apply asks it for the default branch's tip (git ls-remote origin)
        self.origin = path.parent / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)], check=True)
        self.git("remote", "add", "origin", str(self.origin))
        self.commit("the project as it is")

    def git(self, *args: str) -> str:
        done = subprocess.run([*GIT, *args], cwd=self.path, capture_output=True, text=True)
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    def commit(self, message: str, *paths: str) -> str:
        """Commit; on main the commit is also pushed: a merge landed on GitLab's default branch."""
        self.git("add", "--", *(paths or ["."]))
        self.git("commit", "-q", "--allow-empty", "-m", message)
        if self.git("rev-parse", "--abbrev-ref", "HEAD") == "main":
            self.push()
        return self.git("rev-parse", "HEAD")

    def push(self) -> None:
        self.git("push", "-q", "origin", "HEAD:main")

    def edit(self, relative: str, old: str, new: str) -> None:
        file = self.path / relative
        text = file.read_text()
        assert old in text, f"{old!r} not in {relative}"
        file.write_text(text.replace(old, new, 1))

    def run_job(self, job: str, *variables: str) -> Run:
        """Run one job with gitlab-ci-local's shell executor; returns its exit code, log and artifacts folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OCP_", "NUMSYNC_", "CI_", "GITLAB_"))}
        env |= {"HOME": str(self.path.parent / "home"), "FORCE_COLOR": "0", "NO_COLOR": "1"}
        command = [
            self.gcl, "--force-shell-executor", "--no-shell-isolation", "--no-color", "--ignore-predefined-vars", PREDEFINED,
            "--variable", "CI_DEFAULT_BRANCH=main",
            "--variable", f"OCP_EMULATOR_URL={self.emulator.url}",
            *(arg for v in variables for arg in ("--variable", v)),
            job,
        ]  # fmt: skip
        done = subprocess.run(command, cwd=self.path, env=env, capture_output=True, text=True, timeout=180)
        root = self.path / ".gitlab-ci-local" / "artifacts"
        name = job.split(":")[0]
        found = [d for d in root.iterdir() if d.name.startswith(name)] if root.is_dir() else []
        return Run(done.returncode, done.stdout + done.stderr, found[0] if found else None)

    def run_plan(self, *extra: str) -> Run:
        return self.run_job(
            "plan: [demo]",
            *extra,
            "CI_PIPELINE_SOURCE=merge_request_event",
            f"CI_MERGE_REQUEST_IID={MR_IID}",
            f"CI_PROJECT_ID={PROJECT_ID}",
            f"CI_API_V4_URL={self.gitlab.api_url}",
            f"NUMSYNC_GITLAB_TOKEN={TOKEN}",
            "OCP_READONLY_USERNAME=viewer",  # the emulator's VIEWER: can export, cannot upload
            "OCP_READONLY_PASSWORD=viewer-secret",
            f"OCP_READONLY_TOTP_SECRET={TOTP_SECRET}",
            f"NUMSYNC_STATE_DIR={self.state_dir}",
        )

    def reviewed(self, planned: Run, merged: str, *labels: str) -> None:
        """GitLab's record of the merge request: ``merged`` is its merge commit, ``labels`` its labels, and ``planned``
        the plan job of its latest successful pipeline, whose plan.json artifact apply fetches."""
        assert planned.artifacts is not None, planned.tail()
        self.gitlab.commit_merge_requests[merged] = [
            {"iid": int(MR_IID), "state": "merged", "merge_commit_sha": merged, "labels": list(labels)}
        ]
        pipeline = self.gitlab.add_pipeline(sha=self.git("rev-parse", "HEAD^2"), merge_request=MR_IID)
        self.gitlab.add_job(
            pipeline, "plan: [demo]", artifacts={"plan.json": (planned.artifacts / "plan.json").read_bytes()}
        )

    def merge(self, branch: str) -> str:
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", "-m", f"Merge branch '{branch}'", branch)
        self.push()
        return self.git("rev-parse", "HEAD")

    def run_apply(self, *extra: str) -> Run:
        return self.run_job(
            "apply: [demo]",
            "CI_PIPELINE_SOURCE=push",
            f"CI_PROJECT_ID={PROJECT_ID}",
            f"CI_API_V4_URL={self.gitlab.api_url}",
            f"NUMSYNC_GITLAB_TOKEN={TOKEN}",
            "OCP_USERNAME=demo",
            "OCP_PASSWORD=demo-secret",
            f"OCP_TOTP_SECRET={TOTP_SECRET}",
            f"NUMSYNC_STATE_DIR={self.state_dir}",
            *extra,
        )


def project_files() -> list[str]:
    """This checkout's files as a clone would have them (tracked, plus new files not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode == 0:
        return [f for f in listed.stdout.split("\0") if f and (ROOT / f).is_file()]
    skip = {".git", ".venv", ".gitlab-ci-local", "__pycache__", ".pytest_cache", ".hypothesis", ".demo"}
    return [
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
    ]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    gcl = required_tool("gitlab-ci-local", "npm install -g gitlab-ci-local@4.70.1")
    required_tool("rsync", "apt-get install rsync")
    required_tool("git", "apt-get install git")
    with (
        emulator_process(otp_period=DEMO_OTP_PERIOD, otp_look_around=1) as emulator,
        GitLabStub(token=TOKEN) as gitlab,
    ):
        yield Project(tmp_path / "numbers", gcl, emulator, gitlab)


def check_plan_artifacts(run: Run, commit: str) -> Plan:
    """plan.json, plan.md, the Terraform report and the upload CSVs agree with each other."""
    assert run.artifacts is not None, run.tail()
    files = {p.relative_to(run.artifacts).as_posix() for p in run.artifacts.rglob("*") if p.is_file()}
    assert {"plan.json", "plan.md", "gl-terraform-report.json", "upload/review.csv"} <= files, files
    plan = Plan.from_json(json.loads((run.artifacts / "plan.json").read_text()))
    assert plan.environment == "demo" and plan.git_commit == commit
    report = json.loads((run.artifacts / "gl-terraform-report.json").read_text())
    summary = json.loads((run.artifacts / "plan.json").read_text())["summary"]
    assert (
        report
        == terraform_report(plan)
        == {
            "create": summary["Create"],
            "update": summary["Update"] + summary["Attach"] + summary["Detach"],
            "delete": summary["Delete"],
        }
    )
    uploads = set()
    for p, phase in enumerate(plan.phases, start=1):
        for b, batch in enumerate(phase.batches, start=1):
            name = f"upload/{upload_file_name(p, b)}"
            uploads.add(name)
            assert (run.artifacts / name).read_bytes() == write_operations(batch.rows), name
    assert {f for f in files if f.startswith("upload/phase")} == uploads
    md = (run.artifacts / "plan.md").read_text()
    assert md.startswith("### numsync plan for `demo`") and plan.summary_line() in md
    return plan


def test_plan_on_a_merge_request_then_apply_on_merge(project: Project) -> None:
    emulator, gitlab = project.emulator, project.gitlab
    before = emulator.numbers()
    project.git("checkout", "-q", "-b", "numbers/manchester-leeds")
    project.edit(
        "desired/uk-care.yaml", "after-hours routing to Manchester", "after-hours routing to Manchester and Leeds"
    )
    head = project.commit("uk-care: route after hours to Leeds too", "desired")

    # --- merge-request pipeline: validate (Code Quality report, formatting) ----------------
    validated = project.run_job("validate", "CI_PIPELINE_SOURCE=merge_request_event")
    assert validated.returncode == 0 and "PASS  validate" in validated.output, validated.tail()
    assert validated.artifacts is not None
    assert json.loads((validated.artifacts / "gl-code-quality-report.json").read_text()) == []

    # --- merge-request pipeline: the plan job, read-only, posts the plan to the MR ---------
    planned = project.run_plan()
    assert planned.returncode == 0 and "PASS  plan: [demo]" in planned.output, planned.tail()
    plan = check_plan_artifacts(planned, head)
    assert any(c.number == "+442079460958" and c.fields[Field.NOTE][1] == NEW_NOTE for c in plan.changes)
    assert NEW_NOTE in (planned.artifacts / "plan.md").read_text()
    assert emulator.stats()["put_requests"] == 0 and emulator.numbers() == before  # the plan wrote nothing
    [post] = gitlab.writes()
    assert post.method == "POST" and post.path == f"/api/v4/projects/{PROJECT_ID}/merge_requests/{MR_IID}/notes"
    assert post.headers["private-token"] == TOKEN
    assert (
        post.body["body"].startswith(marker("demo"))
        and NEW_NOTE in post.body["body"]
        and f"`{head[:12]}`" in post.body["body"]
    )
    assert TOKEN not in planned.output.replace(f"NUMSYNC_GITLAB_TOKEN={TOKEN}", "")

    # --- a later push to the MR: the same note is updated -----------------------------------
    project.edit("desired/uk-care.yaml", NEW_NOTE, NEW_NOTE + " (weekends)")
    head = project.commit("uk-care: weekends", "desired")
    replanned = project.run_plan()
    assert replanned.returncode == 0, replanned.tail()
    check_plan_artifacts(replanned, head)
    assert [r.method for r in gitlab.writes()] == ["POST", "PUT"]
    [note] = gitlab.notes[(PROJECT_ID, MR_IID)]
    assert gitlab.writes()[1].path.endswith(f"/notes/{note['id']}")
    assert "(weekends)" in note["body"] and f"`{head[:12]}`" in note["body"]

    # --- merge: a default-branch pipeline applies the plan the merge request reviewed -------
    merged = project.merge("numbers/manchester-leeds")
    project.reviewed(replanned, merged)
    applied = project.run_apply()
    assert applied.returncode == 0 and "PASS  apply: [demo]" in applied.output, applied.tail()
    assert (
        f"Applying the plan reviewed in merge request !{MR_IID}" in applied.output and "still fresh" in applied.output
    )
    assert "Verified: live now matches desired." in applied.output
    assert applied.artifacts is not None
    assert (applied.artifacts / "plan.json").read_bytes() == (replanned.artifacts / "plan.json").read_bytes()
    plan = Plan.from_json(json.loads((applied.artifacts / "plan.json").read_text()))
    assert emulator.stats()["put_requests"] == plan.request_count() > 0
    assert emulator.numbers()["+442079460958"]["NOTE"] == NEW_NOTE + " (weekends)"
    # the per-row results and the JUnit report are artifacts, whatever the ending
    assert applied.artifacts is not None
    results = (applied.artifacts / "apply-results.csv").read_text().splitlines()
    assert len(results) == 1 + sum(len(p.rows) for p in plan.phases)
    assert all(",applied,," in line for line in results[1:])
    assert 'failures="0"' in (applied.artifacts / "apply-junit.xml").read_text()
    again = CliRunner().invoke(
        main,
        ["--config", str(project.path / "numsync.yaml"), "plan", "--detailed-exitcode"],
        env={
            "OCP_EMULATOR_URL": emulator.url,
            "OCP_USERNAME": "demo",
            "OCP_PASSWORD": "demo-secret",
            "OCP_TOTP_SECRET": TOTP_SECRET,
            "NUMSYNC_STATE_DIR": str(project.state_dir),
            "NUMSYNC_ENV": "demo",
        },
    )
    assert again.exit_code == 0 and "No changes" in again.output, again.output  # live equals the merged desired files


def test_an_override_is_chosen_on_the_merge_request_recorded_in_the_plan_and_applied_on_merge(
    project: Project,
) -> None:
    emulator = project.emulator
    project.git("checkout", "-q", "-b", "retire-qa")
    desired = project.path / "desired" / "ocp-qa.yaml"
    data = yaml.safe_load(desired.read_text())
    numbers = sorted(data["numbers"])
    assert len(numbers) > 40
    data["numbers"] = {n: data["numbers"][n] for n in numbers[30:]}  # 30 more deletes: over max_deletes (25)
    desired.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    project.commit("ocp-qa: retire 30 numbers", "desired")
    before = emulator.numbers()

    refused = project.run_plan()
    assert refused.returncode != 0 and "FAIL  plan: [demo]" in refused.output, refused.tail()
    assert "Refused: the plan deletes" in refused.output
    assert 'add the label(s) "numsync::override-thresholds" to the merge request' in refused.output

    # The documented override: the label on the merge request, then its pipeline again.
    labelled = project.run_plan(
        "CI_MERGE_REQUEST_LABELS=numbers,numsync::override-thresholds",
        "CI_MERGE_REQUEST_TITLE=ocp-qa: retire 30 numbers",
        "GITLAB_USER_LOGIN=maintainer",
    )
    assert labelled.returncode == 0, labelled.tail()
    assert labelled.artifacts is not None
    recorded = json.loads((labelled.artifacts / "plan.json").read_text())["overrides"]
    assert recorded == [
        {
            "flag": "--override-thresholds",
            "by": "maintainer",
            "reason": f"merge request !{MR_IID}: ocp-qa: retire 30 numbers",
        }
    ]
    assert "**Safety checks lifted**" in (labelled.artifacts / "plan.md").read_text()
    assert emulator.stats()["put_requests"] == 0 and emulator.numbers() == before

    merged = project.merge("retire-qa")
    project.reviewed(labelled, merged, "numbers", "numsync::override-thresholds")
    applied = project.run_apply()
    assert applied.returncode == 0, applied.tail()
    assert not set(numbers[:30]) & emulator.numbers().keys()


def test_an_older_pipelines_apply_after_a_newer_merge_is_superseded_and_writes_nothing(project: Project) -> None:
    """Two merges land close together and the older pipeline's apply runs last (unordered resource group)."""
    emulator = project.emulator
    project.edit(
        "desired/uk-care.yaml", "after-hours routing to Manchester", "after-hours routing to Manchester and Leeds"
    )
    older = project.commit("uk-care: Leeds too", "desired")
    project.edit("desired/uk-care.yaml", "Manchester and Leeds", "Manchester, Leeds and York")
    newer = project.commit("uk-care: York too", "desired")
    project.git("checkout", "-q", older)  # the older pipeline's checkout
    before = emulator.numbers()
    late = project.run_apply()
    assert late.returncode == 0 and "PASS  apply: [demo]" in late.output, late.tail()
    assert f"superseded by {newer[:12]}: that pipeline applies" in late.output
    assert emulator.stats()["put_requests"] == 0 and emulator.numbers() == before


def test_a_stale_reviewed_plan_is_reposted_then_the_manual_approve_job_applies_it(project: Project) -> None:
    """on_stale_review: repost: apply exits 3 (allowed: a warning), posts the difference, keeps the re-plan;
    the manual approve job applies exactly that file."""
    emulator, gitlab = project.emulator, project.gitlab
    project.edit("numsync.yaml", "    desired: desired\n", "    desired: desired\n    on_stale_review: repost\n")
    project.commit("demo: repost stale reviewed plans", "numsync.yaml")
    project.git("checkout", "-q", "-b", "leeds")
    project.edit("desired/uk-care.yaml", "after-hours routing to Manchester", "after-hours routing to Leeds")
    project.commit("uk-care: Leeds", "desired")
    planned = project.run_plan()
    assert planned.returncode == 0, planned.tail()
    other = "+442079460959"
    assert other in emulator.numbers()
    # after review, before the merge: someone edits another uk-care number on the tenant (prune group)
    httpx.patch(f"{emulator.url}/_emulator/numbers/{other}", json={"NOTE": "edited on the tenant"}).raise_for_status()
    merged = project.merge("leeds")
    project.reviewed(planned, merged)

    reposted = project.run_apply()
    assert reposted.returncode == 0 and "WARN  apply: [demo]" in reposted.output, reposted.tail()  # allowed exit 3
    assert emulator.stats()["put_requests"] == 0
    assert f"posted to !{MR_IID} for re-approval" in reposted.output
    [note] = [n for n in gitlab.notes[(PROJECT_ID, MR_IID)] if "numsync-reapprove:demo" in n["body"]]
    assert other in note["body"] and "`approve: [demo]`" in note["body"]
    assert reposted.artifacts is not None and (reposted.artifacts / "replan-demo.json").is_file()

    approved = project.run_job(
        "approve: [demo]",
        "CI_PIPELINE_SOURCE=push",
        "OCP_USERNAME=demo",
        "OCP_PASSWORD=demo-secret",
        f"OCP_TOTP_SECRET={TOTP_SECRET}",
        f"NUMSYNC_STATE_DIR={project.state_dir}",
    )
    assert approved.returncode == 0 and "PASS  approve: [demo]" in approved.output, approved.tail()
    assert "Verified: live now matches desired." in approved.output
    assert "after-hours routing to Leeds" in emulator.numbers()["+442079460958"]["NOTE"]
    assert emulator.numbers()[other]["NOTE"] != "edited on the tenant"  # the re-plan's revert, as posted
