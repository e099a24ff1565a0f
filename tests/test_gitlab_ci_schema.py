""".gitlab-ci.yml against GitLab's own CI JSON Schema (the copy bundled with check-jsonschema,
so no network), and the pipeline's shape: which jobs run for which pipeline source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CI_FILE = ROOT / ".gitlab-ci.yml"


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        "vendor.gitlab-ci",
        "--data-transform",
        "gitlab-ci",
        str(path),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_gitlab_ci_yml_validates_against_gitlabs_schema() -> None:
    result = check_jsonschema(CI_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_pipeline(tmp_path: Path) -> None:
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(CI_FILE.read_text().replace("action: prepare", "action: rehearse", 1))
    result = check_jsonschema(broken)
    assert result.returncode == 1 and "environment" in result.stdout


def pipeline() -> dict:
    return yaml.safe_load(CI_FILE.read_text())


def test_jobs_have_the_reports_and_safeguards_the_issue_asks_for() -> None:
    ci = pipeline()
    assert {"validate", "plan", "apply", "drift"} <= ci.keys()
    assert ci["validate"]["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    assert any("numsync fmt --check" in line for line in ci["validate"]["script"])

    plan = ci["plan"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert plan["artifacts"]["reports"]["terraform"] in plan["artifacts"]["paths"]
    assert {"plan.json", "plan.md", "upload/"} <= set(plan["artifacts"]["paths"])
    assert any("numsync gitlab comment" in line for line in plan["script"])
    assert "OCP_READONLY_USERNAME" in str(plan["script"])  # read-only credentials on MR branches

    apply = ci["apply"]
    assert apply["resource_group"] == "numsync-$NUMSYNC_ENV"
    assert apply["environment"]["name"] == "$NUMSYNC_ENV"
    assert "CI_DEFAULT_BRANCH" in apply["rules"][0]["if"]
    assert not any("READONLY" in str(line) for line in apply["script"])
    # per-row results as an artifact and a JUnit report (one failing test case per number not applied)
    assert any("--results apply-results.csv --junit apply-junit.xml" in line for line in apply["script"])
    assert {"apply-results.csv", "apply-junit.xml"} <= set(apply["artifacts"]["paths"])
    assert apply["artifacts"]["reports"]["junit"] == "apply-junit.xml" and apply["artifacts"]["when"] == "always"

    drift = ci["drift"]
    assert drift["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert drift["artifacts"]["reports"]["junit"] == "drift.xml"

    matrix = ci[".environments"]["parallel"]["matrix"]
    assert matrix == [{"NUMSYNC_ENV": ["demo"]}]  # the environments of numsync.yaml
    for job in ("plan", "apply", "drift"):
        assert ".environments" in ci[job]["extends"]


def test_workflow_never_runs_a_branch_with_an_open_mr_twice() -> None:
    rules = pipeline()["workflow"]["rules"]
    never = [r for r in rules if r.get("when") == "never"]
    assert never == [{"if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", "when": "never"}]
    # The merge-request rule comes before it; branch pipelines after it.
    ifs = [r["if"] for r in rules]
    assert (
        ifs.index('$CI_PIPELINE_SOURCE == "merge_request_event"')
        < ifs.index(never[0]["if"])
        < ifs.index("$CI_COMMIT_BRANCH")
    )


def test_merge_request_jobs_are_interruptible_and_tenant_artifacts_need_the_developer_role() -> None:
    ci = pipeline()
    for job in ("validate", "plan"):  # a newer push cancels them: an older plan never overwrites a newer note
        assert ci[job]["interruptible"] is True, job
    for job in ("plan", "apply", "drift"):  # their artifacts hold numbers, notes and upload files
        assert ci[job]["artifacts"]["access"] == "developer", job
    assert "apply" not in {j for j, spec in ci.items() if isinstance(spec, dict) and spec.get("interruptible")}


def test_the_plan_job_plans_the_merge_result(tmp_path: Path) -> None:
    """The merge step of the plan job, run in a real repository: a clean merge, then a conflict."""
    import subprocess

    [step] = [s for s in pipeline()[".merge-result"]]

    def git(*args: str, cwd: Path) -> str:
        config = ["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]
        return subprocess.run(["git", *config, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout

    origin, work = tmp_path / "origin", tmp_path / "work"
    origin.mkdir()
    git("init", "-q", "-b", "main", cwd=origin)
    (origin / "a.yaml").write_text("a: 1\n")
    git("add", ".", cwd=origin)
    git("commit", "-qm", "base", cwd=origin)
    git("clone", "-q", str(origin), str(work), cwd=tmp_path)
    git("checkout", "-qb", "feature", cwd=work)
    (work / "b.yaml").write_text("b: 1\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "feature", cwd=work)
    (origin / "c.yaml").write_text("c: 1\n")
    git("add", ".", cwd=origin)
    git("commit", "-qm", "target moved on", cwd=origin)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    env["CI_COMMIT_SHA"] = git("rev-parse", "HEAD", cwd=work).strip()
    clean = subprocess.run(["bash", "-ec", step], cwd=work, env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert "planning the merge result" in clean.stdout
    assert (work / "c.yaml").exists() and (work / "b.yaml").exists()  # target's change and the branch's

    (origin / "b.yaml").write_text("b: 2\n")
    git("add", ".", cwd=origin)
    git("commit", "-qm", "conflicting", cwd=origin)
    (work / "b.yaml").write_text("b: 3\n")
    git("commit", "-qam", "also b", cwd=work)
    conflict = subprocess.run(["bash", "-ec", step], cwd=work, env=env, capture_output=True, text=True)
    assert conflict.returncode == 1 and "merge conflict" in conflict.stdout
    assert git("status", "--porcelain", cwd=work) == ""  # the merge was aborted, nothing half-merged

    merged = subprocess.run(
        ["bash", "-ec", step], cwd=work, env=env | {"CI_MERGE_REQUEST_EVENT_TYPE": "merged_result"}, text=True
    )
    assert merged.returncode == 0  # GitLab's merged-results pipeline: nothing to merge here
