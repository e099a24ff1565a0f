"""Credentials per environment (``credentials:`` in numsync.yaml), per-user TOTP secrets in the emulator, and the
warning for a pre-issued token that will expire before the work is done."""

from __future__ import annotations

import base64
import json
import textwrap
import time
from pathlib import Path

import httpx
import pyotp
import pytest
from cli_workspace import OTP_SETTING, emulator_process, run

from numsync.config import ConfigError, load_config
from numsync.core.model import NumberRecord
from numsync.emulator.process import EmulatorProcess
from numsync.errors import AuthError
from numsync.ocp import Credentials
from numsync.ocp.auth import CredentialVariables, token_lifetime
from numsync.ocp.csvcodec import parse_export
from numsync.workflow.importer import render_desired
from numsync.workflow.policy import needed_seconds, token_warning

PROD_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the emulator's own (--totp-secret default)
STAGE_SECRET = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"  # stage-bot's own (--user-totp)
USERS = (
    "--user",
    "prod-bot:prod-pw:OWNER",
    "--user",
    "stage-bot:stage-pw:VIEWER:ocp-qa",
    "--user-totp",
    f"stage-bot={STAGE_SECRET}",
)
STAGE = CredentialVariables("OCP_STAGE_USERNAME", "OCP_STAGE_PASSWORD", "OCP_STAGE_TOTP_SECRET")
ENV = {
    "OCP_USERNAME": "prod-bot",
    "OCP_PASSWORD": "prod-pw",
    "OCP_TOTP_SECRET": PROD_SECRET,
    "OCP_STAGE_USERNAME": "stage-bot",
    "OCP_STAGE_PASSWORD": "stage-pw",
    "OCP_STAGE_TOTP_SECRET": STAGE_SECRET,
}


def two_environments(tmp_path: Path, base_url: str) -> Path:
    """prod (uk-care, the default OCP_* variables) and stage (ocp-qa, its own OCP_STAGE_* variables)."""
    text = f"""
        environments:
          prod:
            base_url: {base_url}
            desired: prod
            groups: {{uk-care: {{}}}}
            {OTP_SETTING}
          stage:
            base_url: {base_url}
            desired: stage
            groups: {{ocp-qa: {{}}}}
            {OTP_SETTING}
            credentials: {{username: OCP_STAGE_USERNAME, password: OCP_STAGE_PASSWORD, totp_secret: OCP_STAGE_TOTP_SECRET}}
        """
    (tmp_path / "numsync.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path / "numsync.yaml"


def desired_files(tmp_path: Path) -> None:
    """One desired file per environment (a desired folder without any is refused before any login)."""
    for folder, group, number in (("prod", "uk-care", "+442079460958"), ("stage", "ocp-qa", "+12015550100")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{group}.yaml").write_text(f'group_id: {group}\nnumbers:\n  "{number}": {{}}\n')


def live(emu: EmulatorProcess) -> list[NumberRecord]:
    token = emu.token("prod-bot", "prod-pw")
    answer = httpx.post(emu.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {token}"})
    return parse_export(answer.content)


def test_drift_over_two_environments_logs_in_with_each_ones_account(tmp_path: Path) -> None:
    with emulator_process(*USERS) as emu:
        config = two_environments(tmp_path, emu.base_url)
        records = live(emu)
        for folder, group in (("prod", "uk-care"), ("stage", "ocp-qa")):
            (tmp_path / folder).mkdir()
            for name, text in render_desired([r for r in records if r.group_id == group], [group]).items():
                (tmp_path / folder / name).write_text(text)
        before = emu.stats()
        result = run(config, "drift", env=ENV)
        after = emu.stats()
    assert result.exit_code == 0, result.output  # each environment read with its account: no drift, no refusal
    assert after["otp_accepted"] - before["otp_accepted"] == 2 and after["otp_refused"] == before["otp_refused"]


def test_an_environment_with_the_other_ones_secret_is_refused_naming_its_variables(tmp_path: Path) -> None:
    with emulator_process(*USERS) as emu:
        config = two_environments(tmp_path, emu.base_url)
        desired_files(tmp_path)
        result = run(config, "--env", "stage", "plan", env={**ENV, "OCP_STAGE_TOTP_SECRET": PROD_SECRET})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "OCP_STAGE_USERNAME" in result.output and "OCP_STAGE_TOTP_SECRET" in result.output
    assert "OCP_TOTP_SECRET " not in result.output and PROD_SECRET not in result.output


@pytest.mark.parametrize(("secret", "says"), [("ABC", "too short"), ("JBSWY3DPEHPK3PXP!!!!", "not base32")])
def test_a_bad_secret_in_a_configured_variable_is_a_clear_error_naming_it(
    tmp_path: Path, secret: str, says: str
) -> None:
    config = two_environments(tmp_path, "http://127.0.0.1:9/integrations")
    desired_files(tmp_path)
    result = run(config, "--env", "stage", "plan", env={**ENV, "OCP_STAGE_TOTP_SECRET": secret})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "OCP_STAGE_TOTP_SECRET" in result.output and says in result.output and secret not in result.output
    assert "(the text under the QR code). Nothing was written." in result.output  # one sentence each, not run on


def test_credentials_name_the_variables_they_are_read_from() -> None:
    creds = Credentials.from_env(ENV, STAGE)
    assert (creds.username, creds.password, creds.totp_secret) == ("stage-bot", "stage-pw", STAGE_SECRET)
    with pytest.raises(AuthError) as caught:
        Credentials.from_env({}, STAGE)
    assert "OCP_STAGE_USERNAME" in str(caught.value) and "OCP_USERNAME" not in str(caught.value)


def test_the_config_reads_credentials_and_defaults_to_ocp(tmp_path: Path) -> None:
    config = load_config(two_environments(tmp_path, "http://127.0.0.1:9/integrations"))
    assert config.environments["prod"].credentials == CredentialVariables()
    assert config.environments["stage"].credentials == STAGE


def test_one_variable_for_two_credentials_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "numsync.yaml").write_text(
        "environments:\n  prod:\n    region: EU1\n    desired: d\n    groups: {a: {}}\n"
        "    credentials: {username: OCP_X, password: OCP_X}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "numsync.yaml")
    assert "numsync.yaml:6:" in str(caught.value) and "OCP_X" in str(caught.value)


def test_a_credential_variable_must_be_a_variable_name(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "numsync.yaml").write_text(
        "environments:\n  prod:\n    region: EU1\n    desired: d\n    groups: {a: {}}\n"
        "    credentials: {username: 'not a name'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "numsync.yaml")
    assert "numsync.yaml:6:" in str(caught.value)


# --- per-user TOTP secrets in the emulator ---------------------------------------------------------------


def test_a_user_with_a_secret_of_its_own_needs_codes_of_it(tmp_path: Path) -> None:
    with emulator_process(*USERS) as emu:

        def login(user: str, password: str, secret: str) -> int:
            code = pyotp.TOTP(secret, interval=emu.otp.period).now()
            form = {"client_id": "ocp", "grant_type": "password", "username": user, "password": password, "otp": code}
            return httpx.post(emu.token_url, data=form).status_code

        assert login("stage-bot", "stage-pw", PROD_SECRET) == 401  # the emulator's secret is not stage-bot's
        assert login("stage-bot", "stage-pw", STAGE_SECRET) == 200
        assert login("prod-bot", "prod-pw", PROD_SECRET) == 200  # no secret of its own: the emulator's
        assert "totp_secret" not in json.dumps(emu.state())  # never shown


def test_a_user_secret_for_an_unknown_user_stops_the_emulator() -> None:
    from click.testing import CliRunner

    from numsync.cli import main

    result = CliRunner().invoke(main, ["emulator", "--user-totp", f"nobody={STAGE_SECRET}"])
    assert result.exit_code != 0 and "--user-totp" in result.output and "nobody" in result.output, result.output


def test_a_user_secret_is_kept_in_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with emulator_process("--state", str(state), *USERS):
        pass
    saved = json.loads(state.read_text())
    assert (
        saved["users"]["stage-bot"]["totp_secret"] == STAGE_SECRET and "totp_secret" not in saved["users"]["prod-bot"]
    )


# --- a pre-issued token ---------------------------------------------------------------------------------


def jwt(exp: float | None) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    payload: dict[str, object] = {"sub": "demo"} | ({"exp": int(exp)} if exp is not None else {})
    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2lnbmF0dXJl"


def test_the_jwt_expiry_is_read_without_verifying() -> None:
    now = 1_800_000_000.0
    assert token_lifetime(jwt(now + 120), now) == pytest.approx(120, abs=1)
    assert token_lifetime(jwt(None), now) is None
    assert token_lifetime("opaque-token", now) is None
    assert token_lifetime("a.!!!.c", now) is None


def test_the_warning_says_when_the_token_expires_before_the_work_is_done() -> None:
    assert token_warning(1000, 60, "OCP_TOKEN", 300) is None
    soon = token_warning(20, 60, "OCP_TOKEN", 300)
    assert soon is not None and "OCP_TOKEN expires in 20 s" in soon and "cannot renew" in soon
    gone = token_warning(-5, 60, "OCP_TOKEN", 300)
    assert gone is not None and "expired 5 s ago" in gone
    assert token_warning(None, 60, "OCP_TOKEN", 300) is None  # unknown: taken as OCP's default 300 s, enough
    unknown = token_warning(None, 400, "OCP_TOKEN", 300)
    assert unknown is not None and "lifetime is unknown" in unknown and "300 s" in unknown
    assert needed_seconds() == 60


@pytest.mark.parametrize("command", [("plan",), ("apply", "--auto-approve"), ("drift",), ("import", "--force")])
def test_a_token_about_to_expire_is_warned_of_before_it_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    with emulator_process() as emu:
        (tmp_path / "desired").mkdir()
        (tmp_path / "desired" / "uk-care.yaml").write_text('group_id: uk-care\nnumbers:\n  "+442079460958": {}\n')
        (tmp_path / "numsync.yaml").write_text(
            f"environments:\n  t:\n    base_url: {emu.base_url}\n    desired: desired\n    groups: {{uk-care: {{}}}}\n"
        )
        result = run(tmp_path / "numsync.yaml", *command, env={"OCP_TOKEN": jwt(time.time() + 20)})
    assert "Warning: OCP_TOKEN expires in" in result.output and "cannot renew a pre-issued token" in result.output
    assert result.exit_code == 1 and "HTTP 401" in result.output  # the emulator never issued it
