"""A server that echoes what it was sent cannot make numsync leak a secret.

The emulator's ``echo`` fault answers with an error body repeating the request: the
Authorization header (the bearer access token), the form fields (password, refresh token)
decoded and as sent (URL-encoded). numsync runs in-process against it; every token OCP
issued is caught as it is stored. Then stdout, stderr, the journal and every file written are
searched for each secret in every form: raw, URL-encoded (both ways), JSON-escaped, base64,
and base64 of ``user:password`` (HTTP Basic).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import httpx
import pytest
import yaml
from cli_workspace import TOTP_SECRET, emulator_process, run, workspace, write_desired

from numsync.core.model import Field
from numsync.emulator.process import EmulatorProcess
from numsync.ocp.auth import OCPAuth

USER, PASSWORD = "echo-user", "p@ss w/rd+Ω&=%"
ENV = {"OCP_USERNAME": USER, "OCP_PASSWORD": PASSWORD, "OCP_TOTP_SECRET": TOTP_SECRET}


def spellings(secret: str) -> set[str]:
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode(),
    }


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every access and refresh token OCP issues during the test."""
    tokens: list[str] = []
    store = OCPAuth._store

    def spy(self: OCPAuth, response: httpx.Response) -> None:
        body = response.json()
        tokens.extend(str(body[k]) for k in ("access_token", "refresh_token") if k in body)
        store(self, response)

    monkeypatch.setattr(OCPAuth, "_store", spy)
    return tokens


def echoing(tmp_path: Path, rules: list[dict], *extra: str) -> EmulatorProcess:
    spec = tmp_path / "faults.yaml"
    spec.write_text(yaml.safe_dump(rules))
    return emulator_process("--faults", str(spec), "--user", f"{USER}:{PASSWORD}:OWNER", *extra)


def one_change(tmp_path: Path, emu: EmulatorProcess) -> Path:
    token = emu.token(USER, PASSWORD)
    assert token
    config = workspace(tmp_path, emu.base_url, {"ocp-qa": False})
    records = [r for r in live_records_as(emu, token) if r.group_id == "ocp-qa"]
    records[0] = type(records[0])(records[0].number, "ocp-qa", {**records[0].fields, Field.NOTE: "echo me"})
    write_desired(tmp_path, records, ["ocp-qa"])
    return config


def live_records_as(emu: EmulatorProcess, token: str):
    from numsync.ocp.csvcodec import parse_export

    body = httpx.post(emu.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {token}"}).content
    return parse_export(body)


def everything_written(tmp_path: Path, *outputs: str) -> str:
    files = [p.read_text("utf-8", errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    return "\n".join([*outputs, *files])


def assert_no_secret(text: str, tokens: list[str]) -> None:
    assert tokens, "no token was issued: the test did not exercise anything"
    for secret in [PASSWORD, *tokens]:
        for form in spellings(secret):
            assert form not in text, f"a secret leaked as {form[:6]}…"
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert basic not in text


def test_an_upload_refused_with_an_echo_of_the_bearer_token_and_body(tmp_path: Path, issued: list[str]) -> None:
    with echoing(tmp_path, [{"target": "put", "kind": "echo", "status": 400}]) as emu:
        config = one_change(tmp_path, emu)
        journal = tmp_path / "journal.jsonl"
        result = run(config, "apply", "--auto-approve", "--journal", str(journal), env=ENV)
    assert result.exit_code == 1
    seen = everything_written(tmp_path, result.stdout, result.stderr)
    assert "Authorization: Bearer ***" in seen  # the server did echo the token, and it was masked
    assert "Authorization: Bearer ***" in journal.read_text()
    assert_no_secret(seen, issued)


def test_a_token_endpoint_echoing_the_refresh_token_and_password(tmp_path: Path, issued: list[str]) -> None:
    # 1 s tokens: every request after the first login renews; the renewals are echoed back
    rules = [{"target": "token", "kind": "echo", "status": 400, "after": 2}]  # the test logs in once first
    with echoing(tmp_path, rules, "--access-ttl", "1") as emu:
        config = one_change(tmp_path, emu)
        journal = tmp_path / "journal.jsonl"
        result = run(config, "apply", "--auto-approve", "--journal", str(journal), env=ENV)
    assert result.exit_code == 1
    seen = everything_written(tmp_path, result.stdout, result.stderr)
    assert "password=***" in seen  # echoed, decoded, masked
    assert_no_secret(seen, issued)


def test_an_export_refused_with_an_echo(tmp_path: Path, issued: list[str]) -> None:
    with echoing(tmp_path, [{"target": "export", "kind": "echo", "status": 400, "after": 1}]) as emu:
        config = one_change(tmp_path, emu)
        result = run(config, "export", "--out", str(tmp_path / "live.csv"), env=ENV)
        drift = run(config, "plan", env=ENV)
    assert result.exit_code == 1 and drift.exit_code == 1
    seen = everything_written(tmp_path, result.stdout, result.stderr, drift.stdout, drift.stderr)
    assert "Bearer ***" in seen
    assert_no_secret(seen, issued)
