"""How numsync names a file and an undecodable one in its messages, the same way everywhere."""

from __future__ import annotations

from pathlib import Path

from numsync.core.yamlsrc import Location, Problem


def shown_path(path: Path, root: Path | None = None) -> str:
    """``path`` as messages show it: relative to ``root`` (default: the current directory) when inside it, else as given.

    The folder is resolved, not the file: a symbolic link is shown where it stands, not as its target.
    """
    try:
        return str((path.parent.resolve() / path.name).relative_to((root or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def not_utf8(exc: UnicodeDecodeError) -> str:
    """What is wrong with bytes that do not decode: the first bad byte, counted from 0."""
    return f"not UTF-8 text (byte {exc.start})"


def encoding_problem(shown: str, exc: UnicodeDecodeError, code: str = "encoding") -> Problem:
    """The one problem of a file that is not UTF-8, at its start, with the fix."""
    return Problem(Location(shown, 1, 1), f"{not_utf8(exc)}; save the file as UTF-8", code)
