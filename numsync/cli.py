"""The numsync command line: thin wrappers over the pipeline. The only module that prints.

Exit codes: 0 success (no changes with --detailed-exitcode, no drift), 1 any error
(usage errors included), 2 changes present (``plan --detailed-exitcode``) or drift found.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from numsync import __version__
from numsync.config import DEFAULT_CONFIG, Config, Environment, load_config
from numsync.core import drift as drift_mod
from numsync.core import safety
from numsync.errors import ConfigError, DesiredError, NumsyncError, PlanFileError
from numsync.gctuning import tune_for_batch_run
from numsync.ocp import Credentials
from numsync.ocp.csvcodec import parse_export
from numsync.reports import drift as drift_reports
from numsync.reports import text
from numsync.workflow import pipeline as pipeline_module
from numsync.workflow import rehearse as rehearsal
from numsync.workflow.apply import BatchOutcome
from numsync.workflow.emit import write_upload_files
from numsync.workflow.environments import environment_endpoints
from numsync.workflow.environments import render_json as render_environments_json
from numsync.workflow.environments import render_text as render_environments_text
from numsync.workflow.importer import render_desired
from numsync.workflow.journal import Journal
from numsync.workflow.pipeline import (
    apply_with_recovery,
    check_fresh,
    connect,
    connect_readonly,
    desired_at_commit,
    export_live,
    load_environment_desired,
    plan_environment,
    verify,
)
from numsync.workflow.plan import Plan

F = TypeVar("F", bound=Callable[..., Any])


SECRET_VARIABLES = ("OCP_PASSWORD", "OCP_TOKEN", "OCP_OTP", "OCP_TOTP_SECRET")


def redact(text: str) -> str:
    """``text`` with the values of the credential variables replaced by ``***`` (raw and stripped)."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name) or ""
        for secret in {value, value.strip()}:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text


class Failure(click.ClickException):
    """An error already explained to the user; exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {redact(self.message)}", err=True)


def handle_errors(func: F) -> F:
    """Turn numsync's errors into one clear paragraph on stderr and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (NumsyncError, OSError) as exc:
            for line in exc.details if isinstance(exc, NumsyncError) else []:
                click.echo(line, err=True)
            raise Failure(_explain(exc)) from None

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
            exc.exit_code = 1
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = 1
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
@click.pass_context
def main(ctx: click.Context, config_path: Path, env_name: str | None) -> None:
    """numsync: OCP phone numbers as code — validate, plan, apply."""
    ctx.obj = {"config_path": config_path, "env_name": env_name}


def _config(ctx: click.Context) -> Config:
    return load_config(ctx.obj["config_path"])


def _env(ctx: click.Context) -> Environment:
    return _config(ctx).environment(ctx.obj["env_name"])


@main.command()
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["text", "json", "codequality"]),
    default="text",
    show_default=True,
    help="text: path:line:column lines; json: a list of problems; codequality: GitLab Code Quality JSON.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file (the count still goes to stderr).",
)
@click.pass_context
@handle_errors
def validate(ctx: click.Context, report_format: str, output: Path | None) -> None:
    """Check numsync.yaml and the desired files offline; report every problem as path:line:column.

    Never needs credentials or the network. Exits 1 when any problem is an error; warnings
    (e.g. a number without a provider) are reported but do not fail.
    """
    from numsync.core.checks import check_desired
    from numsync.reports import problems as reports

    problems: list[Any] = []
    numbers = 0
    names: list[str] = []
    try:
        config = _config(ctx)
        names = [ctx.obj["env_name"]] if ctx.obj["env_name"] else list(config.environments)
    except ConfigError as exc:
        problems += exc.problems
    for name in names:
        try:
            env = config.environment(name)
        except ConfigError as exc:
            problems += exc.problems
            continue
        try:
            state = load_environment_desired(env)
        except DesiredError as exc:
            problems += exc.problems
            state = exc.state
        if state is not None:
            numbers += len(state.records)
            problems += check_desired(state)
    problems = reports.ordered(problems)
    scope = f"{numbers} number(s) in {len(names)} environment(s)"
    count = reports.count_line(problems, scope)
    if report_format == "text":
        report = reports.render_text(problems, scope)
    elif report_format == "json":
        report = reports.render_json(problems)
    else:
        report = reports.render_codequality(problems)
    if output:
        try:
            output.write_text(report, "utf-8")
        except OSError as exc:
            raise Failure(f"cannot write the report to {output}: {exc}") from None
        click.echo(count, err=True)
    elif report_format == "text":
        click.echo(report, nl=False)
    else:
        click.echo(report, nl=False)
        click.echo(count, err=True)
    if reports.is_failure(problems):
        ctx.exit(1)


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the CSV here instead of stdout.")
@click.pass_context
@handle_errors
def export(ctx: click.Context, out: Path | None) -> None:
    """Download the live numbers CSV exactly as OCP sends it."""
    env = _env(ctx)
    with connect(env, on_retry=_say_retry) as client:
        data = client.export()
    if out:
        out.write_bytes(data)
        click.echo(f"wrote {len(data)} bytes to {out}", err=True)
    else:
        sys.stdout.buffer.write(data)


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


def _enforce_safety(
    the_plan: Plan, env: Environment, allow_replace: bool, override_thresholds: bool, allow_small_export: bool
) -> None:
    violations = safety.check(the_plan, env, safety.Overrides(allow_replace, override_thresholds, allow_small_export))
    if violations:
        for v in violations:
            click.echo(f"Refused: {v}", err=True)
        if os.environ.get("GITLAB_CI"):
            click.echo(gitlab_override_hint(violations), err=True)
        raise Failure(f"{len(violations)} safety check(s) failed (above); nothing was written")


@main.command()
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
    help="text (default), markdown or json; =FILE writes it to a file instead of stdout. Repeatable.",
)
@click.option(
    "--gitlab-report",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write GitLab\'s Terraform report ({"create": N, "update": N, "delete": N}) here, for artifacts:reports:terraform.',
)
@safety_options
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
) -> None:
    """Show what apply would change: export live, diff with desired, plan the operation files."""
    outputs = _parse_plan_formats(formats)
    env = _env(ctx)
    desired = load_environment_desired(env)
    with connect(env, on_retry=_say_retry) as client:
        live_csv = client.export()
    live = parse_export(live_csv)
    result = plan_environment(env, desired, live).plan
    # Notes go to stderr when stdout carries Markdown or JSON, so it can be redirected as is.
    notes_to_stderr = _emit_plan(
        result, env, outputs, gitlab_report, safety.Overrides(allow_replace, override_thresholds, allow_small_export)
    )
    frozen = env.freeze.active()
    if frozen and not result.empty:  # plan still runs in a freeze (review goes on); say what apply will do
        click.echo(
            f'Note: a change freeze is in force ({frozen}); apply will refuse without --override-freeze "<why>".',
            err=notes_to_stderr,
        )
    if out:
        out.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        click.echo(f"Saved the plan to {out}; apply it with: numsync apply {out}", err=notes_to_stderr)
    if emit_csv:
        for path in write_upload_files(result, emit_csv):
            click.echo(f"wrote {path}", err=notes_to_stderr)
    if rehearse and not result.empty:
        click.echo("\nRehearsal on a local emulator seeded from this export:", err=notes_to_stderr)
        outcome = rehearsal.rehearse(result, env, live_csv, desired.records)
        click.echo(text.render_apply(outcome.result, desired), err=notes_to_stderr)
        click.echo(text.render_verify(outcome.remaining), err=notes_to_stderr)
        if not outcome.ok:
            raise Failure(
                "the rehearsal did not converge (above); fix the desired files before applying. Nothing was written to OCP"
            )
    _enforce_safety(result, env, allow_replace, override_thresholds, allow_small_export)
    if detailed_exitcode and not result.empty:
        ctx.exit(2)


@main.command("import")
@click.option(
    "--group", "group_ids", multiple=True, help="Only this GROUP_ID (repeatable). Default: every managed group."
)
@click.option("--force", is_flag=True, help="Overwrite existing desired files.")
@click.pass_context
@handle_errors
def import_(ctx: click.Context, group_ids: tuple[str, ...], force: bool) -> None:
    """Write desired YAML from the live export: one file per group, numbers sorted, values quoted."""
    env = _env(ctx)
    unknown = [g for g in group_ids if g not in env.groups]
    if unknown:
        raise Failure(
            f"group(s) {', '.join(unknown)} are not managed by environment {env.name!r}; add them under groups in numsync.yaml first"
        )
    with connect(env, on_retry=_say_retry) as client:
        live = export_live(client)
    files = render_desired(live, group_ids or env.groups, schema=_schema_modeline(env.desired))
    existing = [env.desired / name for name in files if (env.desired / name).exists()]
    if existing and not force:
        raise Failure(f"refusing to overwrite {', '.join(map(str, existing))}; pass --force to replace them")
    env.desired.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (env.desired / name).write_text(content, "utf-8")
        click.echo(f"wrote {env.desired / name}")


def _schema_modeline(folder: Path) -> str | None:
    """The desired schema as a path relative to ``folder``, when both are in one git checkout.

    Anywhere else the path would name this machine's install of numsync and break for
    everyone else once committed, so the files get no modeline (``numsync schema`` prints it).
    """
    schema = (Path(__file__).parent / "schema" / "desired.schema.json").resolve()
    folder = folder.resolve()
    root = next((p for p in (folder, *folder.parents) if (p / ".git").exists()), None)
    if root is None or not schema.is_relative_to(root):
        return None
    return Path(os.path.relpath(schema, folder)).as_posix()


@main.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@handle_errors
def show(plan_file: Path) -> None:
    """Render a saved plan."""
    click.echo(text.render_plan(_read_plan(plan_file)))


def _read_plan(path: Path) -> Plan:
    try:
        return Plan.from_json(json.loads(path.read_text("utf-8")))
    except (PlanFileError, ValueError, UnicodeDecodeError) as exc:
        raise Failure(f"{path} is not a numsync plan: {exc}") from None


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
@safety_options
@click.pass_context
@handle_errors
def apply(
    ctx: click.Context,
    plan_file: Path | None,
    auto_approve: bool,
    override_freeze: str | None,
    journal_path: Path | None,
    allow_replace: bool,
    override_thresholds: bool,
    allow_small_export: bool,
) -> None:
    """Apply the changes: a saved PLAN_FILE exactly, or a fresh plan after confirmation; then verify."""
    env = _env(ctx)
    desired = load_environment_desired(env)
    credentials = Credentials.from_env()
    if journal_path is None and os.environ.get("CI"):
        journal_path = Path("numsync-journal.jsonl")
    with (
        Journal(journal_path, credentials.secrets()) as journal,
        connect(env, credentials, on_retry=_journal_retry(journal)) as client,
    ):
        live = export_live(client)
        if plan_file:
            the_plan = _read_plan(plan_file)
            check_fresh(the_plan, env, desired.records, live)
            if the_plan.to_json()["phases"] != plan_environment(env, desired, live).plan.to_json()["phases"]:
                raise Failure(
                    f"{plan_file}: its operations do not follow from the desired and live state it records (was the file edited?). Run plan again. Nothing was written"
                )
        else:
            the_plan = plan_environment(env, desired, live).plan
        click.echo(text.render_plan(the_plan))
        if the_plan.conflicts:
            raise Failure("the plan has conflicts (listed above); resolve them before applying. Nothing was written.")
        if the_plan.empty:
            return
        _enforce_safety(the_plan, env, allow_replace, override_thresholds, allow_small_export)
        frozen = env.freeze.active()
        if frozen and not (override_freeze or "").strip():
            blank = (
                "--override-freeze was given a blank reason, which does not count. "
                if override_freeze is not None
                else ""
            )
            raise Failure(
                f'apply refused: a change freeze is in force: {frozen}. Nothing was written. {blank}To apply anyway, pass --override-freeze "<why>" (recorded in the journal)'
            )
        if frozen:
            journal.write("freeze-override", freeze=frozen, reason=override_freeze)
            click.echo(f"Change freeze in force ({frozen}); overridden: {redact(override_freeze or '')}", err=True)
        if not plan_file and not auto_approve:
            if not sys.stdin.isatty():
                raise Failure(
                    "refusing to apply without confirmation: no terminal to ask on; pass --auto-approve (or apply a saved plan)"
                )
            click.confirm(f"Apply these changes to {env.name}?", abort=True)
        click.echo(f"Applying to {env.name} ({env.base_url}):")
        journal.write(
            "apply-start",
            environment=env.name,
            summary=the_plan.summary_line(),
            requests=the_plan.request_count(),
            git_commit=the_plan.git_commit,
        )

        def on_batch(outcome: BatchOutcome) -> None:
            journal.write("request", **outcome.to_json())
            click.echo(text.render_batch(outcome))

        def on_replan(remaining_plan: Plan, why: str) -> None:
            journal.write("replan", reason=why, summary=remaining_plan.summary_line())
            click.echo(
                f"  outcome unknown ({why.splitlines()[0]}); re-read live state and re-planned the rest: {remaining_plan.summary_line()}"
            )

        result = apply_with_recovery(env, desired.records, client, the_plan, on_batch=on_batch, on_replan=on_replan)
        click.echo(text.render_apply(result, desired))
        remaining = verify(env, desired.records, export_live(client))
        journal.write(
            "apply-end",
            applied=result.applied,
            failed=len(result.failures),
            skipped=len(result.skipped),
            interrupted=result.interrupted,
            converged=remaining.empty,
        )
    click.echo(text.render_verify(remaining))
    if not result.ok or not remaining.empty:
        ctx.exit(1)


@main.command()
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("text",),
    metavar="FORMAT[=FILE]",
    help="text, markdown, json, junit or html; =FILE writes it to a file. Repeatable.",
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
@click.pass_context
@handle_errors
def drift(ctx: click.Context, formats: tuple[str, ...], previous: Path | None, last_applied: str | None) -> None:
    """Report how live differs from desired (read-only). Exit 0: no drift, 2: drift, 1: error.

    --env all (or no --env) reports every environment."""
    outputs = _parse_formats(formats)
    config = _config(ctx)
    name = ctx.obj["env_name"]
    names = list(config.environments) if name in (None, "all") else [config.environment(name).name]
    seen = drift_mod.previous_first_seen(json.loads(previous.read_text("utf-8"))) if previous else {}
    now = drift_mod.now_utc()
    report = drift_mod.DriftReport(now, [])
    for env_name in names:
        env = config.environment(env_name)
        desired = load_environment_desired(env)
        with connect_readonly(env, on_retry=_say_retry) as reader:
            live = export_live(reader)
        env_drift = drift_mod.classify(env, verify(env, desired.records, live), live, desired.records)
        if last_applied:
            try:
                applied = desired_at_commit(env, _commit_of(last_applied))
            except RuntimeError as exc:
                raise Failure(str(exc)) from None
            drift_mod.attribute(env_drift, desired.records, applied.records)
        drift_mod.age(env_drift, seen, now)
        drift_mod.suppress(env_drift, env.suppressions, datetime.datetime.fromisoformat(now).date())
        report.environments.append(env_drift)
    for fmt, path in outputs:
        rendered = drift_reports.RENDERERS[fmt](report)
        if path:
            path.write_text(rendered, "utf-8")
            click.echo(f"wrote {fmt} report to {path}", err=True)
        else:
            click.echo(rendered.rstrip("\n"))
    if report.drifted:
        ctx.exit(2)


def _parse_formats(formats: tuple[str, ...]) -> list[tuple[str, Path | None]]:
    outputs = []
    for spec in formats:
        fmt, _, path = spec.partition("=")
        if fmt not in drift_reports.RENDERERS:
            raise click.BadParameter(
                f"{fmt!r} is not one of {', '.join(drift_reports.RENDERERS)}", param_hint="--format"
            )
        outputs.append((fmt, Path(path) if path else None))
    return outputs


def _commit_of(last_applied: str) -> str:
    path = Path(last_applied)
    if path.is_file():
        commit = _read_plan(path).git_commit
        if not commit:
            raise Failure(f"{path} records no git commit (it was made outside git); pass the commit instead")
        return commit.removesuffix("-dirty")
    return last_applied


def _say_retry(request: Any, reason: str, delay: float) -> None:
    """Tell the user why nothing seems to happen: a retry can wait up to minutes (Retry-After)."""
    click.echo(f"  {request.method} {request.url.path}: {reason}, retrying in {delay:.1f}s", err=True)


def _journal_retry(journal: Journal) -> Callable[..., None]:
    def on_retry(request: Any, reason: str, delay: float) -> None:
        journal.write("retry", method=request.method, url=str(request.url), reason=reason, delay=round(delay, 3))
        _say_retry(request, reason, delay)

    return on_retry


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
    from numsync.core import fmt as formatter
    from numsync.reports.problems import text_line

    if not paths:
        config = _config(ctx)
        names = [ctx.obj["env_name"]] if ctx.obj["env_name"] else list(config.environments)
        paths = tuple(dict.fromkeys(config.environment(name).desired for name in names))
        missing = [p for p in paths if not p.is_dir()]
        if missing:
            raise Failure(f"desired folder {missing[0]} does not exist")
    files = formatter.collect(paths)
    changed = refused = 0
    for file in files:
        result = formatter.format_file(file)
        if result.problems:
            refused += 1
            for problem in result.problems:
                click.echo(text_line(problem), err=True)
            click.echo(f"not formatted: {result.shown} has {len(result.problems)} problem(s) (above)", err=True)
        elif result.changed:
            changed += 1
            if check:
                click.echo(f"would reformat {result.shown}")
            else:
                formatter.write(result)
                click.echo(f"reformatted {result.shown}")
    unchanged = len(files) - changed - refused
    verb = "would be reformatted" if check else "reformatted"
    summary = f"{changed} file(s) {verb}, {unchanged} already formatted"
    click.echo(summary + (f", {refused} not formatted because of problems" if refused else ""), err=True)
    if refused or (check and changed):
        ctx.exit(1)


@main.command("schema")
@click.option(
    "--config", "config_schema", is_flag=True, help="The schema of numsync.yaml instead of the desired files'."
)
def schema_command(config_schema: bool) -> None:
    """Print the JSON Schema of desired files (or of numsync.yaml with --config), for editors."""
    from numsync.core.schema import load_schema

    click.echo(json.dumps(load_schema("config" if config_schema else "desired"), indent=2, ensure_ascii=False))


PLAN_FORMATS = ("text", "markdown", "json")


def _parse_plan_formats(formats: tuple[str, ...]) -> list[tuple[str, Path | None]]:
    outputs = []
    for spec in formats:
        fmt, _, path = spec.partition("=")
        if fmt not in PLAN_FORMATS:
            raise click.BadParameter(f"{fmt!r} is not one of {', '.join(PLAN_FORMATS)}", param_hint="--format")
        outputs.append((fmt, Path(path) if path else None))
    return outputs


def _emit_plan(
    result: Plan,
    env: Environment,
    outputs: list[tuple[str, Path | None]],
    gitlab_report: Path | None,
    overrides: safety.Overrides,
) -> bool:
    """Print or write the plan in each format (and GitLab's Terraform report); True when stdout carries Markdown or JSON."""
    from numsync.reports import markdown, plan_json

    for fmt, path in outputs:
        if fmt == "text":
            rendered = text.render_plan(result) + "\n"
        elif fmt == "markdown":
            rendered = markdown.render_plan(result, violations=[str(v) for v in safety.check(result, env, overrides)])
        else:
            rendered = plan_json.render_json(result)
        if path:
            path.write_text(rendered, "utf-8")
            click.echo(f"wrote the {fmt} plan to {path}", err=True)
        else:
            click.echo(rendered, nl=False)
    if gitlab_report:
        gitlab_report.write_text(plan_json.render_terraform_report(result), "utf-8")
        click.echo(f"wrote the GitLab Terraform report to {gitlab_report}", err=True)
    return any(fmt != "text" and path is None for fmt, path in outputs)


def gitlab_override_hint(violations: list[safety.Violation]) -> str:
    from numsync.gitlab import override_hint

    return override_hint(violations)


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
@click.option("--project", envvar="CI_PROJECT_ID", help="Project ID or full path. Default: $CI_PROJECT_ID.")
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
    "--artifacts-url",
    metavar="URL",
    help="Where the full plan is, linked when the note is truncated. Default: $CI_JOB_URL/artifacts/browse.",
)
@click.option(
    "--token-variable",
    default="NUMSYNC_GITLAB_TOKEN",
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the access token (api scope). Never taken on the command line.",
)
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
    artifacts_url: str | None,
    token_variable: str,
    max_chars: int,
    dry_run: bool,
) -> None:
    """Post the plan to the merge request as a note; later runs update the same note.

    The note is found again by a hidden marker per environment. Without the token the
    command explains how to enable notes and exits 0, so a pipeline without one still passes.
    """
    from numsync import gitlab
    from numsync.reports import markdown

    the_plan = _read_plan(plan_file)
    violations: list[safety.Violation] = []
    with contextlib.suppress(ConfigError):  # no numsync.yaml here: the note shows the plan without its safety checks
        violations = safety.check(the_plan, _config(ctx).environment(the_plan.environment))
    hint = gitlab.override_hint(violations).removeprefix("In GitLab CI: ")
    footer = [hint[:1].upper() + hint[1:]] if violations else []
    if not artifacts_url and os.environ.get("CI_JOB_URL"):
        artifacts_url = os.environ["CI_JOB_URL"].rstrip("/") + "/artifacts/browse"
    body = gitlab.note_body(
        the_plan.environment,
        markdown.render_plan(the_plan, violations=[str(v) for v in violations]),
        commit=commit,
        artifacts_url=artifacts_url,
        max_chars=max_chars,
        footer=footer,
    )
    if dry_run:
        click.echo(body, nl=False)
        return
    token = os.environ.get(token_variable, "").strip()
    if not token:
        click.echo(
            f"{token_variable} is not set, so the plan was not posted to the merge request (it is in the job's artifacts). "
            "To enable plan notes: create a project access token with the api scope and the Reporter role, and add it under "
            f"Settings > CI/CD > Variables as {token_variable} (masked, not protected, so merge-request pipelines can read it)."
        )
        return
    missing = [
        flag
        for flag, v in (
            ("--api-url (CI_API_V4_URL)", api_url),
            ("--project (CI_PROJECT_ID)", project),
            ("--merge-request (CI_MERGE_REQUEST_IID)", mr_iid),
        )
        if not v
    ]
    if missing:
        raise Failure(f"not in a merge-request pipeline: pass {', '.join(missing)}")
    assert api_url and project and mr_iid
    mr = gitlab.MergeRequest(api_url, project, mr_iid)
    try:
        with gitlab.GitLabNotes(mr, token) as notes:
            action, note = notes.upsert(gitlab.marker(the_plan.environment), body)
    except gitlab.GitLabError as exc:
        raise Failure(str(exc).replace(token, "[token]")) from None
    click.echo(
        f"{action.capitalize()} the plan note {note.get('id', '?')} on merge request !{mr_iid} for environment {the_plan.environment!r}."
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
    endpoints = environment_endpoints(_config(ctx))
    click.echo(render_environments_json(endpoints) if output_format == "json" else render_environments_text(endpoints))


def _say_otp_wait(seconds: float) -> None:
    click.echo(f"Waiting {seconds:.0f} s for the next two-factor code (OCP accepts each code only once).", err=True)


pipeline_module.otp_wait_notice = _say_otp_wait
