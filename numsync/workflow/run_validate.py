"""``numsync validate`` as a library call: every problem of numsync.yaml and the desired files, offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from numsync.config import load_config
from numsync.core.checks import check_desired
from numsync.core.yamlsrc import Problem
from numsync.errors import ConfigError, DesiredError
from numsync.reports.problems import is_failure, ordered
from numsync.workflow.pipeline import load_environment_desired


@dataclass(frozen=True, slots=True)
class ValidateRequest:
    """``config_path``: numsync.yaml; ``env_name``: one environment (None: every one); ``cache``: use the desired-file cache."""

    config_path: Path
    env_name: str | None = None
    cache: bool = True


@dataclass(frozen=True, slots=True)
class ValidateOutcome:
    """The problems found, ordered, and ``scope``: what was checked, for the count line."""

    problems: list[Problem]
    scope: str

    @property
    def exit_code(self) -> int:
        """1 when any problem is an error; warnings alone pass."""
        return 1 if is_failure(self.problems) else 0


def run_validate(request: ValidateRequest) -> ValidateOutcome:
    """Collect every problem instead of stopping at the first: a broken environment does not hide the others."""
    problems: list[Problem] = []
    numbers = 0
    names: list[str] = []
    try:
        config = load_config(request.config_path, cache=request.cache)
        names = [request.env_name] if request.env_name else list(config.environments)
        problems += config.warnings
    except ConfigError as exc:
        problems += exc.problems
    for name in names:
        try:
            env = config.environment(name)
        except ConfigError as exc:
            problems += exc.problems
            continue
        problems += env.unresolved  # warnings: validate needs no endpoint
        try:
            state = load_environment_desired(env)
        except DesiredError as exc:
            problems += exc.problems
            state = exc.state
        if state is not None:
            numbers += len(state.records)
            problems += check_desired(state, env.groups)
    return ValidateOutcome(ordered(problems), f"{numbers} number(s) in {len(names)} environment(s)")
