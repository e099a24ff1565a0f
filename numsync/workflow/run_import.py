"""``numsync import`` as a library call: desired YAML from the live export, one file per group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from numsync.config import Environment
from numsync.errors import ImportRefusal
from numsync.ocp import Credentials
from numsync.workflow import adopt, policy
from numsync.workflow.events import ImportObserver, retry_callback
from numsync.workflow.importer import render_desired, write_desired
from numsync.workflow.pipeline import check_token_lifetime, connect, export_live


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """``group_ids``: only these groups (empty: every managed one); ``force``: overwrite existing files;
    ``schema``: the desired schema's path for the files' modeline (None: no modeline)."""

    env: Environment
    group_ids: Sequence[str] = ()
    force: bool = False
    schema: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    unmanaged: bool = False  # only adopt the live numbers no desired file lists; existing lines untouched


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The files written, how many numbers were adopted (``unmanaged``) or written (``numbers``), and the
    retiring ones left alone."""

    written: list[Path]
    adopted: int = 0
    numbers: int = 0
    retiring: tuple[str, ...] = ()


def run_import(request: ImportRequest, observer: ImportObserver | None = None) -> ImportOutcome:
    """Write the files and say what was written; raises ImportRefusal (or, for adoption, DesiredError
    or AdoptionError) before writing any.

    An unmanaged group is refused before the export (it would never be planned), and an
    existing file is never replaced without ``force``: it may hold edits not yet applied.
    """
    observer = observer or ImportObserver()
    env = request.env
    unknown = [g for g in request.group_ids if g not in env.groups]
    if unknown:
        raise ImportRefusal(
            f"group(s) {', '.join(unknown)} are not managed by environment {env.name!r}; add them under groups in numsync.yaml first"
        )
    env.require_endpoints()  # a ${VAR} without a value: named before credentials are read
    credentials = Credentials.from_env(request.environ, env.credentials)
    check_token_lifetime(credentials, policy.needed_seconds(), observer.warned)
    with connect(env, credentials, on_retry=retry_callback(observer), on_otp_wait=observer.waiting_for_code) as client:
        live = export_live(client, observer)
    groups = request.group_ids or env.groups
    if request.unmanaged:
        adoption = adopt.plan_adoption(env, live, groups, schema=request.schema)
        adopt.write_adoption(adoption.files)
        for item in adoption.files:
            observer.adopted(item.path, item.numbers, item.created)
        if adoption.retiring:
            observer.left_retiring(adoption.retiring)
        adopted = sum(len(item.numbers) for item in adoption.files)
        return ImportOutcome([item.path for item in adoption.files], adopted, adopted, adoption.retiring)
    # a number being retired is a reviewed removal: writing it back (its mark a desired value) would undo that
    marked = {r.number for r in adopt.retiring(env, live) if r.group_id in groups}
    files = render_desired([r for r in live if r.number not in marked], groups, schema=request.schema, shared=True)
    existing = [env.desired / name for name in files if (env.desired / name).exists()]
    if existing and not request.force:
        raise ImportRefusal(f"refusing to overwrite {', '.join(map(str, existing))}; pass --force to replace them")
    written = write_desired(env.desired, files)  # plain file names only, never through a symlink
    for path in written:
        observer.wrote(path)
    if marked:
        observer.left_retiring(tuple(sorted(marked)))
    numbers = sum(1 for r in live if r.group_id in groups and r.number not in marked)
    return ImportOutcome(written, numbers=numbers, retiring=tuple(sorted(marked)))
