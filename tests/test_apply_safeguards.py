"""Apply's safeguards against the emulator over real HTTP: merge order, the whole saved plan,
one writer per tenant, a write-ahead journal that always ends, and accounting that is true."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_workspace import CREDENTIALS, emulator_process, live_records, run, workspace, write_desired

from numsync.core.model import Field
from numsync.emulator.process import EmulatorProcess
from numsync.workflow.lease import TenantLease

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]


def git(folder: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout.strip()


def edited_uk_care(tmp_path: Path, emulator: EmulatorProcess, notes: int = 1, *extra: str) -> Path:
    """A workspace whose desired uk-care differs from live in ``notes`` NOTE values (``extra``: config lines)."""
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False}, *extra)
    records = [r for r in live_records(emulator) if r.group_id == "uk-care"]
    changed = []
    for i, r in enumerate(sorted(records, key=lambda r: r.number)):
        fields = dict(r.fields)
        if i < notes:
            fields[Field.NOTE] = f"edited {i}"
        changed.append(type(r)(r.number, r.group_id, fields, provider="twilio"))
    write_desired(tmp_path, changed, ["uk-care"])
    return config


def puts(emulator: EmulatorProcess) -> int:
    return emulator.stats()["put_requests"]


# --- applies in merge order ---------------------------------------------------------------


def test_an_apply_on_a_commit_that_is_no_longer_the_tip_writes_nothing_and_exits_0(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    origin, work = tmp_path / "origin", tmp_path / "work"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    git(origin, "commit", "-q", "--allow-empty", "-m", "first merge")
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True)
    older = git(work, "rev-parse", "HEAD")
    git(origin, "commit", "-q", "--allow-empty", "-m", "a newer merge")
    newer = git(origin, "rev-parse", "HEAD")
    config = edited_uk_care(work, emulator)
    ci = CREDENTIALS | {"CI": "true", "CI_COMMIT_SHA": older, "CI_DEFAULT_BRANCH": "main"}

    result = run(config, "apply", "--auto-approve", "--journal", str(tmp_path / "j.jsonl"), env=ci)
    assert result.exit_code == 0, result.output
    assert f"superseded by {newer[:12]}: that pipeline applies" in result.output
    assert puts(emulator) == 0

    forced = run(
        config, "apply", "--auto-approve", "--ignore-superseded", "--journal", str(tmp_path / "j.jsonl"), env=ci
    )
    assert forced.exit_code == 0, forced.output
    assert puts(emulator) == 1

    tip = ci | {"CI_COMMIT_SHA": newer}  # the newest pipeline applies as usual (nothing left to do here)
    assert run(config, "apply", "--auto-approve", "--journal", str(tmp_path / "j.jsonl"), env=tip).exit_code == 0


# --- the saved plan is checked whole --------------------------------------------------------


@pytest.mark.parametrize("edit", ["changes", "summary"])
def test_a_saved_plan_whose_reviewed_parts_were_edited_is_refused(
    tmp_path: Path, emulator: EmulatorProcess, edit: str
) -> None:
    config = edited_uk_care(tmp_path, emulator, notes=2)
    plan_file = tmp_path / "plan.json"
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    data = json.loads(plan_file.read_text())
    if edit == "changes":
        data["changes"] = data["changes"][:1]  # hide a change; its rows are still in phases
    else:
        data["summary"]["Update"] = 0
    plan_file.write_text(json.dumps(data))

    result = run(config, "apply", str(plan_file))
    assert result.exit_code == 1
    verb = "does" if edit == "summary" else "do"
    assert f"its {edit} {verb} not follow from the desired and live state it records" in result.output
    assert "The plans are the same" not in result.output
    assert "Nothing was written" in result.output
    assert puts(emulator) == 0
    if edit == "changes":  # the refusal says what differs, in the project's words
        assert "Only in the new plan (1 number(s)):" in result.output  # planned again, it is there


# --- one writer per tenant ------------------------------------------------------------------


def test_a_second_apply_while_one_holds_the_tenant_is_refused_and_sends_nothing(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = edited_uk_care(tmp_path, emulator)
    with TenantLease(emulator.base_url, "test"):
        result = run(config, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert "another apply is running against this tenant" in result.output
    assert puts(emulator) == 0
    assert run(config, "apply", "--auto-approve").exit_code == 0  # released: the next apply runs
    assert puts(emulator) == 1


# --- honest accounting ------------------------------------------------------------------------


def journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_token_failure_after_the_first_file_says_what_was_sent_and_applied(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    # The test's own export and numsync's first login work; every later token request (the renewal
    # before the second file) is refused.
    # The token lives 33 s and is renewed 30 s before it expires; each upload takes 4 s: the first
    # file goes out with the first token, the second needs a new one (one file at a time).
    faults.write_text(
        "- {target: token, kind: status, status: 401, after: 2}\n- {target: put, kind: latency, seconds: 4}\n"
    )
    with emulator_process("--faults", str(faults), "--access-ttl", "33", "--limit", "Update=1") as emulator:
        config = edited_uk_care(tmp_path, emulator, 3, "limits: {Update: 1}", "apply_concurrency: 1")
        log = tmp_path / "journal.jsonl"
        result = run(config, "apply", "--auto-approve", "--journal", str(log))
        assert result.exit_code == 1
        assert "Nothing was written" not in result.output
        assert "Before this, 1 file(s) with 1 row(s) had been sent and 1 row(s) were applied" in result.output
        assert puts(emulator) == 1
    events = journal(log)
    # the second file was announced, then its token was refused before it left: journaled as not sent
    kinds = [e["event"] for e in events if e["event"] in ("sending", "request", "not-sent")]
    assert kinds == ["sending", "request", "sending", "not-sent"]
    assert events[-1]["event"] == "apply-end" and events[-1]["requests_sent"] == 1


def test_sigint_ends_the_run_after_the_file_in_flight_and_the_journal_ends(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {target: put, kind: latency, seconds: 1.5}\n")
    with emulator_process("--faults", str(faults), "--limit", "Update=1") as emulator:
        config = edited_uk_care(tmp_path, emulator, 4, "limits: {Update: 1}", "apply_concurrency: 1")
        log = tmp_path / "journal.jsonl"
        env = os.environ | CREDENTIALS
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "numsync",
                "--config",
                str(config),
                "apply",
                "--auto-approve",
                "--journal",
                str(log),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not (log.exists() and '"sending"' in log.read_text()):
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.05)
            child.send_signal(signal.SIGINT)  # the first file is in flight
            output, _ = child.communicate(timeout=60)
        finally:
            child.kill()
        assert child.returncode == 1, output
        assert "SIGINT received: stopping after the file(s) in flight" in output
        assert puts(emulator) < 4
    events = journal(log)
    sending = [e for e in events if e["event"] == "sending"]
    answered = [e for e in events if e["event"] == "request"]
    assert len(sending) == len(answered) >= 1  # the file in flight finished and was journaled
    assert events[-1]["event"] == "apply-end" and "SIGINT" in str(events[-1]["interrupted"])


def _wait_until_reading(pid: int, seconds: float = 10.0) -> None:
    """Until process ``pid`` sleeps in the kernel (its read of the terminal), or ``seconds`` pass (then go on)."""
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if wchan.read_text() not in ("", "0"):
                time.sleep(0.05)  # and still there: not a sleep on the way
                if wchan.read_text() not in ("", "0"):
                    return
        except OSError:  # no /proc: give it a moment instead
            time.sleep(0.5)
            return
        time.sleep(0.01)


def test_ctrl_c_at_the_confirmation_prompt_aborts_at_once(tmp_path: Path) -> None:
    """At "Apply these changes?" on a terminal, SIGINT is the user's no: apply ends at once, nothing sent,
    rather than saying it stops "after the files in flight" (there are none) and waiting for an answer."""
    with emulator_process() as emulator:
        config = edited_uk_care(tmp_path, emulator, 1, "apply_concurrency: 1")
        primary, secondary = pty.openpty()  # a terminal on stdin, so apply asks
        child = subprocess.Popen(
            [sys.executable, "-m", "numsync", "--config", str(config), "apply"],
            env=os.environ | CREDENTIALS,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        os.close(secondary)
        try:
            output = b""
            deadline = time.monotonic() + 60
            while b"[y/N]" not in output:
                assert time.monotonic() < deadline and child.poll() is None, output
                output += os.read(child.stdout.fileno(), 4096)  # type: ignore[union-attr]
            # A signal that lands after the prompt is written but before input() blocks in read() is only acted on
            # at the next one (CPython checks signals on EINTR); a person's Ctrl-C comes later than this test's.
            # So wait until the child sleeps in its read of the terminal.
            _wait_until_reading(child.pid)
            child.send_signal(signal.SIGINT)
            rest, _ = child.communicate(timeout=20)  # without the fix it waits for an answer: TimeoutExpired
        finally:
            child.kill()
            os.close(primary)
        text = (output + rest).decode()
        assert child.returncode == 1, text
        assert "Aborted" in text and "stopping after the file(s) in flight" not in text
        assert puts(emulator) == 0
