"""Two-factor login as OCP does it, against the emulator with two-factor on: codes in "otp", never reused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cli_workspace import TOTP_SECRET, emulator_process, live_records, run, workspace, write_desired

from numsync.core.model import Field, NumberRecord
from numsync.emulator.process import EmulatorProcess
from numsync.errors import AuthError
from numsync.ocp import Credentials, OCPAuth, OCPReader
from numsync.ocp.csvcodec import parse_export
from numsync.ocp.otp import OtpPolicy, StepLedger, choose_step, code_at
from numsync.ocp.retry import RetryPolicy


def early_in_a_step(period: int, within: float) -> None:
    """Sleep until at most ``within`` seconds into a TOTP time step, so what follows (on a loaded machine too)
    happens inside one step."""
    if time.time() % period > within:
        time.sleep(period - time.time() % period + 0.05)


def config(tmp_path: Path, emulator: EmulatorProcess) -> Path:
    path = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    (tmp_path / "desired" / "uk-care.yaml").write_text('group_id: uk-care\nnumbers:\n  "+442079460958": {}\n')
    return path


def test_password_only_login_is_refused_naming_two_factor(tmp_path: Path, emulator: EmulatorProcess) -> None:
    path = config(tmp_path, emulator)
    result = run(path, "plan", env={"OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret", "OCP_TOTP_SECRET": ""})
    assert result.exit_code == 1
    assert "two-factor" in result.output and "OCP_TOTP_SECRET" in result.output and "OCP_OTP" in result.output
    assert emulator.stats()["put_requests"] == 0 and emulator.stats()["otp_refused"] == 1


def test_a_code_sent_in_another_form_field_names_otp_field_in_the_refusal(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """The code goes in `totp` (otp_field:), which OCP does not read: the refusal points at that setting."""
    path = workspace(tmp_path, emulator.base_url, {"uk-care": False}, "otp_field: totp")
    (tmp_path / "desired" / "uk-care.yaml").write_text('group_id: uk-care\nnumbers:\n  "+442079460958": {}\n')
    result = run(path, "plan")
    assert result.exit_code == 1
    assert "otp_field" in result.output and "'totp'" in result.output, result.output


def test_plan_then_apply_as_two_processes_both_log_in_without_reusing_a_code(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    path = config(tmp_path, emulator)
    (tmp_path / "desired" / "uk-care.yaml").unlink()
    live = [r for r in live_records(emulator) if r.group_id == "uk-care"]
    changed = NumberRecord(live[0].number, "uk-care", {**live[0].fields, Field.NOTE: "two-factor"})
    write_desired(tmp_path, [changed, *live[1:]], ["uk-care"])
    before = emulator.stats()
    planned = run(path, "plan", "--out", str(tmp_path / "plan.json"))
    assert planned.exit_code == 0, planned.output
    applied = run(path, "apply", str(tmp_path / "plan.json"), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    after = emulator.stats()
    assert after["otp_accepted"] - before["otp_accepted"] == 2  # one login per process
    assert after["otp_refused"] == before["otp_refused"] == 0 and after["otp_reused"] == 0
    assert emulator.numbers()[changed.number]["NOTE"] == "two-factor"


def test_the_emulator_refuses_a_reused_or_wrong_code(emulator: EmulatorProcess) -> None:
    form = emulator.login_form()
    assert httpx.post(emulator.token_url, data=form).status_code == 200
    again = httpx.post(emulator.token_url, data=form)
    assert again.status_code == 401 and again.json() == {"error": "invalid_grant", "error_description": "Invalid totp"}
    wrong = httpx.post(emulator.token_url, data={**emulator.login_form(), "otp": "000000"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
    missing = {k: v for k, v in emulator.login_form().items() if k != "otp"}
    answer = httpx.post(emulator.token_url, data=missing)
    assert answer.status_code == 401 and answer.json()["error_description"] == "Invalid user credentials"
    assert emulator.stats()["otp_reused"] == 1


@pytest.mark.parametrize(
    ("secret", "says"), [("ABC", "too short"), ("JBSWY3DPEHPK3PXP!!!!", "not base32"), ("1" * 20, "not base32")]
)
def test_a_short_or_invalid_totp_secret_is_a_clear_error_naming_the_variable(secret: str, says: str) -> None:
    with pytest.raises(AuthError) as caught:
        Credentials.from_env({"OCP_USERNAME": "u", "OCP_PASSWORD": "p", "OCP_TOTP_SECRET": secret})
    assert "OCP_TOTP_SECRET" in str(caught.value) and says in str(caught.value)
    assert secret not in str(caught.value)
    assert str(caught.value).endswith(")."), "a full sentence: the CLI adds 'Nothing was written.' after it"


def test_a_bad_totp_secret_through_the_cli_exits_1_without_a_traceback(tmp_path: Path) -> None:
    path = workspace(tmp_path, "http://127.0.0.1:9/integrations", {"uk-care": False})
    (tmp_path / "desired" / "uk-care.yaml").write_text('group_id: uk-care\nnumbers:\n  "+442079460958": {}\n')
    result = run(path, "plan", env={"OCP_USERNAME": "demo", "OCP_PASSWORD": "pw", "OCP_TOTP_SECRET": "not-a-secret"})
    assert result.exit_code == 1 and "OCP_TOTP_SECRET" in result.output and "Traceback" not in result.output


def test_choose_step_takes_the_next_step_in_the_window_then_waits() -> None:
    policy = OtpPolicy(period=30, look_around=1)
    assert choose_step(3000.0, policy, None) == (100, 0.0)
    assert choose_step(3000.0, policy, 99) == (100, 0.0)
    assert choose_step(3000.0, policy, 100) == (101, 0.0)  # one step ahead: still inside the look-around window
    assert choose_step(3010.0, policy, 101) == (102, 20.0)  # wait until step 102 is within the window (t = 3030)
    assert choose_step(3000.0, policy, 500) == (100, 0.0)  # a ledger from a clock far ahead is not waited for


def test_code_at_matches_the_rfc_6238_code_of_that_step() -> None:
    import pyotp

    assert code_at(TOTP_SECRET, 100, 30) == pyotp.TOTP(TOTP_SECRET).at(3000)


@pytest.mark.parametrize("look_around", [0, 1])
def test_a_login_retried_after_the_code_may_be_spent_sends_a_new_code(tmp_path: Path, look_around: int) -> None:
    """The emulator accepts the first login, then drops the connection: the retry must not resend that code.

    With a look-around window numsync takes the next step at once; without one it waits for it and says so."""
    (tmp_path / "faults.yaml").write_text("- {target: token, kind: reset_after, times: 1}\n")
    policy = OtpPolicy(period=10, look_around=look_around)
    with emulator_process("--faults", str(tmp_path / "faults.yaml"), otp_period=10, otp_look_around=look_around) as emu:
        waits: list[float] = []
        auth = OCPAuth(
            emu.token_url,
            Credentials("demo", "demo-secret", totp_secret=TOTP_SECRET),
            otp=policy,
            on_otp_wait=waits.append,
            ledger=StepLedger(tmp_path / "ledger.json"),
        )
        early_in_a_step(10, 4)  # the lost login and its retry fall inside one step
        with OCPReader(emu.base_url, auth, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)) as reader:
            assert reader.export().startswith(b"APPLICATION_TAG")
        stats = emu.stats()
    assert stats["token_requests"] == 2 and stats["otp_accepted"] == 2
    assert stats["otp_reused"] == 0 and stats["otp_refused"] == 0
    if look_around == 0:
        assert len(waits) == 1 and 0 < waits[0] <= 10.0
    else:
        assert waits == []


def test_plan_then_apply_as_two_os_processes_inside_one_time_step(tmp_path: Path) -> None:
    """`numsync plan --out` then `numsync apply PLAN --auto-approve` as two processes inside one time step (60 s,
    look-around 1: a period Keycloak allows, long enough for two process starts on a loaded machine): the
    second takes the next step the look-around window accepts, no code is reused, both succeed."""
    with EmulatorProcess(otp_period=60, otp_look_around=1) as emu:
        (tmp_path / "desired").mkdir()
        (tmp_path / "numsync.yaml").write_text(
            f"environments:\n  t:\n    base_url: {emu.base_url}\n    desired: desired\n    groups: {{uk-care: {{}}}}\n"
            "    otp: {period: 60, look_around: 1}\n"
        )
        # read live as another user: the demo user's time steps stay for the two processes
        token = emu.token("viewer", "viewer-secret")
        export = httpx.post(emu.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {token}"})
        live = [r for r in parse_export(export.content) if r.group_id == "uk-care"]
        changed = NumberRecord(live[0].number, "uk-care", {**live[0].fields, Field.NOTE: "two processes"})
        write_desired(tmp_path, [changed, *live[1:]], ["uk-care"])
        env = {**os.environ, "OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret", "OCP_TOTP_SECRET": TOTP_SECRET}
        early_in_a_step(60, 25)
        step = int(time.time() // 60)
        numsync = [sys.executable, "-m", "numsync", "--config", str(tmp_path / "numsync.yaml")]
        planned = subprocess.run([*numsync, "plan", "--out", str(tmp_path / "plan.json")], env=env, capture_output=True)
        applied = subprocess.run(
            [*numsync, "apply", str(tmp_path / "plan.json"), "--auto-approve"], env=env, capture_output=True
        )
        assert int(time.time() // 60) == step, "both processes ran inside one time step"
        stats = emu.stats()
        note = emu.numbers()[changed.number]["NOTE"]
    assert planned.returncode == 0, planned.stderr.decode()
    assert applied.returncode == 0, applied.stderr.decode()
    assert b"Waiting" not in applied.stderr  # the next step is inside the look-around window: no wait
    # the viewer's login (reading live), then one per process; none refused, none reused
    assert stats["otp_accepted"] == 3 and stats["otp_refused"] == 0 and stats["otp_reused"] == 0
    assert note == "two processes"


def test_a_cli_login_that_must_wait_for_the_next_step_says_so(tmp_path: Path) -> None:
    """Without a look-around window, a retried login (its first code may be spent) waits for the next step;
    the CLI says so through the observer."""
    (tmp_path / "faults.yaml").write_text("- {target: token, kind: reset_after, times: 1}\n")
    with emulator_process("--faults", str(tmp_path / "faults.yaml"), otp_period=10, otp_look_around=0) as emu:
        (tmp_path / "desired").mkdir()
        (tmp_path / "desired" / "uk-care.yaml").write_text('group_id: uk-care\nnumbers:\n  "+442079460958": {}\n')
        (tmp_path / "numsync.yaml").write_text(
            f"environments:\n  t:\n    base_url: {emu.base_url}\n    desired: desired\n"
            "    groups: {uk-care: {}}\n    otp: {period: 10, look_around: 0}\n"
        )
        early_in_a_step(10, 4)  # the lost login and its retry fall inside one step
        result = run(tmp_path / "numsync.yaml", "plan")
        stats = emu.stats()
    assert result.exit_code == 0, result.output
    assert "Waiting" in result.output and "next two-factor code" in result.output
    assert stats["otp_accepted"] == 2 and stats["otp_reused"] == 0
