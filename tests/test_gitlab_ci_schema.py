"""The CI definitions against GitLab's own CI JSON Schema (a copy in tests/fixtures, so no network),
and the pipeline's shape: which jobs run for which pipeline source.

``templates/numsync.gitlab-ci.yml`` is the one definition of the jobs; this repository's
``.gitlab-ci.yml`` includes it (``include: local``) and adds only its environments and the tests.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CI_FILE = ROOT / ".gitlab-ci.yml"
TEMPLATE = ROOT / "templates" / "numsync.gitlab-ci.yml"
SCHEMA = ROOT / "tests" / "fixtures" / "gitlab-ci.schema.json"


def schema_errors(text: str) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(text))]


@pytest.mark.parametrize("path", [TEMPLATE, CI_FILE], ids=["template", "this repository"])
def test_the_ci_definitions_validate_against_gitlabs_schema(path: Path) -> None:
    assert schema_errors(path.read_text()) == []


def test_the_schema_check_catches_a_broken_pipeline() -> None:
    text = TEMPLATE.read_text()
    assert schema_errors(text.replace("action: prepare", "action: rehearse", 1))  # not an environment action
    assert schema_errors(text.replace("exit_codes: [3]", "exit_codes: three", 1))
    assert schema_errors(text.replace("when: manual", "when: sometimes", 1))


def test_this_repository_includes_the_template_and_adds_only_its_environments_and_tests() -> None:
    own = yaml.safe_load(CI_FILE.read_text())
    assert own["include"] == [{"local": "templates/numsync.gitlab-ci.yml"}]
    jobs = {k for k, v in own.items() if isinstance(v, dict) and ("script" in v or "extends" in v)}
    assert jobs == {"test"}  # validate, plan, apply, approve and drift come from the template alone
    assert own[".environments"]["parallel"]["matrix"] == [{"NUMSYNC_ENV": ["demo"]}]  # the bundled numsync.yaml's
    assert yaml.safe_load(TEMPLATE.read_text())[".environments"]["parallel"]["matrix"] == [{"NUMSYNC_ENV": ["prod"]}]
    assert own["variables"]["NUMSYNC_PIP_SPEC"] == "$CI_PROJECT_DIR"  # the numsync it tests


def test_the_template_installs_numsync_from_a_pinned_spec() -> None:
    template = yaml.safe_load(TEMPLATE.read_text())
    assert template["variables"]["NUMSYNC_PIP_SPEC"].endswith("/platform/numsync.git@v0.1.0")
    install = " ".join(template[".numsync"]["before_script"])
    assert '.venv/bin/pip install --quiet "$NUMSYNC_PIP_SPEC"' in install
    assert "NUMSYNC_APPLY_FLAGS" not in TEMPLATE.read_text() + CI_FILE.read_text()  # overrides live in the plan


def pipeline() -> dict[str, Any]:
    return dict(yaml.safe_load(TEMPLATE.read_text()))


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
    assert any("numsync apply --reviewed" in line for line in apply["script"])  # the plan the MR reviewed
    assert apply["allow_failure"] == {"exit_codes": [3]}  # reposted for re-approval: a warning, approve can run

    approve = ci["approve"]
    assert approve["rules"][0]["when"] == "manual" and approve["rules"][0]["if"] == apply["rules"][0]["if"]
    assert approve["resource_group"] == apply["resource_group"] and approve["stage"] == "approve"
    assert any('numsync apply "replan-$NUMSYNC_ENV.json"' in line for line in approve["script"])

    drift = ci["drift"]
    assert drift["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert drift["artifacts"]["reports"]["junit"] == "drift.xml"
    assert any("numsync drift --from-gitlab" in line for line in drift["script"])
    assert drift["variables"]["GIT_DEPTH"] == "0"  # the last applied commit's desired files

    for job in ("plan", "apply", "approve", "drift"):
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
    for job in ("plan", "apply", "approve", "drift"):  # their artifacts hold numbers, notes and upload files
        assert ci[job]["artifacts"]["access"] == "developer", job
    assert "apply" not in {j for j, spec in ci.items() if isinstance(spec, dict) and spec.get("interruptible")}


def test_the_plan_job_plans_the_merge_result(tmp_path: Path) -> None:
    """The merge step of the plan job, run in a real repository: a clean merge, then a conflict."""
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
