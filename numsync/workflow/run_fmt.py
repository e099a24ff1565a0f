"""``numsync fmt`` as a library call: every desired file in canonical form, or (``check``) the list of those that are not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from numsync.config import DEFAULT_CONFIG, load_config
from numsync.core import fmt as formatter
from numsync.errors import MissingFolderError
from numsync.workflow.events import FmtObserver


@dataclass(frozen=True, slots=True)
class FmtRequest:
    """``paths``: files or folders (empty: the desired folder of each environment of ``config_path``,
    or of ``env_name`` alone); ``check``: change nothing, only tell."""

    paths: Sequence[Path] = ()
    check: bool = False
    config_path: Path = Path(DEFAULT_CONFIG)
    env_name: str | None = None


@dataclass(frozen=True, slots=True)
class FmtOutcome:
    """How many files there were, how many changed (or would), and how many had problems and were left alone."""

    files: int
    changed: int
    refused: int
    check: bool

    @property
    def unchanged(self) -> int:
        return self.files - self.changed - self.refused

    @property
    def exit_code(self) -> int:
        """1 when a file has problems, or with ``check`` when one would change; else 0."""
        return 1 if self.refused or (self.check and self.changed) else 0


def run_fmt(request: FmtRequest, observer: FmtObserver | None = None) -> FmtOutcome:
    """Format (or check) each file; a file with problems is never touched."""
    observer = observer or FmtObserver()
    files = formatter.collect(request.paths or _desired_folders(request))
    changed = refused = 0
    for file in files:
        result = formatter.format_file(file)
        if result.problems:
            refused += 1
            observer.refused(result)
        elif result.changed:
            changed += 1
            if not request.check:
                formatter.write(result)
            observer.reformatted(result, written=not request.check)
    return FmtOutcome(len(files), changed, refused, request.check)


def _desired_folders(request: FmtRequest) -> tuple[Path, ...]:
    config = load_config(request.config_path)
    names = [request.env_name] if request.env_name else list(config.environments)
    folders = tuple(dict.fromkeys(config.environment(name).desired for name in names))
    missing = [p for p in folders if not p.is_dir()]
    if missing:
        raise MissingFolderError(f"desired folder {missing[0]} does not exist")
    return folders
