"""Where numsync may read and write: inside the repository, never through a symbolic link.

The repository is the git top level above a folder, else the folder itself (for numsync.yaml:
the folder holding it). A file that resolves outside it (a symlink pointing out) is not read,
so ``numsync validate`` in a merge request can never be made to read, say, ``~/.netrc``.
Writes open the file with ``O_NOFOLLOW``, so a link planted where numsync writes fails the
write instead of redirecting it.
"""

from __future__ import annotations

import os
from pathlib import Path

from numsync.errors import UnsafePathError


def repository_root(folder: Path) -> Path:
    """The git top level holding ``folder`` (a folder or file with ``.git`` above it), else ``folder``; resolved."""
    folder = folder.resolve()
    return next((p for p in (folder, *folder.parents) if (p / ".git").exists()), folder)


def escapes(path: Path, *roots: Path) -> Path | None:
    """Where ``path`` really points, when that is inside none of ``roots`` (else None)."""
    target = path.resolve()
    if any(target.is_relative_to(root.resolve()) for root in roots):
        return None
    return target


def write_no_follow(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created or replaced), refusing when ``path`` is a symbolic link."""
    if path.is_symlink():
        raise UnsafePathError(_link_message(path))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        if path.is_symlink():  # planted between the check and the open: O_NOFOLLOW refused it
            raise UnsafePathError(_link_message(path)) from None
        raise exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _link_message(path: Path) -> str:
    return (
        f"{path} is a symbolic link (to {os.readlink(path)}); numsync does not write through links. "
        "Replace the link with the file itself, or run numsync on the file it points to"
    )
