"""Renderings of located problems (:class:`numsync.core.yamlsrc.Problem`): text, JSON, GitLab Code Quality.

- text: one ``path:line:column: message`` line per problem (``warning:`` before the message
  of a warning), then a count line;
- JSON: a list of ``{path, line, column, message, check, severity}``;
- Code Quality: the subset of the Code Climate issue format GitLab reads
  (``description, check_name, fingerprint, severity, location.path, location.lines.begin``).

A Code Quality fingerprint identifies a problem across commits, so it leaves out where the
problem stands: it hashes the path, the check and the message with any line numbers taken out,
plus an occurrence index that tells identical problems in one file apart. Moving lines keeps it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from numsync.core.yamlsrc import Problem
from numsync.reports.registry import Format, Registry

#: GitLab's severity for each numsync severity (GitLab: info, minor, major, critical, blocker).
CODEQUALITY_SEVERITY = {"error": "major", "warning": "minor"}

_AT = re.compile(r"([^\s:'\"()]+):\d+:\d+")  # a Location inside a message: keep the path only
_LINE = re.compile(r"\b(line) \d+")


def ordered(problems: Iterable[Problem]) -> list[Problem]:
    """Problems sorted by path, line, column and check, each once."""
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.location.path, p.location.line, p.location.column, p.check, p.message))


def counts(problems: Sequence[Problem]) -> tuple[int, int]:
    """(errors, warnings)."""
    warnings = sum(1 for p in problems if p.severity == "warning")
    return len(problems) - warnings, warnings


def is_failure(problems: Sequence[Problem]) -> bool:
    """Whether any problem is an error (warnings alone do not fail)."""
    return counts(problems)[0] > 0


def count_line(problems: Sequence[Problem], scope: str | None = None) -> str:
    """``3 problem(s): 2 error(s), 1 warning(s)``, or ``no problems``; ``OK:`` first when none is an error.

    ``scope`` (e.g. ``120 number(s) in 1 environment(s)``) is added in parentheses.
    """
    errors, warnings = counts(problems)
    line = f"{len(problems)} problem(s): {errors} error(s), {warnings} warning(s)" if problems else "no problems"
    if not errors:
        line = f"OK: {line}"
    return f"{line} ({scope})" if scope else line


def text_line(problem: Problem) -> str:
    """``path:line:column: message``, with ``warning:`` before the message of a warning."""
    if problem.severity == "error":
        return str(problem)
    return f"{problem.location}: {problem.severity}: {problem.message}"


def render_text(problems: Sequence[Problem], scope: str | None = None) -> str:
    """One line per problem, then the count line."""
    return "\n".join([text_line(p) for p in problems] + [count_line(problems, scope)]) + "\n"


def to_json(problems: Sequence[Problem]) -> list[dict[str, object]]:
    """Plain data: ``{path, line, column, message, check, severity}`` per problem."""
    return [
        {
            "path": p.location.path,
            "line": p.location.line,
            "column": p.location.column,
            "message": p.message,
            "check": p.check,
            "severity": p.severity,
        }
        for p in problems
    ]


def render_json(problems: Sequence[Problem]) -> str:
    """:func:`to_json` as JSON text."""
    return json.dumps(to_json(problems), indent=2, ensure_ascii=False) + "\n"


def stable_message(message: str) -> str:
    """``message`` without the line numbers it may quote (``a.yaml:3:3`` → ``a.yaml``, ``line 3`` → ``line``)."""
    return _LINE.sub(r"\1", _AT.sub(r"\1", message))


def fingerprints(problems: Sequence[Problem]) -> list[str]:
    """A fingerprint per problem, in the same order, that does not depend on line numbers.

    Identical problems (same path, check and stable message) are numbered in line order
    and the number is part of the hash, so each still gets its own fingerprint.
    """
    order = sorted(range(len(problems)), key=lambda i: (problems[i].location.line, problems[i].location.column))
    seen: dict[tuple[str, str, str], int] = {}
    result = [""] * len(problems)
    for i in order:
        p = problems[i]
        identity = (p.location.path, p.check, stable_message(p.message))
        occurrence = seen.get(identity, 0)
        seen[identity] = occurrence + 1
        text = "\0".join([*identity, str(occurrence)])
        result[i] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return result


def to_codequality(problems: Sequence[Problem]) -> list[dict[str, object]]:
    """GitLab Code Quality issues (``artifacts:reports:codequality``)."""
    return [
        {
            "type": "issue",
            "description": p.message,
            "check_name": p.check,
            "fingerprint": fingerprint,
            "severity": CODEQUALITY_SEVERITY.get(p.severity, "info"),
            "location": {"path": p.location.path, "lines": {"begin": p.location.line}},
        }
        for p, fingerprint in zip(problems, fingerprints(problems))
    ]


def render_codequality(problems: Sequence[Problem]) -> str:
    """:func:`to_codequality` as JSON text."""
    return json.dumps(to_codequality(problems), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class ProblemReport:
    """What every problems format renders: the ordered problems and, for the count line, what was checked."""

    problems: Sequence[Problem]
    scope: str | None = None


def _text(report: ProblemReport) -> str:
    return render_text(report.problems, report.scope)


def _json(report: ProblemReport) -> str:
    return render_json(report.problems)


def _codequality(report: ProblemReport) -> str:
    return render_codequality(report.problems)


#: The problems report's formats (``numsync validate --format``).
FORMATS: Registry[ProblemReport] = Registry(
    "problems",
    (
        Format("text", "path:line:column lines", _text),
        Format("json", "a list of problems", _json),
        Format("codequality", "GitLab Code Quality JSON", _codequality),
    ),
)
