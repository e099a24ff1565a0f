"""The stages wired together: load → export → diff → plan → apply → verify.

Each function takes and returns plain data (the client is the one I/O handle); the CLI,
rehearsals and CI integrations call these rather than repeating the wiring.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numsync.config import Environment
from numsync.core.checks import retire_marks_in_desired, wrong_countries
from numsync.core.desired import DesiredState, load_desired
from numsync.core.diff import Diff, Scope, diff, retirement_day
from numsync.core.model import NumberRecord
from numsync.core.yamlsrc import Location, Problem
from numsync.errors import DesiredError, GitHistoryError, ScopeError, StalePlanError, UnsettledError
from numsync.ocp import Credentials, OCPAuth, OCPClient, OCPReader
from numsync.ocp.auth import DEFAULT_ACCESS_LIFETIME, token_lifetime
from numsync.ocp.rows import OperationRow
from numsync.workflow.apply import ApplyResult, BatchOutcome, Concurrency, Throttled, apply_plan
from numsync.workflow.events import Observer
from numsync.workflow.plan import Plan, make_plan
from numsync.workflow.policy import token_warning
from numsync.workflow.settle import Settled, settle
from numsync.workflow.watch import LiveWatch


def load_environment_desired(env: Environment, *, display_root: Path | None = None) -> DesiredState:
    """The desired state of ``env`` (raises desired.DesiredError with every problem).

    A group that prunes must have a desired file: a file deleted or renamed by mistake must
    never read as "delete every number of the group". A desired value that reads as its group's
    retire mark is refused too (:func:`~numsync.core.checks.retire_marks_in_desired`).
    """
    try:
        state = load_desired(
            env.desired,
            managed_groups=env.groups,
            default_provider=env.default_provider,
            display_root=display_root,
            repository=env.repository,
            cache_dir=env.cache_dir,
        )
    except DesiredError as exc:  # the countries of what did load are reported with the other problems
        if exc.state is None:
            raise
        raise DesiredError([*exc.problems, *wrong_countries(exc.state, env.groups)], exc.state) from None
    countries = wrong_countries(state, env.groups)
    if countries:
        raise DesiredError(countries, state)
    orphans = [g for g, policy in env.groups.items() if policy.prune and g not in state.groups]
    problems = [
        Problem(
            Location(str(env.desired), 1, 1),
            f"group {g!r} prunes (prune: true) but no desired file declares it; numsync would delete all its numbers. "
            f"Restore its file (group_id: {g}), or set prune: false",
            "prune-without-file",
        )
        for g in orphans
    ]
    problems += retire_marks_in_desired(state, env.groups)
    if problems:
        raise DesiredError(problems, state)
    return state


def _auth(env: Environment, creds: Credentials, on_otp_wait: Callable[[float], None] | None) -> OCPAuth:
    return OCPAuth(env.token_url, creds, otp=env.otp, on_otp_wait=on_otp_wait)


def connect(
    env: Environment,
    credentials: Credentials | None = None,
    *,
    on_otp_wait: Callable[[float], None] | None = None,
    **options: Any,
) -> OCPClient:
    """A client for ``env``'s API; credentials from the variables ``env`` names by default (raises AuthError if none).

    ``on_otp_wait(seconds)`` is told before numsync waits for the next two-factor time step (an observer's
    :meth:`~numsync.workflow.events.Observer.waiting_for_code`). ``options`` go to :class:`OCPClient`
    (``on_retry``, ``retry``, ``transport``); ``retry`` defaults to the environment's ``retry:`` block.
    """
    env.require_endpoints()  # a ${VAR} without a value: refused here, before credentials are even read
    creds = credentials or Credentials.from_env(variables=env.credentials)
    options.setdefault("retry", env.retry)
    auth = _auth(env, creds, on_otp_wait)
    return OCPClient(env.base_url, auth, timeout=env.timeout, verify=env.ca_bundle or True, proxy=env.proxy, **options)


def connect_readonly(
    env: Environment,
    credentials: Credentials | None = None,
    *,
    on_otp_wait: Callable[[float], None] | None = None,
    **options: Any,
) -> OCPReader:
    """A session for ``env`` that can only export (drift reports); see OCPReader. Options as for :func:`connect`."""
    env.require_endpoints()
    creds = credentials or Credentials.from_env(variables=env.credentials)
    options.setdefault("retry", env.retry)
    auth = _auth(env, creds, on_otp_wait)
    return OCPReader(env.base_url, auth, timeout=env.timeout, verify=env.ca_bundle or True, proxy=env.proxy, **options)


def check_token_lifetime(credentials: Credentials, needed: float, warn: Callable[[str], None]) -> bool:
    """Tell ``warn`` when a pre-issued token will likely expire before ``needed`` seconds of work are done;
    True when it did."""
    if not credentials.token:
        return False
    message = token_warning(
        token_lifetime(credentials.token), needed, credentials.variables.token, DEFAULT_ACCESS_LIFETIME
    )
    if message:
        warn(message)
    return message is not None


def export_live(client: OCPReader, observer: Observer | None = None) -> list[NumberRecord]:
    """Export and parse the live numbers as they arrive (raises ApiError, AuthError, ExportFormatError).

    ``observer`` hears the bytes as they arrive, what the export reader accepted but found odd
    (``warned``) and the stage's end (``export_progress``, ``exported``).
    """
    if observer is None:
        return client.export_records().records
    started = time.monotonic()
    size = 0

    def progress(received: int, total: int | None) -> None:
        nonlocal size
        size = received
        observer.export_progress(received, total)

    read = client.export_records(progress)
    for warning in read.warnings:
        observer.warned(warning)
    observer.exported(len(read.records), size, time.monotonic() - started)
    return read.records


def load_desired_observed(env: Environment, observer: Observer) -> DesiredState:
    """:func:`load_environment_desired`, telling ``observer`` when it starts and what it loaded."""
    observer.loading_desired()
    started = time.monotonic()
    state = load_environment_desired(env)
    observer.desired_loaded(len(state.records), len(state.files), time.monotonic() - started)
    return state


@dataclass(frozen=True, slots=True)
class Planned:
    """A plan with the inputs it came from."""

    plan: Plan
    diff: Diff
    desired: DesiredState
    live: list[NumberRecord]


def git_commit(folder: Path) -> str | None:
    """The git commit checked out at ``folder`` (with ``-dirty`` when its files differ from it), or None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def desired_at_commit(env: Environment, commit: str) -> DesiredState:
    """The desired state of ``env`` as it was at git ``commit`` (raises desired.DesiredError, or GitHistoryError when git cannot provide it)."""
    folder = env.desired
    prefix = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-prefix"], capture_output=True, text=True)
    if prefix.returncode != 0:
        raise GitHistoryError(f"{folder} is not in a git repository: {prefix.stderr.strip()}")
    tree = f"{commit}:{prefix.stdout.strip()}" if prefix.stdout.strip() else commit
    top = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True
    ).stdout.strip()
    archive = subprocess.run(["git", "-C", top, "archive", "--format=tar", tree], capture_output=True)
    if archive.returncode != 0:
        raise GitHistoryError(
            f"cannot read {folder} at commit {commit}: {archive.stderr.decode(errors='replace').strip()}"
        )
    with tempfile.TemporaryDirectory(prefix="numsync-desired-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        return load_desired(
            Path(tmp), managed_groups=env.groups, default_provider=env.default_provider, display_root=Path(tmp)
        )


def plan_environment(
    env: Environment, desired: DesiredState, live: list[NumberRecord], scope: Scope | None = None
) -> Planned:
    """Diff and plan one environment, or only ``scope`` of it (raises planner.PlanningError)."""
    result = diff(desired.records, live, env.groups, scope)
    return Planned(
        make_plan(
            env,
            desired.records,
            live,
            result,
            git_commit=git_commit(env.desired),
            scope=scope,
            desired_hash=desired.fingerprint,  # kept with the cache: not hashed again
        ),
        result,
        desired,
        live,
    )


def check_scope(scope: Scope, env: Environment, desired: Mapping[str, NumberRecord], live: list[NumberRecord]) -> None:
    """Raise ScopeError when ``scope`` names a group ``env`` does not manage, or a number that is neither
    desired nor live in a managed group: a typo must not read as "No changes"."""
    problems = []
    unknown_groups = sorted(scope.groups - env.groups.keys())
    if unknown_groups:
        problems.append(
            f"--group {', '.join(unknown_groups)}: not managed by environment {env.name!r} "
            f"(its groups: {', '.join(env.groups)})"
        )
    known = desired.keys() | {r.number for r in live if r.group_id in env.groups}
    unknown_numbers = sorted(scope.numbers - known)
    if unknown_numbers:
        problems.append(
            f"--number {', '.join(unknown_numbers)}: in no desired file and not live in a managed group; check the number"
        )
    if problems:
        raise ScopeError("; ".join(problems))


def check_fresh(plan: Plan, env: Environment, now: Plan) -> None:
    """Raise StalePlanError unless ``plan`` was made for ``env`` from exactly the desired and live state ``now``
    was just planned from (their fingerprints: ``now`` has them already, so nothing is hashed again)."""
    if plan.environment != env.name:
        raise StalePlanError(f"the plan is for environment {plan.environment!r}, not {env.name!r}")
    reasons = []
    today = retirement_day(env.groups)  # when a group retires, the day is an input of the plan
    if (today.isoformat() if today else None) != plan.planned_on:
        made = f"on {plan.planned_on}" if plan.planned_on else "before any group retired numbers"
        reasons.append(
            f"it was made {made}, and retirements (retire_after) are judged by the day"
            + (f" (today is {today.isoformat()})" if today else "")
        )
    if now.live_fingerprint != plan.live_fingerprint:
        reasons.append("the live numbers changed since it was made")
    if now.desired_hash != plan.desired_hash:
        reasons.append("the desired files changed since it was made")
    if reasons:
        raise StalePlanError(f"plan is stale: {' and '.join(reasons)}; run plan again")


def verify(
    env: Environment, desired: Mapping[str, NumberRecord], live: list[NumberRecord], scope: Scope | None = None
) -> Diff:
    """What still differs after an apply, within ``scope`` (an empty diff means converged)."""
    return diff(desired, live, env.groups, scope)


def apply_with_recovery(
    env: Environment,
    desired: Mapping[str, NumberRecord],
    client: OCPClient,
    the_plan: Plan,
    *,
    live: list[NumberRecord] | None = None,
    on_batch: Callable[[BatchOutcome], None] | None = None,
    on_replan: Callable[[Plan, str], None] | None = None,
    on_sending: Callable[[int, int, Sequence[OperationRow]], None] | None = None,
    on_settled: Callable[[Settled], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    before_phase: Callable[[int], str | None] | None = None,
    max_rounds: int = 5,
    concurrency: Concurrency | int = 1,
    on_throttled: Callable[[Throttled], None] | None = None,
) -> ApplyResult:
    """Apply ``the_plan``; after an ambiguous failure let live settle, re-plan what is left, continue.

    Writes are never resent blindly: the remainder is planned from live once it has settled
    (settle.py: OCP may finish a file after its answer was lost, and the export may lag), so
    a Create that did land is not sent again, a Delete that did land is done, and a
    replacement's Create is only sent once the settled export shows its Delete done. The
    re-plan is confined to the numbers of the original plan, less those whose rows OCP
    refused; if live now needs changes elsewhere, the run stops (someone else is changing
    the tenant). With ``live`` (the export the plan was made from), every phase after the
    first starts only when live moved as the rows sent predict (watch.py), else the run stops.
    ``before_phase(p)`` (the change freeze, checked again) is asked before that, and a reason it
    names stops the run the same way. ``concurrency``: files of a phase in flight at once (see
    apply.py), kept lowered across rounds once OCP answered 429. Returns the combined result;
    ``interrupted`` says why it stopped early, if it did.
    """
    limiter = concurrency if isinstance(concurrency, Concurrency) else Concurrency(concurrency)
    planned_numbers = {c.number for c in the_plan.changes}
    total_rows = sum(len(p.rows) for p in the_plan.phases)
    total = ApplyResult(concurrency=limiter.limit, planned=total_rows)
    current = the_plan
    watch = LiveWatch(env, client, live, on_settled) if live is not None else None

    def phase_check(phase: int) -> str | None:
        return (before_phase(phase) if before_phase else None) or (watch.check(phase) if watch else None)

    def batch_done(outcome: BatchOutcome) -> None:
        if watch:
            watch.record(outcome)
        if on_batch:
            on_batch(outcome)

    for _round_no in range(1, max_rounds + 1):
        result = apply_plan(
            current,
            client,
            on_batch=batch_done,
            on_sending=on_sending,
            should_stop=should_stop,
            before_phase=phase_check if watch or before_phase else None,
            concurrency=limiter,
            on_throttled=on_throttled,
        )
        total.requests += result.requests
        total.throttled += result.throttled
        total.concurrency = result.concurrency
        total.failures += result.failures
        total.skipped += result.skipped
        if result.stopped:
            total.interrupted, total.stopped = result.interrupted, True
            total.applied += result.applied
            return total
        if not result.interrupted:
            total.applied = total_rows - len(total.failures) - len(total.skipped)
            return total
        total.unknown_outcomes += 1
        total.applied += result.applied  # kept if a later round gives up, cannot settle or finds another writer
        try:
            settled = settle(client, env)
        except UnsettledError as exc:
            total.interrupted = f"{result.interrupted}\n{exc}."
            return total
        if on_settled:
            on_settled(settled)
        if watch:
            watch.rebase(settled.live)
        result_diff = diff(desired, settled.live, env.groups, the_plan.scope)
        failed = {f.row.number for f in total.failures} | {r.number for r in total.skipped}
        outside = {c.number for c in result_diff.changes} - planned_numbers
        if outside:
            total.interrupted = (
                f"{result.interrupted}\nAfter re-reading live state, {len(outside)} number(s) outside this plan also differ "
                f"(e.g. {sorted(outside)[0]}): someone else may be changing the tenant. Stopped; run plan again."
            )
            return total
        result_diff.changes = [c for c in result_diff.changes if c.number not in failed]
        current = make_plan(env, desired, settled.live, result_diff, scope=the_plan.scope)
        if current.empty:
            total.applied = total_rows - len(total.failures) - len(total.skipped)
            return total
        if on_replan:
            on_replan(current, result.interrupted)
    total.interrupted = f"gave up after {max_rounds} rounds of ambiguous failures; run plan again when OCP is healthy"
    return total


def verify_settled(
    env: Environment,
    desired: Mapping[str, NumberRecord],
    client: OCPReader,
    result: ApplyResult,
    *,
    on_settled: Callable[[Settled], None] | None = None,
    scope: Scope | None = None,
) -> Diff:
    """What still differs after an apply, read from live once it is stable.

    Every file answered tells what it did, so after a run without unknown outcomes an export
    that differs only where OCP refused rows is the truth. Otherwise — an outcome was unknown
    (OCP may still be finishing it), or the export differs elsewhere (it may lag its writes) —
    live must settle first: "converged" is never claimed from a read that is about to change.
    A partial run (``scope``) is verified within its scope.
    """
    live = export_live(client)
    remaining = verify(env, desired, live, scope)
    refused = {f.row.number for f in result.failures} | {r.number for r in result.skipped}
    explained = all(c.number in refused for c in remaining.changes)  # only numbers OCP said it did not change
    if explained and not result.unknown_outcomes and result.interrupted is None:
        return remaining
    settled = settle(client, env, live)
    if on_settled:
        on_settled(settled)
    return verify(env, desired, settled.live, scope)
