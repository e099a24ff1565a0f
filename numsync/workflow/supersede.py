"""Applies in merge order: a CI apply whose commit is no longer the default branch's tip writes nothing.

GitLab runs the jobs of a resource group one at a time, but by default (``process_mode:
unordered``) in any order: when two merges land close together, the older pipeline's apply
may run after the newer one and revert it on the tenant. So in CI, before anything is sent,
apply asks the remote for the tip of the default branch (``git ls-remote origin
refs/heads/$CI_DEFAULT_BRANCH``); when that is another commit, the newer pipeline applies and
this one stops, successfully, having written nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from numsync.errors import InputError

#: Runs a git command in a folder and returns (exit status, stdout, stderr).
GitRunner = Callable[[list[str], Path], tuple[int, str, str]]


class SupersedeCheckError(InputError):
    """The default branch's tip could not be read, so apply cannot tell whether it is superseded."""


@dataclass(frozen=True, slots=True)
class Supersession:
    """The outcome of the check: ``tip`` is the remote default branch's commit; ``superseded`` when it is not ours."""

    commit: str
    tip: str
    branch: str

    @property
    def superseded(self) -> bool:
        return self.tip != self.commit

    def message(self) -> str:
        return (
            f"superseded by {self.tip[:12]}: that pipeline applies. This one ({self.commit[:12]}) is no longer the tip "
            f"of {self.branch}, so it wrote nothing (pass --ignore-superseded for a reviewed manual run)."
        )


def _git(args: list[str], folder: Path) -> tuple[int, str, str]:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def check_superseded(
    environ: Mapping[str, str], folder: Path, *, remote: str = "origin", git: GitRunner = _git
) -> Supersession | None:
    """In CI, whether this pipeline's commit is still the remote default branch's tip; None outside CI.

    CI means ``CI`` is set and GitLab named the commit and the default branch (``CI_COMMIT_SHA``,
    ``CI_DEFAULT_BRANCH``). Raises SupersedeCheckError when the tip cannot be read.
    """
    commit, branch = environ.get("CI_COMMIT_SHA", ""), environ.get("CI_DEFAULT_BRANCH", "")
    if not environ.get("CI") or not commit or not branch:
        return None
    status, out, err = git(["ls-remote", "--exit-code", remote, f"refs/heads/{branch}"], folder)
    fields = out.split()
    if status != 0 or not fields:
        raise SupersedeCheckError(
            f"cannot read the tip of {branch} from {remote} to check that this pipeline is still the newest "
            f"(git ls-remote: {err.strip() or f'exit {status}'}). Pass --ignore-superseded for a reviewed manual run"
        )
    return Supersession(commit=commit, tip=fields[0], branch=branch)
