"""The plan as a merge-request note, against a local stand-in for GitLab's notes API; the
Markdown plan and GitLab's Terraform report."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gitlab_stub import BOT, GitLabStub

from numsync.cli import main
from numsync.core.diff import ChangeKind, ChangeSummary
from numsync.core.model import Field
from numsync.core.safety import RecordedOverride
from numsync.errors import GitLabError
from numsync.gitlab import GitLabNotes, MergeRequest, marker, note_body, truncate
from numsync.ocp.rows import Batch, OperationRow, Phase
from numsync.ocp.vocabulary import Operation
from numsync.reports import markdown
from numsync.reports.plan_json import terraform_report
from numsync.workflow.plan import Plan

TOKEN = "glpat-s3cret-value"
PROJECT, MR = "42", "7"


def make_plan(environment: str = "prod", note: str = "Billing hotline", extra_rows: int = 0) -> Plan:
    rows = [
        OperationRow(Operation.DETACH, "+12015550188"),
        OperationRow(Operation.DELETE, "+12015550189"),
        OperationRow(Operation.CREATE, "+12015550127", {"GROUP_ID": "ocp-qa", "PROVIDER": "twilio"}),
        OperationRow(Operation.ATTACH, "+12015550126", {"MINIAPP_ID": "app.flow", "LOCALE": "en-US"}),
        OperationRow(Operation.UPDATE, "+12015550124", {Field.NOTE: note}),
    ]
    rows += [
        OperationRow(Operation.UPDATE, f"+1201555{3000 + i:04d}", {Field.NOTE: f"bulk {i}"}) for i in range(extra_rows)
    ]
    changes = [
        ChangeSummary("+12015550124", ChangeKind.UPDATE, "ocp-qa", {Field.NOTE: ("old", note)}),
        ChangeSummary(
            "+12015550126",
            ChangeKind.UPDATE,
            "ocp-qa",
            {Field.MINIAPP_ID: (None, "app.flow"), Field.LOCALE: (None, "en-US")},
        ),
        ChangeSummary("+12015550127", ChangeKind.CREATE, "ocp-qa", {}),
        ChangeSummary("+12015550188", ChangeKind.DELETE, "ocp-qa", {}),
        ChangeSummary("+12015550189", ChangeKind.DELETE, "ocp-qa", {}),
    ]
    changes += [
        ChangeSummary(f"+1201555{3000 + i:04d}", ChangeKind.UPDATE, "ocp-qa", {Field.NOTE: ("x", f"bulk {i}")})
        for i in range(extra_rows)
    ]
    phases = [Phase((Batch(tuple(rows)),)), Phase((Batch((OperationRow(Operation.DELETE, "+12015550188"),)),))]
    return Plan(
        environment=environment,
        phases=phases,
        changes=changes,
        in_sync=10,
        live_counts={"ocp-qa": 20},
        desired_count=18,
        git_commit="0123456789abcdef",
    )


@pytest.fixture
def gitlab() -> Iterator[GitLabStub]:
    with GitLabStub(token=TOKEN) as stub:
        yield stub


def save(plan: Plan, tmp_path: Path, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(plan.to_json()))
    return path


def ci_env(gitlab: GitLabStub, token: str | None = TOKEN) -> dict[str, str | None]:
    return {
        "CI_API_V4_URL": gitlab.api_url,
        "CI_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_IID": MR,
        "CI_COMMIT_SHA": "feedfacecafebeef0000",
        "CI_JOB_URL": "https://gitlab.example.com/group/numbers/-/jobs/99",
        "NUMSYNC_GITLAB_TOKEN": token,
        "NUMSYNC_CONFIG": "/nonexistent/numsync.yaml",
    }


def comment(plan_file: Path, env: dict[str, str | None], *args: str):
    return CliRunner().invoke(
        main, ["gitlab", "comment", "--plan", str(plan_file), *args], env=env, catch_exceptions=False
    )


def plan_notes(gitlab: GitLabStub, environment: str = "prod") -> list[dict]:
    return [n for n in gitlab.notes.get((PROJECT, MR), []) if marker(environment) in n["body"]]


def test_first_run_creates_one_note_and_the_second_updates_it(gitlab: GitLabStub, tmp_path: Path) -> None:
    gitlab.add_note(PROJECT, MR, "LGTM")
    first = comment(save(make_plan(), tmp_path), ci_env(gitlab))
    assert first.exit_code == 0, first.output
    assert "Created the plan note" in first.output
    [created] = [r for r in gitlab.writes()]
    assert created.method == "POST" and created.path == f"/api/v4/projects/{PROJECT}/merge_requests/{MR}/notes"
    assert created.headers["private-token"] == TOKEN
    [note] = plan_notes(gitlab)
    assert note["body"].startswith("<!-- numsync-plan:prod -->\n")
    assert "1 to create, 1 to update, 1 to attach, 1 to detach, 2 to delete" in note["body"]
    assert "`feedfacecafe`" in note["body"]

    # A later push: the plan changed; the same note is edited, nothing new is posted.
    second = comment(
        save(make_plan(note="Billing hotline (24/7)"), tmp_path), ci_env(gitlab) | {"CI_COMMIT_SHA": "beefbeefbeef1111"}
    )
    assert second.exit_code == 0, second.output
    assert "Updated the plan note" in second.output
    assert [r.method for r in gitlab.writes()] == ["POST", "PUT"]
    assert gitlab.writes()[1].path.endswith(f"/notes/{note['id']}")
    [updated] = plan_notes(gitlab)
    assert (
        updated["id"] == note["id"]
        and "Billing hotline (24/7)" in updated["body"]
        and "`beefbeefbeef`" in updated["body"]
    )
    assert len(gitlab.notes[(PROJECT, MR)]) == 2  # "LGTM" and the plan
    assert TOKEN not in first.output + second.output


def test_the_same_plan_again_writes_nothing(gitlab: GitLabStub, tmp_path: Path) -> None:
    plan_file = save(make_plan(), tmp_path)
    assert comment(plan_file, ci_env(gitlab)).exit_code == 0
    again = comment(plan_file, ci_env(gitlab))
    assert again.exit_code == 0 and "Unchanged the plan note" in again.output
    assert [r.method for r in gitlab.writes()] == ["POST"]


def test_the_marked_note_is_found_past_the_first_page_and_per_environment(gitlab: GitLabStub, tmp_path: Path) -> None:
    for i in range(150):
        gitlab.add_note(PROJECT, MR, f"review comment {i}")
    gitlab.add_note(PROJECT, MR, "added numsync-plan:prod to the system", system=True)
    theirs = gitlab.add_note(PROJECT, MR, marker("staging") + "\nstaging plan")
    ours = gitlab.add_note(PROJECT, MR, marker("prod") + "\nold prod plan", author=BOT)
    result = comment(save(make_plan("prod"), tmp_path), ci_env(gitlab))
    assert result.exit_code == 0, result.output
    assert [r.method for r in gitlab.writes()] == ["PUT"]
    assert gitlab.writes()[0].path.endswith(f"/notes/{ours['id']}")
    assert theirs["body"] == marker("staging") + "\nstaging plan"
    pages = [r.query["page"][0] for r in gitlab.requests if r.method == "GET" and r.path.endswith("/notes")]
    assert pages == ["1", "2"]


def test_missing_token_skips_cleanly_and_says_how_to_enable_notes(gitlab: GitLabStub, tmp_path: Path) -> None:
    result = comment(save(make_plan(), tmp_path), ci_env(gitlab, token=None))
    assert result.exit_code == 0, result.output
    assert "NUMSYNC_GITLAB_TOKEN is not set" in result.output
    assert "project access token" in result.output and "api scope" in result.output
    assert gitlab.requests == []


def test_refused_token_fails_without_showing_it(gitlab: GitLabStub, tmp_path: Path) -> None:
    result = comment(save(make_plan(), tmp_path), ci_env(gitlab, token="glpat-wrong-token"))
    assert result.exit_code == 1
    assert "HTTP 401" in result.output and "token was refused" in result.output
    assert "glpat-wrong-token" not in result.output
    assert gitlab.writes() == []


def test_outside_a_merge_request_it_asks_for_the_missing_values(gitlab: GitLabStub, tmp_path: Path) -> None:
    env = ci_env(gitlab) | {"CI_MERGE_REQUEST_IID": None}
    result = comment(save(make_plan(), tmp_path), env)
    assert result.exit_code == 1 and "--merge-request" in result.output
    explicit = comment(
        save(make_plan(), tmp_path), env, "--merge-request", MR, "--project", PROJECT, "--api-url", gitlab.api_url
    )
    assert explicit.exit_code == 0, explicit.output
    assert len(plan_notes(gitlab)) == 1


def test_long_plans_are_truncated_with_a_pointer_to_the_artifact(gitlab: GitLabStub, tmp_path: Path) -> None:
    result = comment(save(make_plan(extra_rows=400), tmp_path), ci_env(gitlab), "--max-chars", "5000")
    assert result.exit_code == 0, result.output
    [note] = plan_notes(gitlab)
    body = note["body"]
    assert len(body) <= 5000
    assert "truncated" in body and "https://gitlab.example.com/group/numbers/-/jobs/99/artifacts/browse" in body
    assert body.count("<details>") == body.count("</details>")


def test_truncate_closes_an_open_details_block() -> None:
    text = "head\n\n<details><summary>x</summary>\n\n" + "\n".join(f"| {i} |" for i in range(100)) + "\n\n</details>\n"
    cut = truncate(text, 300, "POINTER\n")
    assert len(cut) <= 300 and cut.endswith("POINTER\n") and "</details>" in cut
    assert truncate("short\n", 300, "POINTER\n") == "short\n"


def test_dry_run_prints_the_note_without_a_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["gitlab", "comment", "--plan", str(save(make_plan("prod"), tmp_path)), "--dry-run"],
        env={"NUMSYNC_GITLAB_TOKEN": None, "NUMSYNC_CONFIG": "/nonexistent"},
    )
    assert result.exit_code == 0
    assert result.output.startswith(marker("prod"))


def test_note_body_fits_the_limit_with_its_footer() -> None:
    body = note_body(
        "prod", "x\n" * 10_000, commit="abc", artifacts_url="https://a/b", max_chars=2000, footer=["footer line"]
    )
    assert len(body) <= 2000 and body.rstrip().endswith("footer line") and "https://a/b" in body


# --- the Markdown plan --------------------------------------------------------------------


def test_markdown_plan_escapes_cells_and_neutralizes_markup() -> None:
    hostile = "a|b `tick` <script>alert(1)</script> @team #12 **bold**\nnext"
    plan = Plan(
        environment="prod",
        phases=[Phase((Batch((OperationRow(Operation.UPDATE, "+12015550124", {"NOTE": hostile}),)),))],
        changes=[ChangeSummary("+12015550124", ChangeKind.UPDATE, "grp|x", {Field.NOTE: ("old`", hostile)})],
        conflicts=["number +1 is in group <b>x</b> | and y"],
    )
    text = markdown.render_plan(plan)
    tables = [block.splitlines() for block in re.findall(r"(?m)(?:^\|.*\n)+", text)]
    assert len(tables) == 2
    for rows in tables:  # every row of a table has as many unescaped pipes as its header
        assert len({len(re.findall(r"(?<!\\)\|", row)) for row in rows}) == 1, rows
    for line in text.splitlines():
        for raw in ("<script>", "@team", "**bold**"):
            if raw in line:
                assert raw in _code_spans(line), line
    assert "\\nnext" in text  # the newline is shown escaped, the row stays one line
    assert "- `number +1 is in group <b>x</b> | and y`" in text  # a sentence naming data: one code span


def _code_spans(line: str) -> str:
    return " ".join(m.group(2) for m in re.finditer(r"(`+)(.*?)\1", line))


def test_code_spans_hold_backticks() -> None:
    assert markdown.code("a`b") == "``a`b``"
    assert markdown.code("`x") == "`` `x ``"
    assert markdown.code("") == "` `"


def test_markdown_plan_shows_violations_and_no_changes() -> None:
    plan = make_plan()
    text = markdown.render_plan(
        plan,
        violations=[
            'the plan deletes 2 number(s); safety.max_deletes is 1. To apply anyway after review, make the plan with --override-thresholds and a reason: numsync plan --override-thresholds --reason "<why>" --out plan.json.'
        ],
    )
    assert "Apply would be refused" in text and "\\-\\-override" not in text and "--override-thresholds" in text
    empty = Plan(environment="prod", phases=[], changes=[], in_sync=5)
    assert "**No changes.**" in markdown.render_plan(empty)


def test_terraform_report_counts_attach_and_detach_as_updates() -> None:
    assert terraform_report(make_plan()) == {"create": 1, "update": 3, "delete": 2}
    assert terraform_report(Plan(environment="p", phases=[], changes=[])) == {"create": 0, "update": 0, "delete": 0}


def test_a_human_note_quoting_the_marker_is_left_alone_and_the_plan_is_posted_anew(
    gitlab: GitLabStub, tmp_path: Path
) -> None:
    human = gitlab.add_note(PROJECT, MR, f"Why does the bot write {marker('prod')} in its note?")
    result = comment(save(make_plan("prod"), tmp_path), ci_env(gitlab))
    assert result.exit_code == 0, result.output
    assert "Created the plan note" in result.output
    assert [r.method for r in gitlab.writes()] == ["POST"]
    assert human["body"] == f"Why does the bot write {marker('prod')} in its note?"
    [ours] = [n for n in plan_notes(gitlab) if n["author"]["id"] == BOT["id"]]
    assert ours["id"] != human["id"]


def test_a_429_is_retried_after_its_retry_after(gitlab: GitLabStub) -> None:
    gitlab.throttle.append((429, {"Retry-After": "7"}))
    sleeps: list[float] = []
    with GitLabNotes(MergeRequest(gitlab.api_url, PROJECT, MR), TOKEN, sleep=sleeps.append) as notes:
        action, note = notes.upsert(marker("prod"), marker("prod") + "\nplan")
    assert action == "created" and note["body"].endswith("plan")
    assert sleeps == [7.0]
    assert [r.path for r in gitlab.requests][:2] == ["/api/v4/user", "/api/v4/user"]  # refused once, then answered


def test_a_5xx_on_creation_is_not_posted_twice(gitlab: GitLabStub) -> None:
    body = marker("prod") + "\nplan"
    with GitLabNotes(MergeRequest(gitlab.api_url, PROJECT, MR), TOKEN, sleep=lambda s: None) as notes:
        notes.user_id()
        assert notes.find(marker("prod")) is None
        # GitLab created the note but its answer was lost as a 502: the note must not be posted again.
        original = gitlab.answer

        def lost_answer(method: str, path: str, *args: object) -> tuple[int, object, dict[str, str]]:
            status, payload, headers = original(method, path, *args)  # type: ignore[arg-type]
            if method == "POST":
                gitlab.answer = original  # type: ignore[method-assign]
                return 502, {"message": "502 Bad Gateway"}, {}
            return status, payload, headers

        gitlab.answer = lost_answer  # type: ignore[method-assign]
        note = notes.create(body, mark=marker("prod"))
    assert note["body"] == body
    assert len(plan_notes(gitlab)) == 1 and [r.method for r in gitlab.writes()] == ["POST"]


def test_notes_are_read_past_fifty_pages(gitlab: GitLabStub, tmp_path: Path) -> None:
    for i in range(5_150):
        gitlab.add_note(PROJECT, MR, f"comment {i}")
    ours = gitlab.add_note(PROJECT, MR, marker("prod") + "\nold plan", author=BOT)
    result = comment(save(make_plan("prod"), tmp_path), ci_env(gitlab))
    assert result.exit_code == 0, result.output
    assert [r.method for r in gitlab.writes()] == ["PUT"] and gitlab.writes()[0].path.endswith(f"/{ours['id']}")


def test_a_new_commit_marks_the_earlier_plan_outdated(gitlab: GitLabStub, tmp_path: Path) -> None:
    assert comment(save(make_plan(), tmp_path), ci_env(gitlab)).exit_code == 0
    later = ci_env(gitlab) | {"CI_COMMIT_SHA": "beefbeefbeef1111"}
    assert comment(save(make_plan(note="new"), tmp_path), later).exit_code == 0
    [note] = plan_notes(gitlab)
    assert "Planned for commit `beefbeefbeef`." in note["body"]
    assert "The plan for commit `feedfacecafe` that this note showed before is outdated." in note["body"]


def test_a_wrong_project_is_a_clear_error_without_the_token(gitlab: GitLabStub) -> None:
    gitlab.projects = {"4242"}
    with (
        GitLabNotes(MergeRequest(gitlab.api_url, "9999", MR), TOKEN, sleep=lambda s: None) as notes,
        pytest.raises(GitLabError) as caught,
    ):
        notes.upsert(marker("prod"), "x")
    assert "HTTP 404" in str(caught.value) and "Check the project" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_plan_of_the_merge_result_names_source_target_and_merge(gitlab: GitLabStub, tmp_path: Path) -> None:
    env = ci_env(gitlab) | {"NUMSYNC_SOURCE_SHA": "5" * 40, "CI_MERGE_REQUEST_TARGET_BRANCH_SHA": "7" * 40}
    result = comment(save(make_plan(), tmp_path), env)  # the plan was made at the merge commit 0123456789ab…
    assert result.exit_code == 0, result.output
    [note] = plan_notes(gitlab)
    assert (
        "Planned for commit `0123456789ab`: the merge of source `555555555555` into target `777777777777`."
        in note["body"]
    )


def test_the_note_says_to_add_the_label_not_to_pass_the_flag(tmp_path: Path) -> None:
    config = tmp_path / "numsync.yaml"
    config.write_text(
        "environments:\n  prod:\n    base_url: http://127.0.0.1:9/integrations\n    desired: desired\n"
        "    groups:\n      ocp-qa: {prune: true}\n    safety: {max_deletes: 1}\n"
    )
    result = CliRunner().invoke(
        main,
        ["gitlab", "comment", "--plan", str(save(make_plan("prod"), tmp_path)), "--dry-run"],
        env={"NUMSYNC_GITLAB_TOKEN": None, "NUMSYNC_CONFIG": str(config)},
    )
    assert result.exit_code == 0, result.output
    assert "Apply would be refused" in result.output and "safety.max_deletes is 1" in result.output
    assert '"numsync::override-thresholds" to the merge request' in result.output
    # the flag is no way out in a pipeline: the note never tells the reviewer to pass it
    assert "--reason" not in result.output and "pass --override-thresholds" not in result.output


def test_a_check_the_plan_records_as_lifted_is_not_shown_as_refusing(tmp_path: Path) -> None:
    """numsync.yaml judges the plan again for the note, with the overrides the plan records (who, why)."""
    config = tmp_path / "numsync.yaml"
    config.write_text(
        "environments:\n  prod:\n    base_url: http://127.0.0.1:9/integrations\n    desired: desired\n"
        "    groups:\n      ocp-qa: {prune: true}\n    safety: {max_deletes: 1}\n"
    )
    the_plan = make_plan("prod")
    the_plan.overrides = [RecordedOverride("--override-thresholds", "alice", "the numbers were released")]
    result = CliRunner().invoke(
        main,
        ["gitlab", "comment", "--plan", str(save(the_plan, tmp_path)), "--dry-run"],
        env={"NUMSYNC_GITLAB_TOKEN": None, "NUMSYNC_CONFIG": str(config)},
    )
    assert result.exit_code == 0, result.output
    assert "Apply would be refused" not in result.output and "safety.max_deletes is 1" not in result.output
