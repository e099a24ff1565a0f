"""The rules that decide whether plan and apply go on, as pure functions.

Each takes plain values (flags, the process environment as a mapping, the freeze in force)
and returns a decision or raises the refusal the CLI shows; nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from numsync.core.diff import Diff
from numsync.core.safety import LiftContext, Overrides, RecordedOverride, Violation
from numsync.errors import (
    ConfirmationRefusal,
    ConflictRefusal,
    FreezeRefusal,
    InputError,
    OverrideNotRecorded,
    SafetyRefusal,
    TamperedPlanError,
)
from numsync.gitlab import override_hint
from numsync.reports.plandiff import render_text
from numsync.workflow.apply import ApplyResult
from numsync.workflow.plan import Plan
from numsync.workflow.plandiff import compare_plans, edited_parts

#: Where apply journals in CI when --journal is not given, so the pipeline can keep it as an artifact.
CI_JOURNAL = Path("numsync-journal.jsonl")

NO_TERMINAL = (
    "refusing to apply without confirmation: no terminal to ask on; pass --auto-approve (or apply a saved plan)"
)


class ProgressStyle(enum.Enum):
    """How long stages are shown on stderr."""

    LIVE = "live"  # one line redrawn as the stage goes on (a terminal)
    PLAIN = "plain"  # one plain line when a stage ends (CI, NO_COLOR, stderr not a terminal)
    OFF = "off"  # NUMSYNC_PROGRESS=never


#: A stage smaller than these takes well under a second and is not shown (``NUMSYNC_PROGRESS=always`` shows every
#: stage): about 6,000 exported numbers, 5,000 desired numbers, 10 upload files.
PROGRESS_MIN_BYTES = 1_000_000
PROGRESS_MIN_NUMBERS = 5_000
PROGRESS_MIN_FILES = 10


#: The values NUMSYNC_PROGRESS takes (unset: progress by size, on a terminal only).
PROGRESS_SETTINGS = ("always", "never")


def progress_setting_warning(environ: Mapping[str, str]) -> str | None:
    """What is wrong with ``NUMSYNC_PROGRESS`` (None: unset, empty or a known value); an unknown value is ignored."""
    value = environ.get("NUMSYNC_PROGRESS", "")
    if not value or value.lower() in PROGRESS_SETTINGS:
        return None
    return (
        f"NUMSYNC_PROGRESS={value!r} is not one of {', '.join(PROGRESS_SETTINGS)}; it is ignored "
        "(progress is shown by size). Set it to always or never, or unset it."
    )


def progress_style(environ: Mapping[str, str], stderr_is_terminal: bool) -> ProgressStyle:
    """Redrawn progress only on a terminal outside CI without NO_COLOR (https://no-color.org); else plain lines."""
    if environ.get("NUMSYNC_PROGRESS", "").lower() == "never":
        return ProgressStyle.OFF
    # no-color.org: NO_COLOR counts when present and not empty, so an exported-but-empty one is as if unset
    if stderr_is_terminal and not environ.get("CI") and not environ.get("NO_COLOR"):
        return ProgressStyle.LIVE
    return ProgressStyle.PLAIN


def worth_showing(
    environ: Mapping[str, str], *, size: int | None = None, numbers: int | None = None, files: int | None = None
) -> bool:
    """Whether a stage of this size is shown: a large tenant's, or any with ``NUMSYNC_PROGRESS=always``."""
    if environ.get("NUMSYNC_PROGRESS", "").lower() == "always":
        return True
    return (
        (size is not None and size >= PROGRESS_MIN_BYTES)
        or (numbers is not None and numbers >= PROGRESS_MIN_NUMBERS)
        or (files is not None and files >= PROGRESS_MIN_FILES)
    )


def journal_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The journal to append to: ``explicit``, else :data:`CI_JOURNAL` when ``CI`` is set, else none."""
    if explicit is None and environ.get("CI"):
        return CI_JOURNAL
    return explicit


def check_untampered(saved: Plan, fresh: Plan, source: Path, saved_data: Mapping[str, Any] | None = None) -> None:
    """Raise TamperedPlanError unless ``saved`` equals, in every reviewed part, planning its recorded state again.

    The freshness check compares fingerprints only; this catches a plan file edited by hand
    while its fingerprints were left alone — its operations, or what a reviewer and the safety
    checks read (changes, summary, counts): removing a change must not hide its rows.
    """
    parts = edited_parts(saved_data if saved_data is not None else saved, fresh)
    if parts:
        # the summary is counted from the phases: edited rows change both
        what = "operations" if set(parts) <= {"phases", "summary"} and "phases" in parts else ", ".join(parts)
        verb = "does" if len(parts) == 1 and what in ("summary", "environment", "limits") else "do"
        difference = compare_plans(saved, fresh)
        shown = (
            render_text(difference).rstrip("\n")
            if not difference.empty
            else f"its {', '.join(parts)} (as written in the file) differ from what its own rows and recorded state give"
        )
        raise TamperedPlanError(
            f"{source}: its {what} {verb} not follow from the desired and live state it records (was the file edited?). "
            f"Run plan again. Nothing was written. Between the plan file (old) and planning its recorded state again "
            f"(new):\n{shown}"
        )


def refuse_conflicts(plan: Plan) -> None:
    """Raise ConflictRefusal when ``plan`` has conflicts: numsync resolves none of them itself."""
    if plan.conflicts:
        raise ConflictRefusal(
            "the plan has conflicts (listed above); resolve them before applying. Nothing was written."
        )


def safety_refusal(
    violations: Sequence[Violation], environ: Mapping[str, str], context: LiftContext = LiftContext.PLAN
) -> SafetyRefusal | None:
    """The refusal for ``violations`` (None when there are none), each saying how to lift it in ``context``;
    in GitLab CI the one hint after them says how to lift them there (a label, not a flag)."""
    if not violations:
        return None
    in_gitlab = bool(environ.get("GITLAB_CI"))
    hint = override_hint(violations) if in_gitlab else None
    sentences = [v.message if in_gitlab else v.worded(context) for v in violations]
    return SafetyRefusal(
        f"{len(violations)} safety check(s) failed (above); nothing was written", violations, hint, sentences
    )


def freeze_decision(active: str | None, reason: str | None) -> bool:
    """Whether a change freeze is being overridden (True) or none is in force (False).

    Raises FreezeRefusal when ``active`` (the freeze in force) has no reason to override it:
    a blank ``--override-freeze`` does not count, since the journal must say why.
    """
    if not active:
        return False
    if (reason or "").strip():
        return True
    blank = "--override-freeze was given a blank reason, which does not count. " if reason is not None else ""
    raise FreezeRefusal(
        f'apply refused: a change freeze is in force: {active}. Nothing was written. {blank}To apply anyway, pass --override-freeze "<why>" (recorded in the journal)'
    )


def freeze_began(phase: int, active: str) -> str:
    """Why apply stops before ``phase``: a change freeze began during the run (no --override-freeze was given)."""
    return (
        f"stopped before phase {phase}: a change freeze began during the apply: {active}. Nothing more was sent; "
        'run plan after the window, or apply with --override-freeze "<why>"'
    )


def confirmation_needed(*, saved_plan: bool, auto_approve: bool) -> bool:
    """Whether a person must confirm: a fresh plan yes, unless --auto-approve; a saved plan was reviewed already."""
    return not saved_plan and not auto_approve


def confirm(question: str, *, interactive: bool, ask: Callable[[str], bool]) -> None:
    """Ask ``question``; raise ConfirmationRefusal without a terminal to ask on, or when the answer is no."""
    if not interactive:
        raise ConfirmationRefusal(NO_TERMINAL)
    if not ask(question):
        raise ConfirmationRefusal("apply cancelled at the confirmation prompt. Nothing was written.")


def plan_exit_code(plan: Plan, *, detailed: bool) -> int:
    """0, or 2 when ``detailed`` (``--detailed-exitcode``) and the plan has changes."""
    return 2 if detailed and not plan.empty else 0


def apply_exit_code(result: ApplyResult | None, remaining: Diff | None) -> int:
    """0 when every row applied and live then matched desired (or there was nothing to do), else 1."""
    if result is None:
        return 0
    return 0 if result.ok and remaining is not None and remaining.empty else 1


def freeze_notice(freeze: str) -> str:
    """What every plan format says while a change freeze is in force."""
    return f'a change freeze is in force ({freeze}); apply will refuse without --override-freeze "<why>".'


#: How long a command that only reads (plan, drift, import) is taken to need a token for: a login, an export
#: and a plan, with room for a few retries. A rough figure: it only decides whether to warn.
READ_SECONDS = 60.0
#: What apply is taken to need per file on top of :data:`READ_SECONDS` (an upload and its answer; a settle when
#: an outcome is unknown takes more). Also rough, also only for the warning.
SECONDS_PER_FILE = 5.0


def needed_seconds(plan: Plan | None = None) -> float:
    """How long the work is likely to need a token: :data:`READ_SECONDS`, plus per file of ``plan`` to apply."""
    files = sum(len(phase.batches) for phase in plan.phases) if plan is not None else 0
    return READ_SECONDS + SECONDS_PER_FILE * files


def token_warning(lifetime: float | None, needed: float, variable: str, default_lifetime: float) -> str | None:
    """The warning for a pre-issued token (``variable``) that will likely expire before the work is done, or None.

    ``lifetime``: seconds it has left (from its JWT ``exp``), None when unknown; then it is taken to have
    ``default_lifetime`` left (OCP's default access-token lifetime), which is said.
    """
    advice = (
        "numsync cannot renew a pre-issued token; get a fresh one just before the run, or give a username, "
        "password and TOTP secret instead so numsync can log in and renew"
    )
    if lifetime is None:
        if needed <= default_lifetime:
            return None
        return (
            f"{variable} is not a token numsync can read the expiry of, so its lifetime is unknown; OCP's access "
            f"tokens last {default_lifetime:.0f} s by default, and this run may take about {needed:.0f} s: {advice}"
        )
    if lifetime <= 0:
        return f"{variable} expired {-lifetime:.0f} s ago: OCP will refuse it; {advice}"
    if lifetime < needed:
        return (
            f"{variable} expires in {lifetime:.0f} s, likely before this run is done (about {needed:.0f} s): {advice}"
        )
    return None


#: Where the login of whoever makes a plan is read, first found wins (GitLab's user who ran the pipeline, then the shell's).
WHO_VARIABLES = ("GITLAB_USER_LOGIN", "USER", "LOGNAME")


def who(environ: Mapping[str, str]) -> str:
    """The login recorded with an override: the first of :data:`WHO_VARIABLES` that is set."""
    return next((environ[v].strip() for v in WHO_VARIABLES if environ.get(v, "").strip()), "unknown")


def record_overrides(
    overrides: Overrides, reason: str | None, environ: Mapping[str, str], *, saving: bool
) -> list[RecordedOverride]:
    """The record a plan keeps of the checks ``overrides`` lift: each flag, who (``environ``) and why (``reason``).

    A saved plan carries its overrides to apply, so it must say why: with ``saving`` and no
    (non-blank) reason, InputError. Without overrides, nothing is recorded (a reason alone is ignored).
    """
    flags = overrides.flags()
    if not flags:
        return []
    why = (reason or "").strip()
    if not why and saving:
        raise InputError(
            f"{' '.join(flags)} would be recorded in the saved plan with who lifted it and why: "
            f'give the reason with --reason "<why>" (or NUMSYNC_OVERRIDE_REASON)'
        )
    return [RecordedOverride(flag, who(environ), why or "(no reason given)") for flag in flags]


def saved_plan_overrides(recorded: Overrides, given: Overrides) -> Overrides:
    """The overrides an apply of a saved plan runs with: those the plan records. A flag given to apply that the
    plan does not record raises OverrideNotRecorded: overrides are chosen, with a reason, when the plan is made."""
    extra = [flag for flag in given.flags() if flag not in recorded.flags()]
    if extra:
        flags = " ".join(extra)
        raise OverrideNotRecorded(
            f"{flags}: the saved plan does not record this override. Overrides travel inside the plan, so the record "
            f'shows who lifted which check and why: make the plan with numsync plan {flags} --reason "<why>" --out FILE '
            "and apply that. Nothing was written"
        )
    return recorded
