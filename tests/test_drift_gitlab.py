"""The scheduled drift job, complete (issue 18, item 8): warnings before a suppression expires and
for unused ones; ``drift --from-gitlab`` takes the previous scheduled run's report and the last
applied commit from GitLab (a stand-in over real HTTP), and keeps one issue per environment."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from cli_workspace import CREDENTIALS, emulator_process, live_records, run, workspace, write_desired
from gitlab_stub import GitLabStub
from test_drift import env_drift, rec

from numsync.config import load_config
from numsync.core import drift as drift_mod
from numsync.core.policy import DriftPolicy, StaleReview, Suppression
from numsync.core.schema import load_schema
from numsync.emulator.process import EmulatorProcess
from numsync.errors import ConfigError
from numsync.reports import drift as reports
from numsync.workflow.drift_gitlab import issue_label

TOKEN = "glpat-drift-test"
PROJECT = "4242"
EDITED = "+442079460958"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]


def test_suppressions_expiring_within_the_warning_days_and_unused_ones_are_flagged() -> None:
    today = dt.date(2026, 12, 2)
    soon = Suppression("+12015550100", "carrier migration", today + dt.timedelta(days=7), "changed")
    later = Suppression("+12015550100", "same number, any kind", today + dt.timedelta(days=8))
    unused = Suppression("+12015550199", "drift long gone", today + dt.timedelta(days=30))
    expired = Suppression("+12015550198", "old", today - dt.timedelta(days=1))
    e = env_drift([rec("+12015550100", note="x")], [rec("+12015550100")])
    drift_mod.suppress(e, [soon, later, unused, expired], today, warn_days=7)

    assert e.expiring_suppressions == [soon]  # 7 days away: warned; 8: not yet
    assert e.unused_suppressions == [later, unused]  # ``soon`` hid the item first; the others matched nothing
    assert e.expired_suppressions == [expired] and e.active == []
    report = drift_mod.DriftReport("2026-12-02T00:00:00+00:00", [e])
    text = reports.render_text(report)
    assert f"suppression of +12015550100 expires on {soon.until.isoformat()}" in text
    assert "suppression of +12015550199 matches no drift (drift long gone)" in text
    md = reports.render_markdown(report)
    assert "expires on 2026-12-09" in md and "`+12015550199`" in md and "matches no drift" in md
    page = reports.render_html(report)
    assert 'id="suppressions"' in page and "expires on 2026-12-09" in page and "+12015550199" in page
    junit = reports.render_junit(report)
    assert "<system-out>" in junit and "matches no drift (drift long gone)" in junit
    data = json.loads(reports.render_json(report))
    jsonschema.Draft202012Validator(load_schema("drift"), format_checker=jsonschema.FormatChecker()).validate(data)
    [env] = data["environments"]
    assert [s["number"] for s in env["expiring_suppressions"]] == ["+12015550100"]
    assert [s["until"] for s in env["unused_suppressions"]] == ["2026-12-10", "2027-01-01"]

    none_warned = env_drift([rec("+12015550100", note="x")], [rec("+12015550100")])
    drift_mod.suppress(none_warned, [soon], today, warn_days=6)
    assert none_warned.expiring_suppressions == [] and none_warned.unused_suppressions == []


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    with emulator_process() as emu:
        yield emu


@pytest.fixture
def stub() -> Iterator[GitLabStub]:
    with GitLabStub(token=TOKEN) as gitlab:
        yield gitlab


def edit_live(emulator: EmulatorProcess, number: str, note: str) -> None:
    answer = httpx.put(
        emulator.base_url + "/api/numbers/csv",
        headers={"Authorization": f"Bearer {emulator.token()}", "Content-Type": "text/csv"},
        content=f"OPERATION,NUMBER,NOTE\r\nUpdate,{number},{note}\r\n".encode(),
    )
    assert answer.status_code == 200, answer.text


def repository(tmp_path: Path, emulator: EmulatorProcess, *extra: str) -> tuple[Path, str]:
    """A numbers repository in git (desired = live, uk-care), its commit."""
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False}, *extra)
    write_desired(tmp_path, live_records(emulator), ["uk-care"])
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "numbers"]):
        subprocess.run([*GIT, *args], cwd=tmp_path, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    return config, head


def ci_env(stub: GitLabStub, **extra: str) -> dict[str, str]:
    return {
        **CREDENTIALS,
        "CI": "",  # the suite may itself run in a pipeline
        "CI_API_V4_URL": stub.api_url,
        "CI_PROJECT_ID": PROJECT,
        "CI_DEFAULT_BRANCH": "main",
        "CI_PIPELINE_ID": "999999",
        "CI_JOB_URL": "http://gitlab.invalid/jobs/drift",
        "NUMSYNC_GITLAB_TOKEN": TOKEN,
        **extra,
    }


def test_drift_from_gitlab_keeps_first_seen_and_attributes_to_the_last_applied_commit(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    config, head = repository(tmp_path, emulator)
    edit_live(emulator, EDITED, "edited on the tenant")
    first = run(config, "drift", "--format", f"json={tmp_path / 'first.json'}", env=CREDENTIALS)
    assert first.exit_code == 2, first.output
    first_report = json.loads((tmp_path / "first.json").read_text())
    [item] = first_report["environments"][0]["items"]
    # the previous scheduled run: a failed drift job (drift found) whose drift.json says when it was first seen
    earlier = {**first_report}
    earlier["environments"][0]["items"][0]["first_seen"] = "2026-11-20T06:00:00+00:00"
    old = stub.add_pipeline(sha=head, source="schedule")
    stub.add_job(old, "drift: [test]", status="failed", artifacts={"drift.json": json.dumps(earlier).encode()})
    newer = stub.add_pipeline(sha=head, source="schedule")
    stub.add_job(newer, "drift: [other]", status="success", artifacts={"drift.json": b"{}"})  # another environment
    stub.add_pipeline(sha=head, source="push")  # not a schedule
    # deployments: the newest was superseded (wrote nothing) and is skipped; the one before applied
    applied = stub.add_job(
        stub.add_pipeline(sha=head), "apply: [test]", artifacts={"apply-report.json": b'{"outcome": "applied"}'}
    )
    stub.add_deployment("test", head, applied)
    superseded = stub.add_job(
        stub.add_pipeline(sha="f" * 40), "apply: [test]", artifacts={"apply-report.json": b'{"outcome": "superseded"}'}
    )
    stub.add_deployment("test", "f" * 40, superseded)

    done = run(
        config, "--env", "test", "drift", "--from-gitlab", "--format", f"json={tmp_path / 'now.json'}", env=ci_env(stub)
    )

    assert done.exit_code == 2, done.output
    assert "previous drift report: job #" in done.output and f"of schedule pipeline #{old}" in done.output
    assert f"last applied: commit {head[:12]}" in done.output
    [now] = json.loads((tmp_path / "now.json").read_text())["environments"][0]["items"]
    assert now["number"] == item["number"] == EDITED
    assert now["first_seen"] == "2026-11-20T06:00:00+00:00"  # persisting drift keeps its age
    assert now["cause"] == "out_of_band"  # desired did not change since the last apply: someone edited OCP
    assert not stub.writes()  # no issue unless numsync.yaml asks for one


def test_drift_from_gitlab_without_history_or_token_runs_as_before(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    config, _ = repository(tmp_path, emulator)
    empty = run(config, "drift", "--from-gitlab", env=ci_env(stub))
    assert empty.exit_code == 0, empty.output
    assert "no earlier scheduled 'drift: [test]' kept drift.json" in empty.output
    assert "no deployment of 'test' applied anything yet" in empty.output
    without = run(config, "drift", "--from-gitlab", env={**ci_env(stub), "NUMSYNC_GITLAB_TOKEN": ""})
    assert without.exit_code == 0 and "NUMSYNC_GITLAB_TOKEN not set: drift runs without --previous" in without.output


def test_one_issue_per_environment_is_opened_updated_and_closed(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    config, _ = repository(tmp_path, emulator, "drift: {gitlab_issue: true, warn_days: 3}")
    assert run(config, "drift", "--from-gitlab", env=ci_env(stub)).exit_code == 0
    assert stub.issues == []  # no drift: nothing to open

    edit_live(emulator, EDITED, "edited on the tenant")
    opened = run(config, "drift", "--from-gitlab", env=ci_env(stub))
    assert opened.exit_code == 2 and "drift issue for 'test': opened" in opened.output, opened.output
    [issue] = stub.issues
    assert issue["labels"] == [issue_label("test")] == ["numsync-drift::test"] and issue["state"] == "opened"
    assert EDITED in issue["description"] and "edited on the tenant" in issue["description"]
    assert "http://gitlab.invalid/jobs/drift" in issue["description"]

    edit_live(emulator, EDITED, "edited again")
    updated = run(config, "drift", "--from-gitlab", env=ci_env(stub))
    assert updated.exit_code == 2 and "drift issue for 'test': updated" in updated.output
    [issue] = stub.issues  # still one
    assert "edited again" in issue["description"] and "edited on the tenant" not in issue["description"]

    fixed = run(config, "apply", "--auto-approve", env={**CREDENTIALS, "CI": ""})
    assert fixed.exit_code == 0, fixed.output
    closed = run(config, "drift", "--from-gitlab", env=ci_env(stub))
    assert closed.exit_code == 0 and "drift issue for 'test': closed" in closed.output
    [issue] = stub.issues
    assert issue["state"] == "closed" and "No drift as of" in issue["description"]

    edit_live(emulator, EDITED, "and again")
    reopened = run(config, "drift", "--from-gitlab", env=ci_env(stub))
    assert "drift issue for 'test': opened" in reopened.output
    assert [i["state"] for i in stub.issues] == ["closed", "opened"]  # a new episode, a new issue


def test_the_drift_and_review_settings_of_numsync_yaml_are_read_and_checked(tmp_path: Path) -> None:
    config = workspace(tmp_path, "http://127.0.0.1:9/integrations", {"uk-care": False})
    good = config.read_text() + "    on_stale_review: repost\n    drift: {warn_days: 3, gitlab_issue: true}\n"
    config.write_text(good)
    env = load_config(config).environment("test")
    assert env.on_stale_review is StaleReview.REPOST and env.drift == DriftPolicy(warn_days=3, gitlab_issue=True)

    config.write_text(good.replace("repost", "maybe").replace("warn_days: 3", "warn_days: -1"))
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    said = str(refused.value) + "\n".join(refused.value.details)
    assert "on_stale_review: 'maybe' is not one of ['refuse', 'repost']" in said
    assert "drift.warn_days: -1 is less than the minimum of 0" in said


def test_drift_from_gitlab_skips_an_artifact_that_is_no_drift_report(
    tmp_path: Path, emulator: EmulatorProcess, stub: GitLabStub
) -> None:
    """A scheduled job's drift.json of the wrong shape (a first_seen that is no timestamp) used to reach the age
    column and end the drift job in a ValueError traceback; it is skipped, with a note, for the run before it."""
    config, head = repository(tmp_path, emulator)
    edit_live(emulator, EDITED, "edited on the tenant")
    first = run(config, "drift", "--format", f"json={tmp_path / 'first.json'}", env=CREDENTIALS)
    good = json.loads((tmp_path / "first.json").read_text())
    good["environments"][0]["items"][0]["first_seen"] = "2026-11-20T06:00:00+00:00"
    bad = json.loads(json.dumps(good))
    bad["environments"][0]["items"][0]["first_seen"] = "last week"
    older = stub.add_pipeline(sha=head, source="schedule")
    stub.add_job(older, "drift: [test]", status="failed", artifacts={"drift.json": json.dumps(good).encode()})
    newer = stub.add_pipeline(sha=head, source="schedule")
    broken = stub.add_job(newer, "drift: [test]", status="failed", artifacts={"drift.json": json.dumps(bad).encode()})

    done = run(
        config, "--env", "test", "drift", "--from-gitlab", "--format", f"json={tmp_path / 'now.json'}", env=ci_env(stub)
    )

    assert first.exit_code == 2 and done.exit_code == 2, done.output
    assert f"job #{broken} kept a drift.json that is not a drift report" in done.output
    assert "'last week' is not an ISO-8601 timestamp" in done.output
    assert f"of schedule pipeline #{older}" in done.output
    [now] = json.loads((tmp_path / "now.json").read_text())["environments"][0]["items"]
    assert now["first_seen"] == "2026-11-20T06:00:00+00:00"
