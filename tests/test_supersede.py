"""Applies in merge order: the superseded check against a real git remote on disk."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from numsync.workflow.supersede import SupersedeCheckError, check_superseded

CONFIG = ["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *CONFIG, "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    origin, work = tmp_path / "origin", tmp_path / "work"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "numsync.yaml").write_text("environments: {}\n")
    git(origin, "add", ".")
    git(origin, "commit", "-qm", "first merge")
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True)
    return work


def ci(commit: str) -> dict[str, str]:
    return {"CI": "true", "CI_COMMIT_SHA": commit, "CI_DEFAULT_BRANCH": "main"}


def test_outside_ci_there_is_no_check(clone: Path) -> None:
    assert check_superseded({}, clone) is None
    assert check_superseded({"CI": "true"}, clone) is None  # not GitLab: no commit or default branch named


def test_the_tip_is_not_superseded(clone: Path) -> None:
    head = git(clone, "rev-parse", "HEAD").strip()
    result = check_superseded(ci(head), clone)
    assert result is not None and not result.superseded


def test_a_newer_merge_supersedes_the_older_pipeline(clone: Path) -> None:
    older = git(clone, "rev-parse", "HEAD").strip()
    origin = clone.parent / "origin"
    (origin / "numsync.yaml").write_text("environments: {prod: {}}\n")
    git(origin, "commit", "-qam", "second merge")
    newer = git(origin, "rev-parse", "HEAD").strip()
    result = check_superseded(ci(older), clone)  # the clone was not fetched: ls-remote asks the remote itself
    assert result is not None and result.superseded and result.tip == newer
    assert result.message().startswith(f"superseded by {newer[:12]}: that pipeline applies")


def test_an_unreadable_remote_is_an_error_not_a_silent_apply(clone: Path) -> None:
    git(clone, "remote", "set-url", "origin", str(clone.parent / "gone"))
    with pytest.raises(SupersedeCheckError) as caught:
        check_superseded(ci("0" * 40), clone)
    assert "cannot read the tip of main" in str(caught.value) and "--ignore-superseded" in str(caught.value)
