"""The rules that decide whether plan and apply go on, as pure functions.

Each takes plain values (flags, the process environment as a mapping, the freeze in force)
and returns a decision or raises the refusal the CLI shows; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from numsync.core.diff import Diff
from numsync.core.safety import Violation
from numsync.errors import ConfirmationRefusal, ConflictRefusal, FreezeRefusal, SafetyRefusal, TamperedPlanError
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


def safety_refusal(violations: Sequence[Violation], environ: Mapping[str, str]) -> SafetyRefusal | None:
    """The refusal for ``violations`` (None when there are none); in GitLab CI it says how to lift them there."""
    if not violations:
        return None
    hint = override_hint(violations) if environ.get("GITLAB_CI") else None
    return SafetyRefusal(f"{len(violations)} safety check(s) failed (above); nothing was written", violations, hint)


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
