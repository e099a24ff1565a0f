"""Every error numsync raises, in one hierarchy.

::

    NumsyncError                  base: ``wrote`` says whether anything may have reached OCP
    ├── InputError                bad input; nothing was sent (fix the input, run again)
    │   ├── ConfigError           numsync.yaml, with located problems
    │   ├── DesiredError          desired files, with located problems
    │   ├── YamlSyntaxError       a YAML text that does not parse
    │   ├── FreezeError           a freeze window that cannot be honoured
    │   ├── FormatError           a desired file ``fmt`` will not rewrite
    │   ├── AdoptionError         a desired file ``import --unmanaged`` cannot add to
    │   ├── OverwriteRefused      a file that is only replaced with ``--force``
    │   ├── UnsafePathError       a file name or link numsync will not write through
    │   ├── NumberFormatError     a phone number that is not E.164
    │   ├── PlanningError         changes that cannot become operations
    │   ├── PlanFileError         a file that is not a numsync plan
    │   ├── ImportRefusal         import of an unmanaged group, or over existing files
│   ├── ScopeError            a --group or --number of a partial run this environment does not know
│   ├── ResultsFileError      a file given to apply --retry-failed that is not a results file
    │   └── MissingFolderError    a desired folder numsync.yaml names does not exist
    ├── RemoteError               a service failed or refused
    │   ├── ApiError              OCP answered with an error, or not at all
    │   ├── AuthError             OCP issued no token
    │   ├── ExportFormatError     the live export is not the expected CSV
    │   ├── UnsettledError        live kept changing: no two exports agreed within the settle timeout
    │   ├── AnotherWriterError    live moved between phases in a way apply's own rows do not explain
    │   └── GitLabError           GitLab's API failed or refused
    ├── StalePlanError            a saved plan no longer matches desired or live
    │   └── TamperedPlanError     a saved plan whose operations do not follow from what it records
    ├── SafetyRefusal             a safety check refused the plan
    ├── ApplyRefusal              apply will not start (nothing was written)
    │   ├── ConflictRefusal       the plan has conflicts only a person can resolve
    │   ├── FreezeRefusal         a change freeze is in force and no reason overrides it
    │   ├── ConfirmationRefusal   nobody confirmed the apply
    │   ├── OverrideNotRecorded   an override flag the saved plan does not record (who, why)
    │   ├── NoReviewedPlan        no plan was reviewed for the merged commit (no MR, pipeline, job or artifact)
    │   └── ReviewRefusal         the reviewed plan is stale and a plan made now differs from it
    ├── RehearsalFailed           the rehearsal on a local emulator did not converge
    ├── GitHistoryError           git cannot provide the desired files at a commit
    ├── ReadOnlyViolation         a read-only session was asked to write
    └── EmulatorStartError        the local emulator did not start

Input errors also derive from :class:`ValueError` and the others from
:class:`RuntimeError`, as before the hierarchy existed. The CLI catches
:class:`NumsyncError` alone and prints :meth:`NumsyncError.explain` after
:attr:`NumsyncError.details`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numsync.core.yamlsrc import Problem

NOTHING_WRITTEN = "Nothing was written."


class NumsyncError(Exception):
    """Base of every numsync error. ``wrote``: whether anything may have been written to OCP."""

    #: Whether anything may have been written to OCP before the error (set by whoever knows).
    wrote: bool = False
    #: The exit code the CLI ends with (3: waiting for a re-approval, see ReviewRefusal).
    exit_code: int = 1

    @property
    def details(self) -> list[str]:
        """Lines to show before the summary (located problems, one per line)."""
        return []

    #: What had been sent when the error struck, set with ``wrote`` by whoever knows (apply).
    progress: str = "Rows may have reached OCP before this: run plan to see what is left."

    def explain(self) -> str:
        """One paragraph for the user: what went wrong, and what was written — only what is true."""
        if self.wrote:
            return f"{str(self).rstrip('.')}. {self.progress}"
        return self.explain_unwritten()

    def explain_unwritten(self) -> str:
        """:meth:`explain` when nothing was written (the usual case: refusals happen before any write)."""
        return f"{str(self).rstrip('.')}. {NOTHING_WRITTEN}"


class InputError(NumsyncError, ValueError):
    """The input is wrong; nothing was sent. The message says what and where."""


class _Located(InputError):
    """An input error carrying every located problem found."""

    #: What the problems are in, for the summary line.
    subject = "the input"

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)

    @property
    def details(self) -> list[str]:
        return [str(p) for p in self.problems]

    def explain_unwritten(self) -> str:
        return f"{len(self.problems)} problem(s) in {self.subject}; nothing was sent to OCP"


class ConfigError(_Located):
    """numsync.yaml is missing or wrong; ``problems`` say where."""

    subject = "numsync.yaml"


class DesiredError(_Located):
    """The desired files have problems; ``problems`` lists them all, sorted by file and line.

    ``state``: what did load (the numbers without problems of their own), for checks that
    can still run on it (``numsync validate``); None when nothing could be read.
    """

    subject = "desired files"

    def __init__(self, problems: Sequence[Problem], state: Any = None) -> None:
        super().__init__(problems)
        self.args = (f"{len(self.problems)} problem(s) in desired files",)
        self.state = state


class FormatError(_Located):
    """The file was not formatted; ``problems`` say why."""

    subject = "the file"


class AdoptionError(InputError):
    """``import --unmanaged`` cannot add the numbers to a desired file without changing what else it says."""


class OverwriteRefused(InputError):
    """A file exists that numsync writes only with ``--force``."""


class UnsafePathError(InputError):
    """A file numsync refuses to write: it is a symbolic link, or its name (a GROUP_ID) is no plain file name."""


class YamlSyntaxError(InputError):
    """The text is not YAML; ``problem`` says where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem

    @property
    def details(self) -> list[str]:
        return [str(self.problem)]


class FreezeError(InputError):
    """A freeze section that cannot be honoured.

    ``problems`` is a list of ``(path, message)``; ``path`` leads from the freeze mapping to the
    offending value, e.g. ``("dates", 0, "from")``, so the config loader can point at its line.
    """

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


class NumberFormatError(InputError):
    """A phone number that cannot be read as E.164."""


class PlanningError(InputError):
    """The changes cannot be turned into operations; ``numbers`` maps NUMBER → reason."""

    def __init__(self, numbers: dict[str, str]) -> None:
        lines = [f"{n}: {why}" for n, why in sorted(numbers.items())]
        super().__init__("cannot plan:\n" + "\n".join(lines))
        self.numbers = numbers

    def explain_unwritten(self) -> str:
        return f"{self}\n{NOTHING_WRITTEN}"


class PlanFileError(InputError):
    """A file given as a saved plan is not one (or is of another format version)."""

    def explain_unwritten(self) -> str:
        return str(self)


class ImportRefusal(InputError):
    """``import`` was asked for a group the environment does not manage, or to overwrite files without --force."""

    def explain_unwritten(self) -> str:
        return str(self)


class ScopeError(InputError):
    """A partial run names a group the environment does not manage, or a number no desired file or managed group has."""

    def explain_unwritten(self) -> str:
        return f"{str(self).rstrip('.')}. {NOTHING_WRITTEN}"


class ResultsFileError(InputError):
    """A file given to ``apply --retry-failed`` is not a results file ``apply --results`` wrote, or names an unknown
    path type; or a ``--results``/``--junit`` path whose folder cannot be written."""

    def explain_unwritten(self) -> str:
        return f"{str(self).rstrip('.')}. {NOTHING_WRITTEN}"


class MissingFolderError(InputError):
    """A folder that must exist (an environment's desired folder) does not."""

    def explain_unwritten(self) -> str:
        return str(self)


class RemoteError(NumsyncError, RuntimeError):
    """A remote service failed or refused."""


class ApiError(RemoteError):
    """OCP answered with an error status, or not at all. ``status`` is None for transport errors.

    ``sent`` tells whether the request body may have reached the server (matters for writes:
    an ambiguous write is never retried blindly). ``every_file``: OCP refused for a reason every
    later file would meet too (no licences, a role that cannot write, a token a fresh login did not
    cure): apply stops sending.
    """

    def __init__(self, message: str, *, status: int | None = None, sent: bool = True, every_file: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.sent = sent
        self.every_file = every_file

    def explain_unwritten(self) -> str:
        return str(self)


class AuthError(RemoteError):
    """OCP refused to issue a token, or no credentials were given. Never contains a secret."""

    def explain_unwritten(self) -> str:
        return f"{str(self).rstrip('.')}. {NOTHING_WRITTEN}"


class ExportFormatError(RemoteError, ValueError):
    """The export is not the CSV numsync expects. The message says where and shows the start safely."""

    def explain_unwritten(self) -> str:
        return f"the live export cannot be read: {self}. Nothing was planned or written."


class UnsettledError(RemoteError):
    """Live kept changing after an unknown outcome: no two exports agreed within ``settle.timeout``."""


class AnotherWriterError(RemoteError):
    """Between two phases, live changed where apply's own rows do not explain it: a second writer."""


class GitLabError(RemoteError):
    """GitLab's API answered with an error, or could not be reached."""

    def explain_unwritten(self) -> str:
        return str(self)


class StalePlanError(NumsyncError, RuntimeError):
    """A saved plan no longer matches live or desired state; ``difference``: what a plan made now would change instead."""

    def __init__(self, message: str, difference: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.difference = list(difference)

    @property
    def details(self) -> list[str]:
        if not self.difference:
            return []
        return ["Between the reviewed plan (old) and a plan made now (new):", *self.difference]


class TamperedPlanError(StalePlanError):
    """A saved plan's operations are not the ones its recorded desired and live state give (edited by hand?)."""

    def explain_unwritten(self) -> str:
        return str(self)


class SafetyRefusal(NumsyncError, RuntimeError):
    """A safety check refused the plan; ``violations`` say which and the flag that lifts each.

    ``hint``: how to lift them where the run happens (e.g. in a GitLab pipeline), shown after them.
    """

    def __init__(
        self,
        message: str,
        violations: Sequence[object] = (),
        hint: str | None = None,
        sentences: Sequence[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.violations = list(violations)
        self.hint = hint
        # each violation as worded where the run happens (how to lift it differs); default: str(v)
        self.sentences = list(sentences) if sentences is not None else [str(v) for v in self.violations]

    @property
    def details(self) -> list[str]:
        return [f"Refused: {s}" for s in self.sentences] + ([self.hint] if self.hint else [])

    def explain_unwritten(self) -> str:
        return str(self)


class ApplyRefusal(NumsyncError, RuntimeError):
    """Apply refused to start; the message says why and how to go on. Nothing was written."""

    def explain_unwritten(self) -> str:
        return str(self)


class ConflictRefusal(ApplyRefusal):
    """The plan has conflicts (numsync resolves none of them)."""


class FreezeRefusal(ApplyRefusal):
    """A change freeze is in force and no (non-blank) reason overrides it."""


class ConfirmationRefusal(ApplyRefusal):
    """Apply needs a confirmation that nobody gave (no terminal to ask on, or the answer was no)."""


class OverrideNotRecorded(ApplyRefusal):
    """An override was asked for that the plan does not record: overrides are chosen when the plan is made."""


#: The exit code of an apply that refused a stale reviewed plan and posted the difference for re-approval.
REAPPROVAL_EXIT_CODE = 3


class NoReviewedPlan(ApplyRefusal):
    """No reviewed plan could be found for the merged commit; the message says which step found nothing."""


class ReviewRefusal(ApplyRefusal):
    """The plan reviewed in the merge request is stale, and a plan made now differs from it.

    ``difference``: what differs (old: reviewed, new: now); ``posted``: where it was posted for re-approval, if it was.
    """

    def __init__(self, message: str, difference: Sequence[str] = (), posted: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.difference = list(difference)
        self.posted = list(posted)
        if self.posted:  # posted for re-approval: a state of its own, that a pipeline can tell from a failure
            self.exit_code = REAPPROVAL_EXIT_CODE

    @property
    def details(self) -> list[str]:
        return ["Between the reviewed plan (old) and a plan made now (new):", *self.difference]


class RehearsalFailed(NumsyncError, RuntimeError):
    """The plan did not converge on the local rehearsal emulator; nothing was written to OCP."""

    def explain_unwritten(self) -> str:
        return str(self)


class GitHistoryError(NumsyncError, RuntimeError):
    """git cannot provide the desired files as they were at a commit (no repository, unknown commit)."""

    def explain_unwritten(self) -> str:
        return str(self)


class ReadOnlyViolation(NumsyncError, RuntimeError):
    """A read-only session was asked to send something other than an export or a token request."""


class EmulatorStartError(NumsyncError, RuntimeError):
    """The emulator process died or did not listen in time; the message holds its stderr."""


__all__ = [
    "ApiError",
    "ApplyRefusal",
    "AuthError",
    "ConfigError",
    "ConfirmationRefusal",
    "ConflictRefusal",
    "DesiredError",
    "EmulatorStartError",
    "ExportFormatError",
    "FormatError",
    "FreezeError",
    "FreezeRefusal",
    "GitHistoryError",
    "GitLabError",
    "ImportRefusal",
    "InputError",
    "MissingFolderError",
    "NumberFormatError",
    "NumsyncError",
    "PlanFileError",
    "PlanningError",
    "ReadOnlyViolation",
    "RehearsalFailed",
    "RemoteError",
    "SafetyRefusal",
    "StalePlanError",
    "TamperedPlanError",
    "YamlSyntaxError",
]
