"""Paths locked down: files resolve inside the repository, GROUP_IDs are plain file names, no write goes through a link."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from numsync.cli import main
from numsync.config import ConfigError, load_config
from numsync.core.desired import DesiredError, load_desired
from numsync.core.paths import write_no_follow
from numsync.emulator.process import EmulatorProcess
from numsync.errors import UnsafePathError
from numsync.workflow.importer import file_name, render_desired, write_desired
from tests.cli_workspace import run, workspace

GOOD = 'group_id: ocp-qa\nnumbers:\n  "+12015550123": {}\n'
UNFORMATTED = "group_id: ocp-qa\nnumbers:\n  +1 201 555 0123: {}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository (numsync.yaml, desired/) under tmp_path, beside a folder outside it."""
    root = tmp_path / "repo"
    (root / "desired").mkdir(parents=True)
    (root / "numsync.yaml").write_text("environments: {prod: {region: EU1, desired: desired, groups: {ocp-qa: {}}}}\n")
    (tmp_path / "outside").mkdir()
    return root


# --------------------------------------------------------------------------- desired files and numsync.yaml


def test_a_desired_file_linking_out_of_the_repository_is_refused_and_not_read(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.yaml"
    secret.write_text("password: [unclosed\n")  # read, it would be a syntax error quoting its text
    (repo / "desired" / "a.yaml").symlink_to(secret)
    with pytest.raises(DesiredError) as info:
        load_desired(repo / "desired", display_root=repo, repository=repo)
    [problem] = info.value.problems
    assert (problem.check, str(problem.location)) == ("path-outside", "desired/a.yaml:1:1")
    assert f"symbolic link to {secret.resolve()}, outside the repository {repo.resolve()}" in problem.message
    assert "unclosed" not in str(info.value)


def test_a_desired_file_linking_elsewhere_inside_the_repository_loads(repo: Path) -> None:
    (repo / "shared").mkdir()
    (repo / "shared" / "qa.yaml").write_text(GOOD)
    (repo / "desired" / "a.yaml").symlink_to(repo / "shared" / "qa.yaml")
    state = load_desired(repo / "desired", display_root=repo, repository=repo)
    assert list(state.records) == ["+12015550123"]


@pytest.mark.parametrize("target", ["missing.yaml", "loop.yaml"])
def test_a_broken_desired_link_is_a_located_error_not_silently_skipped(repo: Path, target: str) -> None:
    """A dangling or looping ``*.yaml`` link was left out of the files without a word: its group's numbers then
    counted as unlisted (or, with prune, were blamed on a missing file)."""
    (repo / "desired" / "b.yaml").write_text(GOOD)
    link = repo / "desired" / "loop.yaml"  # a link to itself, or to a file that is not there
    link.symlink_to(target)
    with pytest.raises(DesiredError) as info:
        load_desired(repo / "desired", display_root=repo, repository=repo)
    [problem] = info.value.problems
    assert (problem.check, str(problem.location)) == ("path-broken", f"desired/{link.name}:1:1")
    assert f"symbolic link to {target}, which cannot be read" in problem.message


def test_without_a_given_repository_the_git_top_level_bounds_the_desired_files(repo: Path, tmp_path: Path) -> None:
    (repo / ".git").mkdir()
    (repo / "shared").mkdir()
    (repo / "shared" / "qa.yaml").write_text(GOOD)
    (tmp_path / "outside" / "uk.yaml").write_text(GOOD.replace("ocp-qa", "uk-care").replace("0123", "0124"))
    (repo / "desired" / "a.yaml").symlink_to(repo / "shared" / "qa.yaml")
    (repo / "desired" / "b.yaml").symlink_to(tmp_path / "outside" / "uk.yaml")
    with pytest.raises(DesiredError) as info:
        load_desired(repo / "desired", display_root=repo)
    assert [(p.check, str(p.location)) for p in info.value.problems] == [("path-outside", "desired/b.yaml:1:1")]


def test_the_cli_refuses_a_desired_file_linking_out(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "outside" / "a.yaml").write_text(GOOD)
    (repo / "desired" / "a.yaml").symlink_to(tmp_path / "outside" / "a.yaml")
    result = CliRunner().invoke(main, ["--config", str(repo / "numsync.yaml"), "validate"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "a.yaml:1:1: this file is a symbolic link to" in result.output


def test_numsync_yaml_linking_out_of_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    real = tmp_path / "outside" / "numsync.yaml"
    (repo / "numsync.yaml").rename(real)
    (repo / "numsync.yaml").symlink_to(real)
    with pytest.raises(ConfigError) as info:
        load_config(repo / "numsync.yaml")
    [problem] = info.value.problems
    assert (problem.check, str(problem.location)) == ("config-outside", f"{repo / 'numsync.yaml'}:1:1")
    assert "outside the repository" in problem.message


def test_numsync_yaml_linking_inside_the_git_checkout_loads(repo: Path) -> None:
    (repo / ".git").mkdir()
    (repo / "conf").mkdir()
    (repo / "numsync.yaml").rename(repo / "conf" / "numsync.yaml")
    (repo / "numsync.yaml").symlink_to(repo / "conf" / "numsync.yaml")
    config = load_config(repo / "numsync.yaml")
    assert config.environment("prod").repository == repo.resolve()


def test_numsync_yaml_refuses_anchors_at_their_place(tmp_path: Path) -> None:
    path = tmp_path / "numsync.yaml"
    path.write_text("environments:\n  prod: &p {region: EU1, desired: d, groups: {g: }}\n  test: *p\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert str(problem).startswith(f"{path}:2:9: YAML anchors and aliases are not allowed (anchor &p, and 1 more")


# --------------------------------------------------------------------------- the alias bomb


def test_validate_ends_an_alias_bomb_with_a_located_error(tmp_path: Path) -> None:
    """The issue's kind of file (a few hundred bytes): built, it is 9**9 strings (validate went to 4 GB and a MemoryError)."""
    lines = ["group_id: ocp-qa", 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    bomb = "\n".join(lines + ["numbers: {}"]) + "\n"
    assert len(bomb) < 650
    (tmp_path / "desired").mkdir()
    (tmp_path / "desired" / "bomb.yaml").write_text(bomb)
    (tmp_path / "numsync.yaml").write_text(
        "environments: {prod: {region: EU1, desired: desired, groups: {ocp-qa: }}}\n"
    )
    # A subprocess, so a regression fails on the timeout instead of exhausting the test run's memory.
    result = subprocess.run(
        [sys.executable, "-c", "from numsync.cli import main; main()", "--config", "numsync.yaml", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "desired/bomb.yaml:2:4: YAML anchors and aliases are not allowed (anchor &a, and 80 more" in result.stdout


# --------------------------------------------------------------------------- GROUP_IDs as file names


@pytest.mark.parametrize("group_id", ["../escape", "a/b", "/etc/passwd", "a\\b", "..", ".", ".hidden", " ", "a\0b"])
def test_a_group_id_that_is_no_plain_file_name_is_refused(group_id: str) -> None:
    with pytest.raises(UnsafePathError, match="cannot be a desired file name"):
        file_name(group_id)


def test_plain_group_ids_name_their_file() -> None:
    assert [file_name(g) for g in ("ocp-qa", "UK Care", "a.b")] == ["ocp-qa.yaml", "UK Care.yaml", "a.b.yaml"]


def test_import_refuses_a_group_id_with_a_separator_and_writes_nothing(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": False, "../escape": False})
    result = run(config, "import")
    assert result.exit_code == 1
    assert "GROUP_ID '../escape' cannot be a desired file name: it holds a path separator" in result.output
    assert "Nothing was written" in result.output
    assert list((tmp_path / "desired").iterdir()) == [] and not (tmp_path / "escape.yaml").exists()


# --------------------------------------------------------------------------- no write through a link


def test_import_does_not_write_through_a_link_even_with_force(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": False, "uk-care": False})
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me\n")
    (tmp_path / "desired" / "ocp-qa.yaml").symlink_to(target)
    result = run(config, "import", "--force")
    assert result.exit_code == 1
    assert "ocp-qa.yaml is a symbolic link; numsync import does not write through links" in result.output
    assert target.read_text() == "keep me\n"
    assert not (tmp_path / "desired" / "uk-care.yaml").exists()  # refused before the first write


def test_write_desired_refuses_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "ocp-qa.yaml").symlink_to(tmp_path / "nowhere.yaml")
    with pytest.raises(UnsafePathError):
        write_desired(tmp_path, render_desired([], ["ocp-qa"]))
    assert not (tmp_path / "nowhere.yaml").exists()


def test_write_no_follow_refuses_a_link_and_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(UnsafePathError, match="does not write through links"):
        write_no_follow(tmp_path / "link", b"new")
    (tmp_path / "file").write_text("old and longer")
    write_no_follow(tmp_path / "file", b"new")
    assert (tmp_path / "target").read_text() == "keep" and (tmp_path / "file").read_text() == "new"


@pytest.mark.parametrize("check", [False, True])
def test_fmt_refuses_a_link_and_leaves_its_target_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "desired").mkdir()
    target = tmp_path / "real.yaml"
    target.write_text(UNFORMATTED)
    (tmp_path / "desired" / "a.yaml").symlink_to(target)
    (tmp_path / "desired" / "b.yaml").write_text(textwrap.dedent(UNFORMATTED).replace("ocp-qa", "uk-care"))
    result = CliRunner().invoke(main, ["fmt", *(["--check"] if check else []), "desired"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "desired/a.yaml:1:1: this file is a symbolic link (to" in result.output
    assert "numsync fmt does not write through links" in result.output
    assert target.read_text() == UNFORMATTED
    assert ((tmp_path / "desired" / "b.yaml").read_text() == UNFORMATTED.replace("ocp-qa", "uk-care")) is check


def test_a_desired_folder_linking_out_of_the_repository_is_refused_at_its_line(repo: Path, tmp_path: Path) -> None:
    (repo / "desired").rmdir()
    (repo / "desired").symlink_to(tmp_path / "outside")
    with pytest.raises(ConfigError) as info:
        load_config(repo / "numsync.yaml")
    [problem] = info.value.problems
    value_column = (repo / "numsync.yaml").read_text().index("desired: desired") + len("desired: ") + 1
    assert (problem.check, problem.location.line, problem.location.column) == ("config-outside", 1, value_column)
    assert f"desired: {repo.resolve() / 'desired'} is a symbolic link to {(tmp_path / 'outside').resolve()}" in str(
        problem
    )


@pytest.mark.parametrize(
    ("target", "said"),
    [("shared", "move the folder in, or link each file instead"), ("gone", "which is not there")],
    ids=["to-a-folder", "broken"],
)
def test_a_linked_subfolder_of_desired_is_a_located_error_not_silently_skipped(
    repo: Path, target: str, said: str
) -> None:
    """The walk does not enter a linked folder: its files' numbers would have counted as unlisted. A broken link not
    named like a desired file may have been a folder: the same error."""
    (repo / "desired" / "b.yaml").write_text(GOOD.replace("+12015550123", "+12015550124").replace("ocp-qa", "ocp-b"))
    (repo / "shared").mkdir()
    (repo / "shared" / "qa.yaml").write_text(GOOD)
    (repo / "desired" / "teams").symlink_to(repo / target, target_is_directory=True)
    with pytest.raises(DesiredError) as info:
        load_desired(repo / "desired", display_root=repo, repository=repo)
    [problem] = info.value.problems
    assert (problem.check, str(problem.location)) == ("path-linked-folder", "desired/teams:1:1")
    assert said in problem.message
