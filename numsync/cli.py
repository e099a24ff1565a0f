"""The numsync command line: thin wrappers over the pipeline. The only module that prints.

Exit codes: 0 success (no changes with --detailed-exitcode, no drift), 1 any error
(usage errors included), 2 changes present (``plan --detailed-exitcode``) or drift found.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from numsync import __version__
from numsync import gitlab as gitlab_module
from numsync.config import DEFAULT_CONFIG, Config, Environment, load_config
from numsync.core import safety
from numsync.core.desired import DesiredState
from numsync.core.diff import Diff, Scope
from numsync.core.fmt import FileResult
from numsync.core.model import normalize_number
from numsync.errors import NumsyncError
from numsync.gctuning import tune_for_batch_run
from numsync.ocp.csvcodec import parse_export
from numsync.ocp.retry import REQUEST_LOG
from numsync.redaction import SECRETS, Redactor
from numsync.reports import drift as drift_reports
from numsync.reports import outcomes as outcome_reports
from numsync.reports import plan_formats as plan_reports
from numsync.reports import plan_json, text
from numsync.reports import plandiff as plandiff_reports
from numsync.reports import problems as problem_reports
from numsync.reports.escaping import visible
from numsync.reports.registry import Format, Registry, UnknownFormat
from numsync.workflow import policy
from numsync.workflow.apply import ApplyResult, BatchOutcome
from numsync.workflow.drift_gitlab import (
    DriftContextRequest,
    DriftIssueRequest,
    fetch_drift_context,
    sync_drift_issue,
    with_issues,
)
from numsync.workflow.environments import environment_endpoints
from numsync.workflow.environments import render_json as render_environments_json
from numsync.workflow.environments import render_text as render_environments_text
from numsync.workflow.events import (
    ApplyObserver,
    FmtObserver,
    ImportObserver,
    Observer,
    PlanObserver,
    retry_callback,
)
from numsync.workflow.importer import schema_modeline
from numsync.workflow.pipeline import connect
from numsync.workflow.plan import Plan, load_plan
from numsync.workflow.plandiff import compare_plans
from numsync.workflow.rehearse import Rehearsal
from numsync.workflow.reviewed import DEFAULT_PLAN_JOB, ReviewedPlanRequest, fetch_reviewed_plan
from numsync.workflow.run_apply import ApplyRequest
from numsync.workflow.run_drift import DriftRequest, run_drift
from numsync.workflow.run_fmt import FmtRequest, run_fmt
from numsync.workflow.run_gitlab import (
    ApplyReport,
    CommentRequest,
    ReportRequest,
    apply_and_report,
    report_of_error,
    report_of_outcome,
    run_comment,
    run_report_apply,
)
from numsync.workflow.run_import import ImportRequest, run_import
from numsync.workflow.run_plan import PlanRequest, run_plan
from numsync.workflow.run_validate import ValidateRequest, run_validate

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


SECRET_VARIABLES = ("OCP_PASSWORD", "OCP_TOKEN", "OCP_OTP", "OCP_TOTP_SECRET")


def redact(text: str) -> str:
    """``text`` with every secret masked: the credential variables and each token issued so far (numsync.redaction)."""
    SECRETS.add(*(os.environ.get(name) for name in SECRET_VARIABLES))
    SECRETS.add_basic(os.environ.get("OCP_USERNAME"), os.environ.get("OCP_PASSWORD"))
    return SECRETS.redact(text)


def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """The CLI's one way to print (stdout, or stderr with ``err``): everything shown passes :func:`redact` here."""
    PROGRESS.clear()  # a redrawn progress line gives way to what is printed
    click.echo(redact(str(message)), err=err, nl=nl)


# ---------------------------------------------------------------------------- global options: --quiet, --verbose


class _Verbosity:
    """What --quiet and --verbose asked for, for this run (set by :func:`main` on every invocation)."""

    quiet = False


VERBOSITY = _Verbosity()


def say(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """A progress line or a note (what was written where, retries, waits): printed unless --quiet.

    Errors and each command's final result go through :func:`echo` and are always printed."""
    if not VERBOSITY.quiet:
        echo(message, err=err, nl=nl)


class _RequestLines(logging.Handler):
    """--verbose: every request to OCP (numsync.ocp's log, one line per attempt) on stderr, redacted like all output."""

    def emit(self, record: logging.LogRecord) -> None:
        echo(f"  {record.getMessage()}", err=True)


def _set_verbosity(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose cannot be used together")
    VERBOSITY.quiet = quiet
    for handler in [h for h in REQUEST_LOG.handlers if isinstance(h, _RequestLines)]:
        REQUEST_LOG.removeHandler(handler)  # an earlier run in this process (tests) asked for it
    if verbose:
        handler, level = _RequestLines(), REQUEST_LOG.level
        REQUEST_LOG.addHandler(handler)
        REQUEST_LOG.setLevel(logging.INFO)

        def restore() -> None:
            REQUEST_LOG.removeHandler(handler)
            REQUEST_LOG.setLevel(level)

        ctx.call_on_close(restore)


def _json_format_option(help_text: str) -> Callable[[F], F]:
    """``--format text|json`` of a command whose result is one report (the JSON shape: docs/output.md)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=help_text,
    )


class _Progress:
    """Long stages on stderr, in the style :func:`policy.progress_style` picks for this process.

    LIVE: one line, redrawn at most ten times a second, erased before anything else is printed;
    PLAIN: only the line that ends a stage; OFF: nothing. Only large stages are shown
    (:func:`policy.worth_showing`).
    """

    def __init__(self) -> None:
        self._drawn = False
        self._last = 0.0

    @property
    def style(self) -> policy.ProgressStyle:
        if VERBOSITY.quiet:
            return policy.ProgressStyle.OFF
        return policy.progress_style(os.environ, sys.stderr.isatty())

    def worth(self, **size: int | None) -> bool:
        return self.style is not policy.ProgressStyle.OFF and policy.worth_showing(os.environ, **size)

    def live(self, text: str, *, now: bool = False) -> None:
        """Redraw the progress line (on a terminal only); ``now``: even if drawn less than 0.1 s ago."""
        if self.style is not policy.ProgressStyle.LIVE:
            return
        moment = time.monotonic()
        if not now and moment - self._last < 0.1:
            return
        self._last = moment
        sys.stderr.write("\r\x1b[K" + redact(text))
        sys.stderr.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn = False
            self._last = 0.0

    def done(self, text: str) -> None:
        """The line that ends a stage (any style but OFF)."""
        if self.style is not policy.ProgressStyle.OFF:
            echo(text, err=True)


PROGRESS = _Progress()


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def write_report(path: Path, text: str) -> None:
    """Write a report file numsync renders, through the same redaction as what it prints."""
    path.write_text(redact(text), "utf-8")


class Failure(click.ClickException):
    """An error already explained to the user; exit 1 (or the error's own exit code)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.__dict__["exit_code"] = exit_code  # click declares it on the class (ClassVar)

    def show(self, file: Any = None) -> None:
        one_time_code = Redactor([os.environ.get("OCP_OTP")])  # not masked process-wide (see SecretRegistry.add)
        echo(f"Error: {one_time_code(self.message)}", err=True)


def handle_errors(func: F) -> F:
    """Turn numsync's errors into one clear paragraph on stderr and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (NumsyncError, OSError) as exc:
            for line in exc.details if isinstance(exc, NumsyncError) else []:
                echo(line, err=True)
            raise Failure(_explain(exc), exc.exit_code if isinstance(exc, NumsyncError) else 1) from None

    return wrapper  # type: ignore[return-value]


def _explain(exc: NumsyncError | OSError) -> str:
    if isinstance(exc, NumsyncError):
        return exc.explain()
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


class NumsyncGroup(click.Group):
    """Usage errors exit 1 like every other error: 2 means "changes present" (plan --detailed-exitcode) or "drift"."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.__dict__["exit_code"] = 1  # click declares it on the class; this one exits 1
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.__dict__["exit_code"] = 1  # click declares it on the class; this one exits 1
            raise


@click.group(cls=NumsyncGroup)
@click.version_option(__version__, prog_name="numsync")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    envvar="NUMSYNC_CONFIG",
    help="numsync.yaml to read.",
)
@click.option("--env", "env_name", envvar="NUMSYNC_ENV", help="Environment in numsync.yaml (default: the only one).")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Parse every desired file again instead of using the cache (.numsync-cache/ or $NUMSYNC_CACHE_DIR).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and each command's final result.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Print more: every request to OCP (method, URL, status, seconds) on stderr."
)
@click.pass_context
def main(
    ctx: click.Context, config_path: Path, env_name: str | None, no_cache: bool, quiet: bool, verbose: bool
) -> None:
    """numsync: OCP phone numbers as code — validate, plan, apply."""
    _set_verbosity(ctx, quiet, verbose)
    if warning := policy.progress_setting_warning(os.environ):  # a typo must not quietly mean "by size"
        echo(f"Warning: {warning}", err=True)
    ctx.obj = {"config_path": config_path, "env_name": env_name, "cache": not no_cache}


def _no_cache(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().obj["cache"] = False


#: ``--no-cache`` after a command (``numsync plan --no-cache``), as well as before it.
no_cache_option = click.option(
    "--no-cache",
    is_flag=True,
    expose_value=False,
    callback=_no_cache,
    help="Parse every desired file again instead of using the cache.",
)


def _config(ctx: click.Context) -> Config:
    config = load_config(ctx.obj["config_path"], cache=ctx.find_root().obj["cache"])
    for warning in config.warnings:  # e.g. a token endpoint on an undocumented host: said on every command
        echo(f"{warning.location}: warning: {warning.message}", err=True)
    return config


def _env(ctx: click.Context) -> Environment:
    return _config(ctx).environment(ctx.obj["env_name"])


@main.command()
@click.option(
    "--format",
    "report_format",
    type=click.Choice(problem_reports.FORMATS.names),
    default="text",
    show_default=True,
    help=problem_reports.FORMATS.help_text() + ".",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file (the count still goes to stderr).",
)
@no_cache_option
@click.pass_context
@handle_errors
def validate(ctx: click.Context, report_format: str, output: Path | None) -> None:
    """Check numsync.yaml and the desired files offline; report every problem as path:line:column.

    Never needs credentials or the network. Exits 1 when any problem is an error; warnings
    (e.g. a number without a provider) are reported but do not fail.
    """
    outcome = run_validate(ValidateRequest(ctx.obj["config_path"], ctx.obj["env_name"], ctx.obj["cache"]))
    report = problem_reports.FORMATS.get(report_format).render(
        problem_reports.ProblemReport(outcome.problems, outcome.scope)
    )
    count = problem_reports.count_line(outcome.problems, outcome.scope)
    if output:
        try:
            write_report(output, report)
        except OSError as exc:
            raise Failure(f"cannot write the report to {output}: {exc}") from None
        echo(count, err=True)
    else:
        echo(report, nl=False)
        if report_format != "text":  # the text report ends with the count line already
            echo(count, err=True)
    ctx.exit(outcome.exit_code)


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the CSV here instead of stdout.")
@_json_format_option("With --out: the summary (bytes, numbers, numbers per group) as text or JSON on stdout.")
@click.pass_context
@handle_errors
def export(ctx: click.Context, out: Path | None, output_format: str) -> None:
    """Download the live numbers CSV exactly as OCP sends it."""
    if output_format == "json" and out is None:
        raise click.UsageError("--format json needs --out FILE: without it the CSV itself goes to stdout")
    env = _env(ctx)
    observer = _Echo()
    with connect(env, on_retry=retry_callback(observer), on_otp_wait=observer.waiting_for_code) as client:
        data = client.export()
    if out is None:
        sys.stdout.buffer.write(SECRETS.redact_bytes(data))
        return
    out.write_bytes(SECRETS.redact_bytes(data))
    if output_format == "json":
        echo(outcome_reports.render_export(env.name, out, len(data), parse_export(data)), nl=False)
    else:
        echo(f"wrote {len(data)} bytes to {out}", err=True)


def safety_options(func: F) -> F:
    """The flags that lift a safety check after review (see numsync/safety.py)."""
    func = click.option(
        "--allow-small-export",
        is_flag=True,
        help="Plan even though the live export is far smaller than desired (first rollout).",
    )(func)
    func = click.option(
        "--override-thresholds",
        is_flag=True,
        help="Apply even though the plan exceeds max_deletes / max_change_percent.",
    )(func)
    func = click.option(
        "--allow-replace", is_flag=True, help="Allow numbers that change group to be deleted and created again."
    )(func)
    return func


def scope_options(func: F) -> F:
    """``--group`` and ``--number`` (both repeatable): a partial run, as Terraform's ``-target``."""
    func = click.option(
        "--number",
        "scope_numbers",
        multiple=True,
        metavar="E164",
        help="Partial run: only this number (repeatable). Warns; numbers out of scope are neither diffed nor pruned.",
    )(func)
    func = click.option(
        "--group",
        "scope_groups",
        multiple=True,
        metavar="GROUP",
        help="Partial run: only the numbers of this managed group (repeatable). Warns, like --number.",
    )(func)
    return func


def _scope(groups: tuple[str, ...], numbers: tuple[str, ...]) -> Scope | None:
    """The partial run ``--group``/``--number`` ask for (None: every managed number); a NUMBER not in E.164 is a usage error."""
    if not groups and not numbers:
        return None
    normalized = set()
    for raw in numbers:
        try:
            normalized.add(normalize_number(raw))
        except NumsyncError as exc:
            raise click.BadParameter(str(exc), param_hint="--number") from None
    return Scope(frozenset(groups), frozenset(normalized))


@main.group("plan", cls=NumsyncGroup, invoke_without_command=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan as JSON for a later 'numsync apply PLAN'.",
)
@click.option(
    "--emit-csv",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the exact upload files (and a spreadsheet-safe review.csv) into this folder.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@click.option(
    "--rehearse",
    is_flag=True,
    help="Also apply the plan to a local emulator seeded from this export and report whether it converges.",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("text",),
    metavar="FORMAT[=FILE]",
    help=plan_reports.FORMATS.help_text() + ". =FILE writes it to a file instead of stdout. Repeatable.",
)
@click.option(
    "--gitlab-report",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write GitLab\'s Terraform report ({"create": N, "update": N, "delete": N}) here, for artifacts:reports:terraform.',
)
@safety_options
@scope_options
@click.option(
    "--reason",
    envvar="NUMSYNC_OVERRIDE_REASON",
    metavar="TEXT",
    help="Why the override flags lift their checks: recorded in the saved plan with who gave them "
    "($GITLAB_USER_LOGIN, else $USER), and honoured by apply. Needed with --out and an override flag.",
)
@no_cache_option
@click.pass_context
@handle_errors
def plan(
    ctx: click.Context,
    out: Path | None,
    emit_csv: Path | None,
    detailed_exitcode: bool,
    rehearse: bool,
    formats: tuple[str, ...],
    gitlab_report: Path | None,
    allow_replace: bool,
    override_thresholds: bool,
    allow_small_export: bool,
    scope_groups: tuple[str, ...],
    scope_numbers: tuple[str, ...],
    reason: str | None,
) -> None:
    """Show what apply would change: export live, diff with desired, plan the operation files.

    ``numsync plan diff OLD.json NEW.json`` compares two saved plans instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    outputs = _parse_formats(plan_reports.FORMATS, formats)
    request = PlanRequest(
        _env(ctx),
        safety.Overrides(allow_replace, override_thresholds, allow_small_export),
        save_to=out,
        emit_csv=emit_csv,
        rehearse=rehearse,
        detailed_exitcode=detailed_exitcode,
        environ=os.environ,
        scope=_scope(scope_groups, scope_numbers),
        reason=reason,
    )
    outcome = run_plan(request, _PlanEcho(outputs, gitlab_report))
    ctx.exit(outcome.exit_code)


@plan.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "report_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def plan_diff(old: Path, new: Path, report_format: str) -> None:
    """List the numbers, fields and rows that differ between two saved plans. Exit 0: the same, 2: they differ."""
    difference = compare_plans(load_plan(old), load_plan(new))
    echo(
        (plandiff_reports.render_json if report_format == "json" else plandiff_reports.render_text)(difference),
        nl=False,
    )
    sys.exit(0 if difference.empty else 2)


class _Echo(Observer):
    def retrying(self, method: str, path: str, reason: str, delay: float) -> None:
        # Tell the user why nothing seems to happen: a retry can wait up to minutes (Retry-After).
        say(f"  {method} {path}: {reason}, retrying in {delay:.1f}s", err=True)

    def waiting_for_code(self, seconds: float) -> None:
        say(f"Waiting {seconds:.0f} s for the next two-factor code (OCP accepts each code only once).", err=True)

    def warned(self, message: str) -> None:
        echo(f"Warning: {message}", err=True)

    def export_progress(self, received: int, total: int | None) -> None:
        if PROGRESS.worth(size=total or received):
            PROGRESS.live(f"exporting live numbers: {_size(received)}" + (f" of {_size(total)}" if total else ""))

    def exported(self, numbers: int, size: int, seconds: float) -> None:
        if PROGRESS.worth(size=size, numbers=numbers):
            PROGRESS.done(f"exported {numbers} live numbers ({_size(size)}) in {seconds:.1f}s")
        PROGRESS.clear()

    def loading_desired(self) -> None:
        PROGRESS.live("loading desired files…", now=True)

    def desired_loaded(self, numbers: int, files: int, seconds: float) -> None:
        if PROGRESS.worth(numbers=numbers):
            PROGRESS.done(f"loaded {numbers} desired numbers from {files} file(s) in {seconds:.1f}s")
        PROGRESS.clear()

    def clock_skewed(self, warning: str) -> None:
        echo(f"Warning: {warning}", err=True)


class _PlanEcho(_Echo, PlanObserver):
    """Shows plan's events; notes go to stderr when stdout carries Markdown or JSON, so it can be redirected as is."""

    def __init__(self, outputs: list[tuple[Format[plan_reports.PlanReport], Path | None]], gitlab_report: Path | None):
        self.outputs = outputs
        self.gitlab_report = gitlab_report
        self.notes_to_stderr = any(fmt.name != "text" and path is None for fmt, path in outputs)

    def note(self, message: str) -> None:
        say(message, err=self.notes_to_stderr)

    def planned(self, plan: Plan, violations: Sequence[safety.Violation], notices: Sequence[str] = ()) -> None:
        report = plan_reports.PlanReport(plan)  # the plan carries its notices and failed checks
        for fmt, path in self.outputs:
            rendered = fmt.render(report)
            if path:
                write_report(path, rendered)
                say(f"wrote the {fmt.name} plan to {path}", err=True)
            else:
                echo(rendered, nl=False)
        if self.gitlab_report:
            write_report(self.gitlab_report, plan_json.render_terraform_report(plan))
            say(f"wrote the GitLab Terraform report to {self.gitlab_report}", err=True)

    def freeze_noted(self, notice: str) -> None:
        if self.notes_to_stderr:  # the text plan on stdout says it already; a notice, so even with --quiet
            echo(f"Note: {notice}", err=True)

    def saved(self, path: Path, *, refused: bool = False) -> None:
        if refused:  # never how to apply a plan that apply would refuse
            # the checks are printed after this note, and a saved plan only lifts the overrides it records
            self.note(
                f"Saved the plan to {path}; apply will refuse it: it fails the safety check(s) below. To lift one "
                f'after review, make the plan again with its flag: numsync plan FLAG --reason "<why>" --out {path}'
            )
        else:
            self.note(f"Saved the plan to {path}; apply it with: numsync apply {path}")

    def wrote_upload_file(self, path: Path) -> None:
        self.note(f"wrote {path}")

    def rehearsing(self) -> None:
        self.note("\nRehearsal on a local emulator seeded from this export:")

    def rehearsed(self, rehearsal: Rehearsal, desired: DesiredState) -> None:
        self.note(text.render_apply(rehearsal.result, desired))
        self.note(text.render_verify(rehearsal.remaining))


@main.command("import")
@click.option(
    "--group", "group_ids", multiple=True, help="Only this GROUP_ID (repeatable). Default: every managed group."
)
@click.option("--force", is_flag=True, help="Overwrite existing desired files.")
@click.option(
    "--unmanaged",
    is_flag=True,
    help="Only add the live numbers no desired file lists, to their group's file (created if missing); nothing else changes.",
)
@_json_format_option("text: each file written; json: the files and the numbers in them as one object.")
@click.pass_context
@handle_errors
def import_(ctx: click.Context, group_ids: tuple[str, ...], force: bool, unmanaged: bool, output_format: str) -> None:
    """Write desired YAML from the live export: one file per group, numbers sorted, values quoted.

    Values most numbers of a group share (locale, phone_number_set_id) go into the file's defaults.
    With --unmanaged, existing files keep every line and comment: only the missing numbers are added.
    """
    env = _env(ctx)
    request = ImportRequest(
        env, group_ids, force, schema=schema_modeline(env.desired), environ=os.environ, unmanaged=unmanaged
    )
    outcome = run_import(request, _ImportEcho(err=output_format == "json"))
    if output_format == "json":
        adopted = outcome.adopted if unmanaged else None
        echo(outcome_reports.render_import(env.name, outcome.written, outcome.numbers, adopted), nl=False)
    elif unmanaged:
        echo(f"adopted {outcome.adopted} unmanaged number(s)")
    else:
        echo(f"imported {outcome.numbers} number(s) into {len(outcome.written)} file(s)")


class _ImportEcho(_Echo, ImportObserver):
    def __init__(self, *, err: bool = False) -> None:
        self.err = err  # stdout carries JSON

    def wrote(self, path: Path) -> None:
        say(f"wrote {path}", err=self.err)

    def adopted(self, path: Path, numbers: Sequence[str], created: bool) -> None:
        shown = ", ".join(numbers[:3]) + (", …" if len(numbers) > 3 else "")
        say(f"{'created' if created else 'added to'} {path}: {len(numbers)} number(s) ({shown})", err=self.err)

    def left_retiring(self, numbers: Sequence[str]) -> None:
        shown = ", ".join(numbers[:3]) + (", …" if len(numbers) > 3 else "")
        echo(
            f"left alone {len(numbers)} retiring number(s) ({shown}): removed from desired and marked for deletion; "
            "to keep one, put it back in its desired file"
        )


@main.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(plan_reports.FORMATS.names),
    default="text",
    show_default=True,
    help=plan_reports.FORMATS.help_text() + ".",
)
@handle_errors
def show(plan_file: Path, output_format: str) -> None:
    """Render a saved plan, in any of plan's formats (json: the plan as saved, checked and normalized)."""
    echo(
        plan_reports.FORMATS.get(output_format).render(
            plan_reports.PlanReport(load_plan(plan_file), safety.LiftContext.SAVED_PLAN)
        ),
        nl=False,
    )


@main.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--override-freeze", metavar="REASON", help="Apply during a change freeze; REASON is recorded in the journal."
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append every request and its outcome here (JSON lines). Default in CI: numsync-journal.jsonl.",
)
@click.option(
    "--ignore-superseded",
    is_flag=True,
    help="In CI, apply even though a newer merge is on the default branch (a reviewed manual run).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write what happened (applied, failed, refused, superseded) as JSON here, for 'numsync gitlab report-apply'.",
)
@click.option(
    "--results",
    "results_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one line per planned row (number, operation, phase, batch, outcome, OCP's message, desired file:line) "
    "here, whatever ends the run; .csv or .json chooses the format.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a JUnit XML report here: one failing test case per number not applied (artifacts:reports:junit).",
)
@click.option(
    "--retry-failed",
    "retry_failed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="RESULTS",
    help="Plan afresh and apply only the numbers whose rows in this --results file did not end as applied (a partial run).",
)
@_json_format_option(
    "text: progress and result for people; json: the result as one object on stdout (progress on stderr)."
)
@click.option(
    "--reviewed",
    is_flag=True,
    help="In GitLab CI: apply the plan reviewed in the merged merge request of $CI_COMMIT_SHA (its latest "
    "successful pipeline's plan job artifact; needs NUMSYNC_GITLAB_TOKEN). Stale and different: refused, or "
    "reposted for re-approval (on_stale_review).",
)
@click.option(
    "--plan-job",
    default=DEFAULT_PLAN_JOB,
    show_default=True,
    metavar="NAME",
    help="With --reviewed: the plan job's name ({env}: the environment).",
)
@click.option(
    "--save-reviewed",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --reviewed: keep the fetched reviewed plan here.",
)
@click.option(
    "--save-replan",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --reviewed and on_stale_review: repost: save the plan made now here when it differs (what a re-approval applies).",
)
@safety_options
@scope_options
@no_cache_option
@click.pass_context
@handle_errors
def apply(
    ctx: click.Context,
    plan_file: Path | None,
    auto_approve: bool,
    override_freeze: str | None,
    journal_path: Path | None,
    ignore_superseded: bool,
    report_path: Path | None,
    results_path: Path | None,
    junit_path: Path | None,
    retry_failed: Path | None,
    output_format: str,
    reviewed: bool,
    plan_job: str,
    save_reviewed: Path | None,
    save_replan: Path | None,
    allow_replace: bool,
    override_thresholds: bool,
    allow_small_export: bool,
    scope_groups: tuple[str, ...],
    scope_numbers: tuple[str, ...],
) -> None:
    """Apply the changes: a saved PLAN_FILE exactly, or a fresh plan after confirmation; then verify.

    A saved or reviewed plan runs with the overrides it records (who lifted which check and
    why); an override flag it does not record is refused.

    SIGINT or SIGTERM stops it cleanly: the files in flight finish, nothing more is sent, the
    journal ends with apply-end. A second signal stops at once. Exit 3: a stale reviewed plan's
    difference was posted for re-approval (nothing was written).
    """
    scope = _scope(scope_groups, scope_numbers)
    if plan_file and (scope or retry_failed):
        raise click.UsageError(
            "a saved plan keeps the scope it was made with: give --group/--number/--retry-failed to plan, or no PLAN_FILE"
        )
    if retry_failed and scope:
        raise click.UsageError("--retry-failed chooses the numbers itself: leave out --group and --number")
    if results_path and results_path.suffix.lower() not in (".csv", ".json"):
        raise click.BadParameter(
            f"{results_path} must end in .csv or .json (the extension chooses the format)", param_hint="--results"
        )
    if reviewed and plan_file:
        raise click.UsageError("give a PLAN_FILE or --reviewed, not both")
    if reviewed and (scope or retry_failed):
        raise click.UsageError(
            "a reviewed plan keeps the scope it was made with: leave out --group/--number/--retry-failed"
        )
    env = _env(ctx)
    review = (
        ReviewedPlanRequest(
            env.name,
            os.environ.get("CI_API_V4_URL"),
            os.environ.get("CI_PROJECT_ID"),
            os.environ.get("CI_COMMIT_SHA"),
            token=os.environ.get(gitlab_module.TOKEN_VARIABLE, "").strip() or None,
            plan_job=plan_job,
            save_to=save_reviewed,
            replan_to=save_replan,
            pipeline_url=os.environ.get("CI_PIPELINE_URL"),
        )
        if reviewed
        else None
    )
    stop = _StopOnSignal()
    request = ApplyRequest(
        env,
        plan_file,
        safety.Overrides(allow_replace, override_thresholds, allow_small_export),
        override_freeze=override_freeze,
        auto_approve=auto_approve,
        journal=journal_path,
        interactive=sys.stdin.isatty(),
        environ=os.environ,
        ignore_superseded=ignore_superseded,
        should_stop=stop,
        scope=scope,
        retry_failed=retry_failed,
        results=results_path,
        junit=junit_path,
        review=review,
    )
    observer = _ApplyEcho(json_result=output_format == "json")
    with stop:
        try:
            outcome = apply_and_report(
                request,
                observer,
                lambda question: stop.asking(lambda: click.confirm(question, abort=True, err=observer.json_result)),
                report=report_path,
            )
        except NumsyncError as exc:
            if observer.json_result:  # the JSON result in every ending; the error itself follows on stderr
                echo(observer.render_json(report_of_error(request.env.name, exc), None), nl=False)
            raise
    if observer.json_result:
        echo(observer.render_json(report_of_outcome(request.env.name, outcome), outcome.remaining), nl=False)
    ctx.exit(outcome.exit_code)


class _StopOnSignal:
    """While applying, SIGINT and SIGTERM ask apply to stop after the files in flight; a second one stops at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> str | None:
        return self.reason

    def _handle(self, signum: int, frame: Any) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = f"{signal.Signals(signum).name} received"
        echo(f"{self.reason}: stopping after the file(s) in flight (again to stop at once)", err=True)

    def asking(self, ask: Callable[[], bool]) -> bool:
        """Ask the confirmation question with the handlers from before: Ctrl-C at the prompt aborts at once,
        as a "no" would, instead of waiting for an answer to stop "after the files in flight" (there are none)."""
        with self._suspended():
            return ask()

    @contextmanager
    def _suspended(self) -> Iterator[None]:
        ours = {s: signal.getsignal(s) for s in self._previous}
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        try:
            yield
        finally:
            for signum, handler in ours.items():
                signal.signal(signum, handler)

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _ApplyEcho(_Echo, ApplyObserver):
    """Shows apply's events. With ``json_result`` the people's lines go to stderr and the result is one JSON
    object on stdout at the end (:meth:`render_json`), so stdout can be piped as is."""

    def __init__(self, *, json_result: bool = False) -> None:
        self.json_result = json_result
        self.batches: list[BatchOutcome] = []
        self.plan: Plan | None = None

    def render_json(self, report: ApplyReport, remaining: Diff | None) -> str:
        return outcome_reports.render_apply(report, self.plan, self.batches, remaining)

    def superseded(self, message: str) -> None:
        echo(message, err=self.json_result)

    def planned(self, plan: Plan) -> None:
        self.plan = plan
        say(text.render_plan(plan), err=self.json_result)

    def reviewed(self, message: str) -> None:
        echo(message)

    def freeze_overridden(self, freeze: str, reason: str) -> None:
        echo(f"Change freeze in force ({freeze}); overridden: {redact(reason)}", err=True)

    def applying(self, environment: str, base_url: str) -> None:
        say(f"Applying to {environment} ({base_url}):", err=self.json_result)

    def batch_done(self, outcome: BatchOutcome) -> None:
        self.batches.append(outcome)
        say(text.render_batch(outcome), err=self.json_result)

    def files_progress(self, answered: int, total: int) -> None:
        if PROGRESS.worth(files=total):
            PROGRESS.live(f"files answered: {answered} of {total}", now=True)
            if answered == total:
                PROGRESS.done(f"sent {total} file(s), every one answered")

    def throttled(self, concurrency: int, retry_after: float | None) -> None:
        wait = f", waiting {retry_after:.0f}s" if retry_after else ""
        echo(f"  OCP asked to slow down (HTTP 429){wait}: {concurrency} file(s) at once from now on", err=True)

    def settled(self, exports: int, seconds: float) -> None:
        say(f"  live settled: {exports} exports agreed after {seconds:.1f}s", err=self.json_result)

    def replanned(self, plan: Plan, why: str) -> None:
        say(
            f"  outcome unknown ({why.splitlines()[0]}); re-read live state and re-planned the rest: {plan.summary_line()}",
            err=self.json_result,
        )

    def applied(self, result: ApplyResult, desired: DesiredState) -> None:
        (say if self.json_result else echo)(text.render_apply(result, desired), err=self.json_result)

    def verified(self, remaining: Diff) -> None:
        (say if self.json_result else echo)(text.render_verify(remaining), err=self.json_result)

    def results_written(self, path: Path) -> None:
        echo(f"wrote the results to {path}", err=True)


@main.command()
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("text",),
    metavar="FORMAT[=FILE]",
    help=drift_reports.FORMATS.help_text() + ". =FILE writes it to a file. Repeatable.",
)
@click.option(
    "--previous",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier JSON drift report: items keep their first_seen, new drift is told from old.",
)
@click.option(
    "--last-applied",
    help="The plan JSON last applied, or its git commit: tells out-of-band changes from pending applies.",
)
@click.option(
    "--from-gitlab",
    is_flag=True,
    help="In a scheduled GitLab job: take --previous from the last scheduled run's drift.json and --last-applied "
    "from the environment's last applied deployment (missing is fine), and keep the environment's drift issue when "
    "numsync.yaml says drift: {gitlab_issue: true}. Needs NUMSYNC_GITLAB_TOKEN and one environment.",
)
@click.pass_context
@handle_errors
def drift(
    ctx: click.Context, formats: tuple[str, ...], previous: Path | None, last_applied: str | None, from_gitlab: bool
) -> None:
    """Report how live differs from desired (read-only). Exit 0: no drift, 2: drift, 1: error.

    --env all (or no --env) reports every environment."""
    outputs = _parse_formats(drift_reports.FORMATS, formats)
    token = os.environ.get(gitlab_module.TOKEN_VARIABLE, "").strip() or None
    previous_report = None
    if from_gitlab:
        context = fetch_drift_context(
            DriftContextRequest(
                _env(ctx).name,
                os.environ.get("CI_API_V4_URL"),
                os.environ.get("CI_PROJECT_ID"),
                token,
                branch=os.environ.get("CI_DEFAULT_BRANCH"),
                pipeline_id=os.environ.get("CI_PIPELINE_ID"),
            )
        )
        for note in context.notes:
            echo(note, err=True)
        last_applied, previous_report = last_applied or context.last_applied, context.previous
    request = DriftRequest(
        _config(ctx),
        ctx.obj["env_name"],
        previous,
        last_applied,
        environ=os.environ,
        previous_report=previous_report,
    )
    outcome = run_drift(request, _Echo())
    for fmt, path in outputs:
        rendered = fmt.render(outcome.report)
        if path:
            write_report(path, rendered)
            say(f"wrote {fmt.name} report to {path}", err=True)
        else:
            echo(rendered.rstrip("\n"))
    kept = with_issues(_config(ctx), outcome.report) if from_gitlab else None
    if kept is not None:
        issues = DriftIssueRequest(
            os.environ.get("CI_API_V4_URL"),
            os.environ.get("CI_PROJECT_ID"),
            token,
            job_url=os.environ.get("CI_JOB_URL"),
        )
        for done in sync_drift_issue(issues, kept):
            where = f": {done.url}" if done.url else ""
            echo(f"drift issue for {done.environment!r}: {done.action}{where}", err=True)
    ctx.exit(outcome.exit_code)


def _parse_formats(registry: Registry[T], specs: tuple[str, ...]) -> list[tuple[Format[T], Path | None]]:
    """``--format FORMAT[=FILE]`` values: each format of ``registry`` with the file to write it to (None: stdout)."""
    outputs = []
    for spec in specs:
        name, _, path = spec.partition("=")
        try:
            fmt = registry.get(name)
        except UnknownFormat as exc:
            raise click.BadParameter(str(exc), param_hint="--format") from None
        outputs.append((fmt, Path(path) if path else None))
    return outputs


@main.command("fmt")
@click.option("--check", is_flag=True, help="Change nothing; list the files that would change and exit 1 if any would.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_context
@handle_errors
def fmt_command(ctx: click.Context, check: bool, paths: tuple[Path, ...]) -> None:
    """Rewrite desired files in canonical form, keeping every comment.

    Numbers sorted and written as quoted E.164, string values double-quoted. PATHS are files
    or folders (default: the desired folder of each environment in numsync.yaml). A file with
    problems is not touched; its problems are listed and the exit code is 1.
    """
    outcome = run_fmt(FmtRequest(paths, check, ctx.obj["config_path"], ctx.obj["env_name"]), _FmtEcho())
    verb = "would be reformatted" if check else "reformatted"
    summary = f"{outcome.changed} file(s) {verb}, {outcome.unchanged} already formatted"
    if outcome.refused:
        summary += f", {outcome.refused} not formatted because of problems"
    echo(summary, err=True)
    ctx.exit(outcome.exit_code)


class _FmtEcho(FmtObserver):
    def refused(self, result: FileResult) -> None:
        for problem in result.problems:
            echo(problem_reports.text_line(problem), err=True)
        echo(f"not formatted: {result.shown} has {len(result.problems)} problem(s) (above)", err=True)

    def reformatted(self, result: FileResult, *, written: bool) -> None:
        if written:
            say(f"reformatted {result.shown}")
        else:  # with --check, the files listed are the result
            echo(f"would reformat {result.shown}")


@main.command("schema")
@click.option(
    "--config", "config_schema", is_flag=True, help="The schema of numsync.yaml instead of the desired files'."
)
def schema_command(config_schema: bool) -> None:
    """Print the JSON Schema of desired files (or of numsync.yaml with --config), for editors."""
    from numsync.core.schema import load_schema

    echo(json.dumps(load_schema("config" if config_schema else "desired"), indent=2, ensure_ascii=False))


def _token_variable_option(func: F) -> F:
    return click.option(
        "--token-variable",
        default=gitlab_module.TOKEN_VARIABLE,
        show_default=True,
        metavar="NAME",
        help="Environment variable holding the access token (api scope). Never taken on the command line.",
    )(func)


@main.group("gitlab")
def gitlab_group() -> None:
    """GitLab integration: the plan as a merge-request note (see README, "GitLab CI")."""


@gitlab_group.command("comment")
@click.option(
    "--plan",
    "plan_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A plan saved by 'numsync plan --out'.",
)
@click.option(
    "--api-url",
    envvar="CI_API_V4_URL",
    metavar="URL",
    help="GitLab's REST API, e.g. https://gitlab.example.com/api/v4. Default: $CI_API_V4_URL.",
)
@click.option(
    "--project",
    envvar=["CI_MERGE_REQUEST_PROJECT_ID", "CI_PROJECT_ID"],
    help="Project ID or full path of the merge request (a fork's MR belongs to the target project). "
    "Default: $CI_MERGE_REQUEST_PROJECT_ID, else $CI_PROJECT_ID.",
)
@click.option(
    "--merge-request",
    "mr_iid",
    envvar="CI_MERGE_REQUEST_IID",
    metavar="IID",
    help="The merge request's IID. Default: $CI_MERGE_REQUEST_IID.",
)
@click.option(
    "--commit", envvar="CI_COMMIT_SHA", help="The commit the plan is for, named in the note. Default: $CI_COMMIT_SHA."
)
@click.option(
    "--source-commit",
    envvar=["NUMSYNC_SOURCE_SHA", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"],
    help="The merge request's source head, when the plan is of the merge result (the plan job sets it).",
)
@click.option(
    "--target-commit",
    envvar=["NUMSYNC_TARGET_SHA", "CI_MERGE_REQUEST_TARGET_BRANCH_SHA"],
    help="The target branch's head it was merged with, when the plan is of the merge result.",
)
@click.option(
    "--artifacts-url",
    metavar="URL",
    help="Where the full plan is, linked when the note is truncated. Default: $CI_JOB_URL/artifacts/browse.",
)
@_token_variable_option
@click.option(
    "--max-chars",
    type=click.IntRange(1000, 1_000_000),
    default=60_000,
    show_default=True,
    help="Longer plans are truncated with a pointer to the artifact.",
)
@click.option("--dry-run", is_flag=True, help="Print the note instead of posting it.")
@click.pass_context
@handle_errors
def gitlab_comment(
    ctx: click.Context,
    plan_file: Path,
    api_url: str | None,
    project: str | None,
    mr_iid: str | None,
    commit: str | None,
    source_commit: str | None,
    target_commit: str | None,
    artifacts_url: str | None,
    token_variable: str,
    max_chars: int,
    dry_run: bool,
) -> None:
    """Post the plan to the merge request as a note; later runs update the same note.

    The note is found again by a hidden marker per environment, in a note the token's own
    user wrote. Without the token the command explains how to enable notes and exits 0, so a
    pipeline without one still passes.
    """
    job_url = os.environ.get("CI_JOB_URL")
    request = CommentRequest(
        plan_file,
        api_url,
        project,
        mr_iid,
        commit,
        artifacts_url or (job_url.rstrip("/") + "/artifacts/browse" if job_url else None),
        token=os.environ.get(token_variable, "").strip() or None,
        token_variable=token_variable,
        max_chars=max_chars,
        dry_run=dry_run,
        config_path=ctx.obj["config_path"],
        source=source_commit,
        target=target_commit,
    )
    outcome = run_comment(request)
    if dry_run:
        echo(outcome.body, nl=False)
    elif outcome.skipped:
        echo(outcome.skipped)
    else:
        assert outcome.action is not None
        environment = load_plan(plan_file).environment
        echo(
            f"{outcome.action.capitalize()} the plan note {outcome.note_id} on merge request !{mr_iid} for environment {environment!r}."
        )


@gitlab_group.command("fetch-plan")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Save the plan here.")
@click.option("--api-url", envvar="CI_API_V4_URL", metavar="URL", help="GitLab's REST API. Default: $CI_API_V4_URL.")
@click.option("--project", envvar="CI_PROJECT_ID", help="Project ID or full path. Default: $CI_PROJECT_ID.")
@click.option("--commit", envvar="CI_COMMIT_SHA", help="The merged commit. Default: $CI_COMMIT_SHA.")
@click.option(
    "--plan-job",
    default=DEFAULT_PLAN_JOB,
    show_default=True,
    metavar="NAME",
    help="The plan job's name ({env}: the environment).",
)
@_token_variable_option
@click.pass_context
@handle_errors
def gitlab_fetch_plan(
    ctx: click.Context,
    out: Path,
    api_url: str | None,
    project: str | None,
    commit: str | None,
    plan_job: str,
    token_variable: str,
) -> None:
    """Save the plan reviewed in the merged merge request of COMMIT (what apply --reviewed runs)."""
    request = ReviewedPlanRequest(
        _env(ctx).name,
        api_url,
        project,
        commit,
        token=os.environ.get(token_variable, "").strip() or None,
        token_variable=token_variable,
        plan_job=plan_job,
        save_to=out,
    )
    found = fetch_reviewed_plan(request)
    echo(f"Saved the plan reviewed in {found.source.where()} to {out}: {found.plan.summary_line()}.")


@gitlab_group.command("report-apply")
@click.option(
    "--report",
    "report_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The report written by 'numsync apply --report FILE'.",
)
@click.option("--api-url", envvar="CI_API_V4_URL", metavar="URL", help="GitLab's REST API. Default: $CI_API_V4_URL.")
@click.option("--project", envvar="CI_PROJECT_ID", help="Project ID or full path. Default: $CI_PROJECT_ID.")
@click.option("--commit", envvar="CI_COMMIT_SHA", help="The commit that was applied. Default: $CI_COMMIT_SHA.")
@_token_variable_option
@click.option("--dry-run", is_flag=True, help="Print the note instead of posting it.")
@handle_errors
def gitlab_report_apply(
    report_file: Path, api_url: str | None, project: str | None, commit: str | None, token_variable: str, dry_run: bool
) -> None:
    """Tell the merged merge request(s) of COMMIT what apply did (applied, failed, refused, superseded)."""
    token = None if dry_run else os.environ.get(token_variable, "").strip() or None
    request = ReportRequest(report_file, api_url, project, commit, os.environ.get("CI_JOB_URL"), token, token_variable)
    outcome = run_report_apply(request)
    if dry_run:
        echo(outcome.body, nl=False)
    elif outcome.skipped:
        echo(outcome.skipped)
    else:
        where = ", ".join(f"!{iid}" for iid in outcome.merge_requests) or "no merged merge request of this commit"
        echo(f"Reported the apply on {where}.")


@main.command("init")
@click.option(
    "--region",
    required=True,
    help="The tenant's OCP region: EU1, US1, US2, US1W, CA1 or FRANKFURT (the last two need --base-url).",
)
@click.option(
    "--group", "group_ids", multiple=True, help="A GROUP_ID to manage (repeatable). Default: every group live now."
)
@click.option(
    "--base-url", metavar="URL", help="The Integrations API base instead of the region's, e.g. the local emulator's."
)
@click.option("--desired", default="desired", show_default=True, help="Folder of desired YAML, relative to the file.")
@click.option("--force", is_flag=True, help="Replace an existing numsync.yaml.")
@_json_format_option("text: the groups found and the file written; json: the same as one object.")
@click.pass_context
@handle_errors
def init(
    ctx: click.Context,
    region: str,
    group_ids: tuple[str, ...],
    base_url: str | None,
    desired: str,
    force: bool,
    output_format: str,
) -> None:
    """Write a first numsync.yaml (--config, default numsync.yaml); then run numsync import.

    Without --group, the groups come from a live export (credentials from the environment, as
    for every command) and are listed with their numbers. Every group starts report-only.
    """
    from numsync.workflow import init as bootstrap

    request = bootstrap.InitRequest(
        ctx.obj["config_path"], region, group_ids, base_url, desired, force, ctx.obj["env_name"], os.environ
    )
    observer = _Echo()
    outcome = bootstrap.run_init(request, on_retry=retry_callback(observer), on_otp_wait=observer.waiting_for_code)
    if output_format == "json":
        rendered = outcome_reports.render_init(
            outcome.path, outcome.environment, outcome.groups, outcome.discovered_from
        )
        echo(rendered, nl=False)
        return
    if outcome.discovered_from:
        echo(f"{len(outcome.groups)} group(s) in the live export of {outcome.discovered_from}:")
        for group_id, count in outcome.groups.items():
            echo(f"  {visible(group_id)}: {count} number(s)")  # a live value: no bidi override or forged line
    # the next command must read the file just written: a bare "numsync import" reads ./numsync.yaml
    given = Path(ctx.obj["config_path"])
    config_flag = "" if given == Path(DEFAULT_CONFIG) else f"--config {shlex.quote(str(given))} "
    echo(
        f"wrote {outcome.path} (environment {outcome.environment!r}, {len(outcome.groups)} group(s)); "
        f"next: numsync {config_flag}import"
    )


def _register_emulator() -> None:
    try:
        from numsync.emulator.command import emulator_command
    except ImportError:  # pragma: no cover - the emulator ships in the package
        return
    main.add_command(emulator_command, "emulator")


_register_emulator()


def run() -> None:
    """The ``numsync`` console script: tunes the garbage collector for a batch run once, then runs the CLI."""
    tune_for_batch_run()
    main()


# ---------------------------------------------------------------------------- environments (issue #12)


@main.command("environments")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one block per environment; json: a list of {name, region, base_url, token_url}.",
)
@click.pass_context
@handle_errors
def environments_command(ctx: click.Context, output_format: str) -> None:
    """Show every environment's resolved API and token endpoints. Needs no credentials and no network."""
    endpoints = environment_endpoints(_config(ctx), ctx.obj["env_name"])
    echo(render_environments_json(endpoints) if output_format == "json" else render_environments_text(endpoints))
