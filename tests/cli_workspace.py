"""What the CLI tests against the emulator share: a numsync.yaml workspace, desired files from
records, the live export over HTTP, and a CLI run with the demo login."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

from numsync.cli import main
from numsync.core.model import NumberRecord
from numsync.emulator.process import EmulatorProcess
from numsync.ocp.csvcodec import parse_export
from numsync.ocp.otp import OtpPolicy
from numsync.workflow.importer import render_desired

#: The emulator's seeded users' TOTP secret (docs/emulator.md): two-factor is on in every test, as on OCP.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CREDENTIALS = {"OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret", "OCP_TOTP_SECRET": TOTP_SECRET}

#: The test emulators' OTP policy: Keycloak's rules with a 1 s period (a value its OTP policy allows) and a
#: look-around of 2 steps, so a test that logs in many times waits at most about a second per login, and a
#: code still counts when the loaded machine delivers it up to two seconds late. Every numsync.yaml that talks
#: to such an emulator carries the same policy (:data:`OTP_SETTING`), as it would for a tenant.
OTP_PERIOD = 1
OTP_LOOK_AROUND = 2
OTP_SETTING = f"otp: {{period: {OTP_PERIOD}, look_around: {OTP_LOOK_AROUND}}}"
#: ``freeze_time(..., ignore=REAL_CLOCK)``: two-factor codes come from the real clock, which the emulator (another
#: process) checks them against, while numsync's other clocks are frozen.
REAL_CLOCK = ["numsync.ocp.otp"]
#: The same policy for a client made in a test (``OCPAuth(..., otp=OTP_POLICY)``).
OTP_POLICY = OtpPolicy(period=OTP_PERIOD, look_around=OTP_LOOK_AROUND)


def emulator_process(*extra_args: str, **options: Any) -> EmulatorProcess:
    """An :class:`EmulatorProcess` with two-factor on and the tests' short OTP policy (:data:`OTP_PERIOD`)."""
    options.setdefault("otp_period", OTP_PERIOD)
    options.setdefault("otp_look_around", OTP_LOOK_AROUND)
    return EmulatorProcess(*extra_args, **options)


def live_records(emulator: EmulatorProcess) -> list[NumberRecord]:
    """The emulator's numbers, exported over HTTP and parsed as numsync does."""
    token = emulator.token()
    body = httpx.post(emulator.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {token}"}).content
    return parse_export(body)


def workspace(tmp_path: Path, base_url: str, groups: dict[str, bool | str], *extra: str) -> Path:
    """numsync.yaml with one environment ``test``; ``groups``: GROUP_ID → prune flag, or its flow
    mapping as text (``"{prune: true, max_deletes: 2}"``); ``extra``: more environment lines. The environment
    has the test emulators' OTP policy (:data:`OTP_SETTING`)."""
    lines = [
        "environments:",
        "  test:",
        f"    base_url: {base_url}",
        "    desired: desired",
        "    default_provider: twilio",
        "    groups:",
    ]
    lines += [
        f"      {g}: {spec if isinstance(spec, str) else '{prune: ' + str(spec).lower() + '}'}"
        for g, spec in groups.items()
    ]
    lines += [f"    {line}" for line in (OTP_SETTING, *extra)]
    (tmp_path / "numsync.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "desired").mkdir(exist_ok=True)
    return tmp_path / "numsync.yaml"


def write_desired(tmp_path: Path, records: Iterable[NumberRecord], groups: list[str]) -> None:
    """One desired file per group in ``groups``, as ``numsync import`` writes them."""
    for name, text in render_desired(records, groups).items():
        (tmp_path / "desired" / name).write_text(text)


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """``numsync --config CONFIG ARGS`` in-process, logged in as the emulator's demo user."""
    return CliRunner().invoke(
        main, ["--config", str(config), *args], env=env if env is not None else CREDENTIALS, catch_exceptions=False
    )


def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll ``predicate`` every 50 ms until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
