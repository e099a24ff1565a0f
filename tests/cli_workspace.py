"""What the CLI tests against the emulator share: a numsync.yaml workspace, desired files from
records, the live export over HTTP, and a CLI run with the demo login."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from numsync.cli import main
from numsync.core.model import NumberRecord
from numsync.emulator.process import EmulatorProcess
from numsync.ocp.csvcodec import parse_export
from numsync.workflow.importer import render_desired

#: The emulator's seeded users' TOTP secret (docs/emulator.md): two-factor is on in every test, as on OCP.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CREDENTIALS = {"OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret", "OCP_TOTP_SECRET": TOTP_SECRET}


def live_records(emulator: EmulatorProcess) -> list[NumberRecord]:
    """The emulator's numbers, exported over HTTP and parsed as numsync does."""
    token = emulator.token()
    body = httpx.post(emulator.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {token}"}).content
    return parse_export(body)


def workspace(tmp_path: Path, base_url: str, groups: dict[str, bool | str], *extra: str) -> Path:
    """numsync.yaml with one environment ``test``; ``groups``: GROUP_ID → prune flag, or its flow
    mapping as text (``"{prune: true, max_deletes: 2}"``); ``extra``: more environment lines."""
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
    lines += [f"    {line}" for line in extra]
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
