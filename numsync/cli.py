"""The numsync command line: thin wrappers over the pipeline. The only module that prints.

Exit codes: 0 success (no changes with --detailed-exitcode), 1 error, 2 changes present
(``plan --detailed-exitcode``) or a usage error.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .apply import apply_plan
from .config import DEFAULT_CONFIG, Config, ConfigError, Environment, load_config
from .csvio import ExportFormatError, parse_export
from .desired import DesiredError
from .importer import render_desired
from .ocp import ApiError, AuthError
from .pipeline import StalePlanError, check_fresh, connect, connect_readonly, desired_at_commit, export_live, load_environment_desired, plan_environment, verify
from .plan import Plan
from .planner import PlanningError
from . import rehearse as rehearsal
from . import drift as drift_mod
from . import safety
from .reports import drift as drift_reports
from .emit import write_upload_files
from .reports import text

F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """An error already explained to the user; exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


def handle_errors(func: F) -> F:
    """Turn numsync's errors into one clear paragraph on stderr and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, DesiredError) as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            what = "numsync.yaml" if isinstance(exc, ConfigError) else "desired files"
            raise Failure(f"{len(exc.problems)} problem(s) in {what}; nothing was sent to OCP") from None
        except AuthError as exc:
            raise Failure(f"{exc} Nothing was written.") from None
        except ExportFormatError as exc:
            raise Failure(f"the live export cannot be read: {exc}. Nothing was planned or written.") from None
        except ApiError as exc:
            raise Failure(str(exc)) from None
        except PlanningError as exc:
            raise Failure(f"{exc}\nNothing was written.") from None
        except StalePlanError as exc:
            raise Failure(f"{exc}. Nothing was written.") from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(__version__, prog_name="numsync")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG, show_default=True, envvar="NUMSYNC_CONFIG", help="numsync.yaml to read.")
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
@click.pass_context
@handle_errors
def validate(ctx: click.Context) -> None:
    """Check numsync.yaml and the desired files offline; report every problem as path:line:column."""
    config = _config(ctx)
    names = [ctx.obj["env_name"]] if ctx.obj["env_name"] else list(config.environments)
    problems = []
    numbers = 0
    for name in names:
        env = config.environment(name)
        try:
            numbers += len(load_environment_desired(env).records)
        except DesiredError as exc:
            problems += exc.problems
    for problem in problems:
        click.echo(str(problem))
    if problems:
        raise Failure(f"{len(problems)} problem(s) found")
    click.echo(f"OK: {numbers} number(s) in {len(names)} environment(s), no problems.")


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the CSV here instead of stdout.")
@click.pass_context
@handle_errors
def export(ctx: click.Context, out: Path | None) -> None:
    """Download the live numbers CSV exactly as OCP sends it."""
    env = _env(ctx)
    with connect(env) as client:
        data = client.export()
    if out:
        out.write_bytes(data)
        click.echo(f"wrote {len(data)} bytes to {out}", err=True)
    else:
        sys.stdout.buffer.write(data)


def safety_options(func: F) -> F:
    """The flags that lift a safety check after review (see numsync/safety.py)."""
    func = click.option("--allow-small-export", is_flag=True, help="Plan even though the live export is far smaller than desired (first rollout).")(func)
    func = click.option("--override-thresholds", is_flag=True, help="Apply even though the plan exceeds max_deletes / max_change_percent.")(func)
    func = click.option("--allow-replace", is_flag=True, help="Allow numbers that change group to be deleted and created again.")(func)
    return func


def _enforce_safety(the_plan: Plan, env: Environment, allow_replace: bool, override_thresholds: bool, allow_small_export: bool) -> None:
    violations = safety.check(the_plan, env, safety.Overrides(allow_replace, override_thresholds, allow_small_export))
    if violations:
        for v in violations:
            click.echo(f"Refused: {v}", err=True)
        raise Failure(f"{len(violations)} safety check(s) failed (above); nothing was written")


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan as JSON for a later 'numsync apply PLAN'.")
@click.option("--emit-csv", type=click.Path(file_okay=False, path_type=Path), help="Write the exact upload files (and a spreadsheet-safe review.csv) into this folder.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.")
@click.option("--rehearse", is_flag=True, help="Also apply the plan to a local emulator seeded from this export and report whether it converges.")
@safety_options
@click.pass_context
@handle_errors
def plan(ctx: click.Context, out: Path | None, emit_csv: Path | None, detailed_exitcode: bool, rehearse: bool, allow_replace: bool, override_thresholds: bool, allow_small_export: bool) -> None:
    """Show what apply would change: export live, diff with desired, plan the operation files."""
    env = _env(ctx)
    desired = load_environment_desired(env)
    with connect(env) as client:
        live_csv = client.export()
    live = parse_export(live_csv)
    result = plan_environment(env, desired, live).plan
    click.echo(text.render_plan(result))
    if out:
        out.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        click.echo(f"Saved the plan to {out}; apply it with: numsync apply {out}")
    if emit_csv:
        for path in write_upload_files(result, emit_csv):
            click.echo(f"wrote {path}")
    if rehearse and not result.empty:
        click.echo("\nRehearsal on a local emulator seeded from this export:")
        outcome = rehearsal.rehearse(result, env, live_csv, desired.records)
        click.echo(text.render_apply(outcome.result))
        click.echo(text.render_verify(outcome.remaining))
        if not outcome.ok:
            raise Failure("the rehearsal did not converge (above); fix the desired files before applying. Nothing was written to OCP")
    _enforce_safety(result, env, allow_replace, override_thresholds, allow_small_export)
    if detailed_exitcode and not result.empty:
        ctx.exit(2)


@main.command("import")
@click.option("--group", "group_ids", multiple=True, help="Only this GROUP_ID (repeatable). Default: every managed group.")
@click.option("--force", is_flag=True, help="Overwrite existing desired files.")
@click.pass_context
@handle_errors
def import_(ctx: click.Context, group_ids: tuple[str, ...], force: bool) -> None:
    """Write desired YAML from the live export: one file per group, numbers sorted, values quoted."""
    env = _env(ctx)
    unknown = [g for g in group_ids if g not in env.groups]
    if unknown:
        raise Failure(f"group(s) {', '.join(unknown)} are not managed by environment {env.name!r}; add them under groups in numsync.yaml first")
    with connect(env) as client:
        live = export_live(client)
    files = render_desired(live, group_ids or env.groups, schema=_schema_modeline(env.desired))
    existing = [env.desired / name for name in files if (env.desired / name).exists()]
    if existing and not force:
        raise Failure(f"refusing to overwrite {', '.join(map(str, existing))}; pass --force to replace them")
    env.desired.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (env.desired / name).write_text(content, "utf-8")
        click.echo(f"wrote {env.desired / name}")


def _schema_modeline(folder: Path) -> str:
    schema = Path(__file__).parent / "schema" / "desired.schema.json"
    try:
        return os.path.relpath(schema, folder.resolve())
    except ValueError:
        return schema.as_uri()


@main.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@handle_errors
def show(plan_file: Path) -> None:
    """Render a saved plan."""
    click.echo(text.render_plan(_read_plan(plan_file)))


def _read_plan(path: Path) -> Plan:
    try:
        return Plan.from_json(json.loads(path.read_text("utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Failure(f"{path} is not a numsync plan: {exc}") from None


@main.command()
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@safety_options
@click.pass_context
@handle_errors
def apply(ctx: click.Context, plan_file: Path | None, auto_approve: bool, allow_replace: bool, override_thresholds: bool, allow_small_export: bool) -> None:
    """Apply the changes: a saved PLAN_FILE exactly, or a fresh plan after confirmation; then verify."""
    env = _env(ctx)
    desired = load_environment_desired(env)
    with connect(env) as client:
        live = export_live(client)
        if plan_file:
            the_plan = _read_plan(plan_file)
            check_fresh(the_plan, env, desired.records, live)
        else:
            the_plan = plan_environment(env, desired, live).plan
        click.echo(text.render_plan(the_plan))
        if the_plan.empty:
            return
        if the_plan.conflicts:
            raise Failure("the plan has conflicts (listed above); resolve them before applying. Nothing was written.")
        _enforce_safety(the_plan, env, allow_replace, override_thresholds, allow_small_export)
        if not plan_file and not auto_approve:
            if not sys.stdin.isatty():
                raise Failure("refusing to apply without confirmation: no terminal to ask on; pass --auto-approve (or apply a saved plan)")
            click.confirm(f"Apply these changes to {env.name}?", abort=True)
        click.echo(f"Applying to {env.name} ({env.base_url}):")
        result = apply_plan(the_plan, client, on_batch=lambda o: click.echo(text.render_batch(o)))
        click.echo(text.render_apply(result))
        remaining = verify(env, desired.records, export_live(client))
    click.echo(text.render_verify(remaining))
    if not result.ok or not remaining.empty:
        ctx.exit(1)


@main.command()
@click.option("--format", "formats", multiple=True, default=("text",), metavar="FORMAT[=FILE]", help="text, markdown, json, junit or html; =FILE writes it to a file. Repeatable.")
@click.option("--previous", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An earlier JSON drift report: items keep their first_seen, new drift is told from old.")
@click.option("--last-applied", help="The plan JSON last applied, or its git commit: tells out-of-band changes from pending applies.")
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
        with connect_readonly(env) as reader:
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
            raise click.BadParameter(f"{fmt!r} is not one of {', '.join(drift_reports.RENDERERS)}", param_hint="--format")
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


def _register_emulator() -> None:
    try:
        from .emulator.command import emulator_command
    except ImportError:  # pragma: no cover - the emulator ships in the package
        return
    main.add_command(emulator_command, "emulator")


_register_emulator()
