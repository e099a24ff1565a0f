"""numsync validate through the CLI: every problem as path:line:column, counts, formats, exit codes, offline."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from numsync.cli import main
from numsync.core.desired import load_desired
from numsync.reports import problems as reports

APP = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"

CONFIG = """
environments:
  prod:
    region: EU1
    desired: desired
    default_provider: twilio
    groups:
      ocp-qa: {}
      uk-care: {}
"""

CONFIG_WITHOUT_PROVIDER = CONFIG.replace("    default_provider: twilio\n", "")


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project: numsync.yaml (EU1, default_provider twilio, groups ocp-qa and uk-care) and desired/."""
    monkeypatch.chdir(tmp_path)
    for name in ("OCP_USERNAME", "OCP_PASSWORD", "OCP_TOKEN", "OCP_OTP", "NUMSYNC_CONFIG", "NUMSYNC_ENV"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "numsync.yaml").write_text(textwrap.dedent(CONFIG).lstrip(), encoding="utf-8")
    (tmp_path / "desired").mkdir()
    return tmp_path


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def validate(*args: str) -> Result:
    return CliRunner().invoke(main, ["validate", *args], catch_exceptions=False)


GOOD_QA = f"""
    group_id: ocp-qa
    numbers:
      "+12015550123":
        miniapp_id: "{APP}"
        locale: en-US
        phone_number_set_id: us-east
      "+12015550124": {{}}
    """


# --------------------------------------------------------------------------- text


def test_clean_tree_exits_0_with_an_ok_count_line(tree: Path) -> None:
    write(tree, "desired/ocp-qa.yaml", GOOD_QA)
    result = validate()
    assert result.exit_code == 0, result.output
    assert result.stdout == "OK: no problems (2 number(s) in 1 environment(s))\n"


def test_text_lists_every_problem_as_path_line_column_then_the_count(tree: Path) -> None:
    write(
        tree,
        "desired/ocp-qa.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {locale: english}
          "+1201555012": {}
          "+12015550125":
            minapp_id: x
        """,
    )
    write(
        tree,
        "desired/uk-care.yaml",
        """
        group_id: uk-care
        numbers:
          "+442079460900": {note: no}
        """,
    )
    result = validate()
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "desired/ocp-qa.yaml:3:28: locale 'english' is not a tag numsync accepts: write language[-Script][-REGION], like 'en-US' or 'zh-Hant-TW'",
        "desired/ocp-qa.yaml:4:3: +1201555012 is not a valid phone number",
        "desired/ocp-qa.yaml:6:5: unknown key 'minapp_id'; did you mean 'miniapp_id'?",
        "desired/uk-care.yaml:3:27: YAML read 'no' as a boolean, not text; quote this value: \"no\"",
        "4 problem(s): 4 error(s), 0 warning(s) (4 number(s) in 1 environment(s))",
    ]


# One small fixture per kind of problem: (files, the expected "path:line:column: " prefix, a part of the message).
CASES = {
    "yaml-syntax": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123": note: x\n'},
        "desired/a.yaml:3:23: ",
        "YAML syntax error: mapping values are not allowed",
    ),
    "duplicate-key": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {}\n  "+12015550123": {}\n'},
        "desired/a.yaml:4:3: ",
        "duplicate key '+12015550123' (first at line 3)",
    ),
    "quote-number": (
        {"desired/a.yaml": "group_id: ocp-qa\nnumbers:\n  +12015550123: {}\n"},
        "desired/a.yaml:3:3: ",
        'quote this value: "+12015550123"',
    ),
    "retyped-value": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {phone_number_set_id: 0123}\n'},
        "desired/a.yaml:3:41: ",
        "YAML read '0123' as an integer, not text; quote this value",
    ),
    "unknown-key": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123":\n    lcoale: en-US\n'},
        "desired/a.yaml:4:5: ",
        "unknown key 'lcoale'; did you mean 'locale'?",
    ),
    "schema-type": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123":\n    note: [a, b]\n'},
        "desired/a.yaml:4:11: ",
        'note: ["a", "b"] is not text',
    ),
    "number-invalid": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {}\n  "+1201555012": {}\n'},
        "desired/a.yaml:4:3: ",
        "+1201555012 is not a valid phone number",
    ),
    "number-format": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "2015550123": {}\n'},
        "desired/a.yaml:3:3: ",
        "is not in E.164 form",
    ),
    "duplicate-after-normalization": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {}\n  "+1 201 555 0123": {}\n'},
        "desired/a.yaml:4:3: ",
        "'+1 201 555 0123' is +12015550123 once normalized, already listed at desired/a.yaml:3:3",
    ),
    "number-in-two-groups": (
        {
            "desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {}\n',
            "desired/b.yaml": 'group_id: uk-care\nnumbers:\n  "+12015550123": {}\n',
        },
        "desired/b.yaml:3:3: ",
        "+12015550123 is listed in two groups: 'ocp-qa' at desired/a.yaml:3:3 and 'uk-care'",
    ),
    "locale-format": (
        {"desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123":\n    locale: en-USA\n'},
        "desired/a.yaml:4:13: ",
        "locale 'en-USA' is not a tag numsync accepts",
    ),
    "locale-required": (
        {"desired/a.yaml": f'group_id: ocp-qa\nnumbers:\n  "+12015550123":\n    miniapp_id: "{APP}"\n'},
        "desired/a.yaml:3:3: ",
        "+12015550123 has a miniapp_id but no locale",
    ),
    "unmanaged-group": (
        {"desired/a.yaml": 'group_id: sales\nnumbers:\n  "+12015550123": {}\n'},
        "desired/a.yaml:1:11: ",
        "group 'sales' is not managed by this environment",
    ),
    "set-other-group": (
        {
            "desired/a.yaml": 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {phone_number_set_id: london}\n',
            "desired/b.yaml": 'group_id: uk-care\nnumbers:\n  "+442079460900": {}\n  "+442079460901":\n    phone_number_set_id: london\n',
        },
        "desired/b.yaml:5:26: ",
        "phone number set 'london' belongs to group 'ocp-qa' (used at desired/a.yaml:3:41); group 'uk-care' cannot use it",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_problem_at_its_line(tree: Path, case: str) -> None:
    files, prefix, message = CASES[case]
    for name, text in files.items():
        (tree / name).write_text(text, encoding="utf-8")
    result = validate()
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    matching = [line for line in lines if line.startswith(prefix)]
    assert len(matching) == 1, lines
    assert message in matching[0]
    assert lines[-1].startswith("1 problem(s): 1 error(s), 0 warning(s)")


def test_config_problems_are_reported_like_the_others(tree: Path) -> None:
    write(tree, "numsync.yaml", CONFIG.replace("    desired: desired\n", "    desired: desired\n    timout: 5\n"))
    result = validate("--format", "json")
    assert result.exit_code == 1
    [problem] = json.loads(result.stdout)
    assert problem["path"] == "numsync.yaml"
    assert problem["line"] == 5
    assert "unknown key 'timout'; did you mean 'timeout'?" in problem["message"]


def test_an_unknown_env_is_a_problem(tree: Path) -> None:
    write(tree, "desired/ocp-qa.yaml", GOOD_QA)
    result = CliRunner().invoke(main, ["--env", "staging", "validate"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "no environment 'staging'" in result.stdout


# --------------------------------------------------------------------------- warnings: provider


def test_a_number_without_any_provider_is_a_warning_that_does_not_fail(tree: Path) -> None:
    write(tree, "numsync.yaml", CONFIG_WITHOUT_PROVIDER)
    write(
        tree,
        "desired/ocp-qa.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {provider: vonage}
          "+12015550124": {}
        """,
    )
    result = validate()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "desired/ocp-qa.yaml:4:3: warning: +12015550124 has no provider (not on the number, in defaults, or as default_provider in numsync.yaml); "
        "it can be created only with one — fine if it already exists in OCP",
        "OK: 1 problem(s): 0 error(s), 1 warning(s) (2 number(s) in 1 environment(s))",
    ]


@pytest.mark.parametrize(
    ("config", "defaults"),
    [(CONFIG, ""), (CONFIG_WITHOUT_PROVIDER, "defaults: {provider: twilio}\n")],
    ids=["environment-default", "file-defaults"],
)
def test_a_provider_from_defaults_or_the_environment_is_enough(tree: Path, config: str, defaults: str) -> None:
    write(tree, "numsync.yaml", config)
    (tree / "desired" / "ocp-qa.yaml").write_text(
        f'group_id: ocp-qa\n{defaults}numbers:\n  "+12015550124": {{}}\n', encoding="utf-8"
    )
    result = validate("--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_warnings_do_not_hide_errors(tree: Path) -> None:
    write(tree, "numsync.yaml", CONFIG_WITHOUT_PROVIDER)
    write(
        tree,
        "desired/ocp-qa.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550124": {}
          "+1201555012": {}
        """,
    )
    result = validate("--format", "json")
    assert result.exit_code == 1
    found = [(p["line"], p["check"], p["severity"]) for p in json.loads(result.stdout)]
    assert found == [
        (3, "provider-missing", "warning"),
        (4, "number-invalid", "error"),
        (4, "provider-missing", "warning"),
    ]
    assert "3 problem(s): 1 error(s), 2 warning(s)" in result.stderr


# --------------------------------------------------------------------------- phone number sets


def test_a_set_used_by_two_groups_is_an_error_at_each_later_use(tree: Path) -> None:
    write(
        tree,
        "desired/a-ocp-qa.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {phone_number_set_id: us-east}
          "+12015550124": {phone_number_set_id: us-east}
        """,
    )
    write(
        tree,
        "desired/b-uk-care.yaml",
        """
        group_id: uk-care
        numbers:
          "+442079460900": {phone_number_set_id: london}
          "+442079460901": {phone_number_set_id: us-east}
          "+442079460902":
            phone_number_set_id: us-east
        """,
    )
    result = validate("--format", "json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)
    assert [(p["path"], p["line"], p["column"], p["check"]) for p in problems] == [
        ("desired/b-uk-care.yaml", 4, 42, "set-other-group"),
        ("desired/b-uk-care.yaml", 6, 26, "set-other-group"),
    ]
    assert (
        "phone number set 'us-east' belongs to group 'ocp-qa' (used at desired/a-ocp-qa.yaml:3:41)"
        in problems[0]["message"]
    )
    assert "group 'uk-care' cannot use it" in problems[0]["message"]


def test_a_set_from_defaults_is_reported_once_at_the_defaults_line(tree: Path) -> None:
    write(
        tree,
        "desired/a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {phone_number_set_id: london}
        """,
    )
    write(
        tree,
        "desired/b.yaml",
        """
        group_id: uk-care
        defaults:
          phone_number_set_id: london
        numbers:
          "+442079460900": {}
          "+442079460901": {}
          "+442079460902": {phone_number_set_id: manchester}
        """,
    )
    result = validate("--format", "json")
    [problem] = json.loads(result.stdout)
    assert (problem["path"], problem["line"], problem["column"]) == ("desired/b.yaml", 3, 24)
    assert problem["check"] == "set-other-group"


def test_sets_shared_within_one_group_and_sets_cleared_are_fine(tree: Path) -> None:
    write(
        tree,
        "desired/a.yaml",
        """
        group_id: ocp-qa
        defaults: {phone_number_set_id: us-east}
        numbers:
          "+12015550123": {}
          "+12015550124": {phone_number_set_id: us-east}
        """,
    )
    write(
        tree,
        "desired/b.yaml",
        """
        group_id: uk-care
        defaults: {phone_number_set_id: us-east}
        numbers:
          "+442079460900": {phone_number_set_id: null}
          "+442079460901": {phone_number_set_id: london}
        """,
    )
    result = validate()
    assert result.exit_code == 0, result.output


def test_checks_still_run_when_other_files_have_problems(tree: Path) -> None:
    write(tree, "desired/a.yaml", 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {phone_number_set_id: s1}\n')
    write(
        tree,
        "desired/b.yaml",
        'group_id: uk-care\nnumbers:\n  "+442079460900": {phone_number_set_id: s1}\n  "2015550123": {}\n',
    )
    result = validate("--format", "json")
    assert sorted(p["check"] for p in json.loads(result.stdout)) == ["number-format", "set-other-group"]


# --------------------------------------------------------------------------- json and codequality


def test_json_shape(tree: Path) -> None:
    write(tree, "desired/ocp-qa.yaml", 'group_id: ocp-qa\nnumbers:\n  "+1201555012": {}\n')
    result = validate("--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {
            "path": "desired/ocp-qa.yaml",
            "line": 3,
            "column": 3,
            "message": "+1201555012 is not a valid phone number",
            "check": "number-invalid",
            "severity": "error",
        }
    ]
    assert result.stderr.startswith("1 problem(s): 1 error(s), 0 warning(s)")


def test_codequality_shape(tree: Path) -> None:
    write(tree, "numsync.yaml", CONFIG_WITHOUT_PROVIDER)
    write(
        tree,
        "desired/ocp-qa.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+1201555012": {provider: twilio}
          "+12015550124": {}
        """,
    )
    result = validate("--format", "codequality")
    assert result.exit_code == 1
    issues = json.loads(result.stdout)
    assert len(issues) == 2
    for issue in issues:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert isinstance(issue["fingerprint"], str) and len(issue["fingerprint"]) == 32
        assert issue["location"]["path"] == "desired/ocp-qa.yaml"
    by_check = {i["check_name"]: i for i in issues}
    assert by_check["number-invalid"]["severity"] == "major"
    assert by_check["number-invalid"]["location"]["lines"]["begin"] == 3
    assert by_check["number-invalid"]["description"] == "+1201555012 is not a valid phone number"
    assert by_check["provider-missing"]["severity"] == "minor"
    assert by_check["provider-missing"]["location"]["lines"]["begin"] == 4
    assert len({i["fingerprint"] for i in issues}) == 2


def codequality(root: Path) -> dict[str, int]:
    result = validate("--format", "codequality")
    return {i["fingerprint"]: i["location"]["lines"]["begin"] for i in json.loads(result.stdout)}


def test_codequality_fingerprints_survive_moved_lines(tree: Path) -> None:
    before = """
        group_id: ocp-qa
        numbers:
          "+12015550123": {}
          "+12015550124": {note: no}
          "+1201555012": {}
          "+12015550125": {}
          "+12015550125": {}
        """
    after = """
        # comments push everything down
        # by two lines
        group_id: ocp-qa

        numbers:
          "+1201555012": {}
          "+12015550125": {}
          "+12015550123": {}
          "+12015550124": {note: no}
          "+12015550125": {}
        """
    write(tree, "desired/ocp-qa.yaml", before)
    first = codequality(tree)
    write(tree, "desired/ocp-qa.yaml", after)
    second = codequality(tree)
    assert len(first) == 3
    assert set(first) == set(second)
    assert all(first[f] != second[f] for f in first)  # every problem moved, none changed its fingerprint


def test_identical_problems_get_distinct_fingerprints_and_a_fix_keeps_the_other(tree: Path) -> None:
    write(tree, "numsync.yaml", CONFIG_WITHOUT_PROVIDER)
    write(
        tree,
        "desired/ocp-qa.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {provider: t, locale: english}
          "+12015550124": {provider: t, locale: english}
        """,
    )
    both = codequality(tree)
    assert len(both) == 2  # the same message twice, two fingerprints
    write(
        tree,
        "desired/ocp-qa.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {provider: t, locale: english}
        """,
    )
    one = codequality(tree)
    assert len(one) == 1 and set(one) < set(both)


def test_fingerprint_depends_on_path_and_check_not_on_line() -> None:
    from numsync.core.yamlsrc import Location, Problem

    p = Problem(Location("a.yaml", 3, 3), "duplicate key 'x' (first at line 2)", "duplicate-key")
    moved = Problem(Location("a.yaml", 30, 5), "duplicate key 'x' (first at line 20)", "duplicate-key")
    other_file = Problem(Location("b.yaml", 3, 3), p.message, p.check)
    other_check = Problem(p.location, p.message, "other")
    [fp], [fp_moved], [fp_file], [fp_check] = (reports.fingerprints([q]) for q in (p, moved, other_file, other_check))
    assert fp == fp_moved
    assert len({fp, fp_file, fp_check}) == 3
    assert reports.stable_message("at desired/a.yaml:3:41 and line 7") == "at desired/a.yaml and line"


# --------------------------------------------------------------------------- --output, offline


@pytest.mark.parametrize("report_format", ["text", "json", "codequality"])
def test_output_writes_the_report_to_a_file_and_the_count_to_stderr(tree: Path, report_format: str) -> None:
    write(tree, "desired/ocp-qa.yaml", 'group_id: ocp-qa\nnumbers:\n  "+1201555012": {}\n')
    result = validate("--format", report_format, "--output", "report.out")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("1 problem(s): 1 error(s), 0 warning(s)")
    written = (tree / "report.out").read_text("utf-8")
    if report_format == "text":
        assert written.splitlines()[0] == "desired/ocp-qa.yaml:3:3: +1201555012 is not a valid phone number"
    else:
        assert len(json.loads(written)) == 1


def test_output_on_success_writes_an_empty_report(tree: Path) -> None:
    write(tree, "desired/ocp-qa.yaml", GOOD_QA)
    result = validate("--format", "codequality", "--output", "gl-code-quality.json")
    assert result.exit_code == 0
    assert json.loads((tree / "gl-code-quality.json").read_text("utf-8")) == []
    assert result.stderr.startswith("OK: no problems")


def test_validate_needs_no_credentials_and_no_network(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tree, "desired/ocp-qa.yaml", GOOD_QA)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    result = validate()
    assert result.exit_code == 0, result.output


def test_the_bundled_example_validates() -> None:
    root = Path(__file__).resolve().parents[1]
    result = CliRunner().invoke(
        main, ["--config", str(root / "numsync.yaml"), "validate", "--format", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    state = load_desired(root / "desired")
    assert f"({len(state.records)} number(s) in 1 environment(s))" in result.stderr


# --------------------------------------------------------------------------- ${VAR} without a value (issue 18, item 5)


def test_a_variable_without_a_value_is_a_warning_offline_and_an_error_where_ocp_is_needed(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NS_UNSET_BASE", raising=False)
    write(tree, "desired/ocp-qa.yaml", GOOD_QA)
    config = (tree / "numsync.yaml").read_text("utf-8")
    (tree / "numsync.yaml").write_text(
        config.replace(
            "    desired: desired\n", '    base_url: "${NS_UNSET_BASE}/integrations"\n    desired: desired\n'
        ),
        encoding="utf-8",
    )
    result = validate()
    assert result.exit_code == 0, result.output
    assert "numsync.yaml:4:15: warning: environment variable NS_UNSET_BASE is not set" in result.stdout
    assert result.stdout.endswith("OK: 1 problem(s): 0 error(s), 1 warning(s) (2 number(s) in 1 environment(s))\n")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("OCP_TOKEN", "a-pre-issued-token")
    for command in (["plan"], ["apply", "--auto-approve"], ["drift"], ["export"], ["import"]):
        outcome = CliRunner().invoke(main, command, catch_exceptions=False)
        assert outcome.exit_code == 1, (command, outcome.output)
        assert "numsync.yaml:4:15: environment variable NS_UNSET_BASE is not set" in outcome.stderr, command
        assert "Traceback" not in outcome.output


def test_a_variable_without_a_value_is_named_before_any_credential_is_read(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README promises the ${VAR} refusal comes "before reading any credential": with none set, a newcomer
    must be told about the variable at its numsync.yaml:line:col, not sent off to set OCP_USERNAME first."""
    monkeypatch.delenv("NS_UNSET_BASE", raising=False)
    for name in ("OCP_TOKEN", "OCP_USERNAME", "OCP_PASSWORD", "OCP_OTP", "OCP_TOTP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    write(tree, "desired/ocp-qa.yaml", GOOD_QA)
    config = (tree / "numsync.yaml").read_text("utf-8")
    (tree / "numsync.yaml").write_text(
        config.replace(
            "    desired: desired\n", '    base_url: "${NS_UNSET_BASE}/integrations"\n    desired: desired\n'
        ),
        encoding="utf-8",
    )
    for command in (["plan"], ["apply", "--auto-approve"], ["drift"], ["export"], ["import"]):
        outcome = CliRunner().invoke(main, command, catch_exceptions=False)
        assert outcome.exit_code == 1, (command, outcome.output)
        assert "numsync.yaml:4:15: environment variable NS_UNSET_BASE is not set" in outcome.stderr, command
        assert "no OCP credentials" not in outcome.stderr, command


# --------------------------------------------------------------------------- no quiet no-ops (issue 18, item 9)


def test_a_value_of_an_ignored_field_is_a_warning_at_its_place(tree: Path) -> None:
    config = (tree / "numsync.yaml").read_text("utf-8")
    (tree / "numsync.yaml").write_text(
        config.replace("      ocp-qa: {}\n", "      ocp-qa: {ignore_fields: [note]}\n"), encoding="utf-8"
    )
    write(
        tree,
        "desired/ocp-qa.yaml",
        """
        group_id: ocp-qa
        defaults:
          note: "shared"
        numbers:
          "+12015550123":
            note: "own note"
          "+12015550124": {}
          "+12015550125": {}
        """,
    )
    write(tree, "desired/uk-care.yaml", 'group_id: uk-care\nnumbers:\n  "+442079460900": {note: "kept"}\n')
    result = validate()
    assert result.exit_code == 0, result.output
    ignored = [line for line in result.stdout.splitlines() if "ignore_fields" in line]
    assert ignored == [
        "desired/ocp-qa.yaml:3:9: warning: note is in ignore_fields for group 'ocp-qa' (numsync.yaml), so this value "
        "is neither compared nor written; remove it, or take the field out of ignore_fields",
        "desired/ocp-qa.yaml:6:11: warning: note is in ignore_fields for group 'ocp-qa' (numsync.yaml), so this value "
        "is neither compared nor written; remove it, or take the field out of ignore_fields",
    ]  # the default once, the number's own value once; uk-care does not ignore notes


def test_a_number_outside_its_groups_countries_is_an_error_in_validate_and_plan(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = (tree / "numsync.yaml").read_text("utf-8")
    (tree / "numsync.yaml").write_text(
        config.replace("      uk-care: {}\n", "      uk-care: {countries: [GB, IE]}\n"), encoding="utf-8"
    )
    write(
        tree,
        "desired/uk-care.yaml",
        """
        group_id: uk-care
        numbers:
          "+442079460900": {}
          "+35312345678": {}
          "+12125550100": {}
        """,
    )
    result = validate()
    assert result.exit_code == 1
    assert (
        "desired/uk-care.yaml:5:3: +12125550100 is a US number, but group 'uk-care' allows only GB, IE "
        "(countries: in numsync.yaml)"
    ) in result.stdout
    assert result.stdout.count("allows only") == 1  # the UK and Irish numbers pass

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("OCP_TOKEN", "a-pre-issued-token")
    planned = CliRunner().invoke(main, ["plan"], catch_exceptions=False)
    assert planned.exit_code == 1
    assert "uk-care.yaml:5:3: +12125550100 is a US number" in planned.stderr


def test_countries_must_be_region_codes(tree: Path) -> None:
    config = (tree / "numsync.yaml").read_text("utf-8")
    (tree / "numsync.yaml").write_text(
        config.replace("      uk-care: {}\n", "      uk-care: {countries: [UK]}\n"), encoding="utf-8"
    )
    result = validate()
    assert result.exit_code == 1
    assert "numsync.yaml:8:29: countries: 'UK' is not a region code phonenumbers knows (the United Kingdom is GB)" in (
        result.stdout
    )
