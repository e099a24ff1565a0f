"""numsync environments: every environment's resolved endpoints, offline and without credentials."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from numsync.cli import main

CONFIG = """
environments:
  prod:
    region: US2
    desired: desired
    groups: {ocp-qa: {}}
  canada:
    region: CA1
    base_url: https://tenant.ca1.example.test/integrations
    desired: desired
    groups: {ocp-qa: {}}
  local:
    base_url: http://127.0.0.1:8080/integrations
    realm: ocp
    desired: desired
    groups: {ocp-qa: {}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with three environments, no credential variables and no way to open a connection."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "OCP_USERNAME",
        "OCP_PASSWORD",
        "OCP_TOKEN",
        "OCP_OTP",
        "OCP_TOTP_SECRET",
        "NUMSYNC_CONFIG",
        "NUMSYNC_ENV",
    ):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("numsync environments tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    (tmp_path / "numsync.yaml").write_text(textwrap.dedent(CONFIG).lstrip(), encoding="utf-8")
    return tmp_path


def environments(*args: str) -> Result:
    return CliRunner().invoke(main, ["environments", *args], catch_exceptions=False)


def test_json_lists_every_environment_with_its_resolved_endpoints(project: Path) -> None:
    result = environments("--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "name": "prod",
            "region": "US2",
            "base_url": "https://us2-m.ocp.ai/integrations",
            "token_url": "https://auth.us2-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
            "warnings": [],
        },
        {
            "name": "canada",
            "region": "CA1",
            "base_url": "https://tenant.ca1.example.test/integrations",
            "token_url": "https://pub.ca1.ocp.ai/auth/realms/ocp/protocol/openid-connect/token",
            "warnings": [],
        },
        {
            "name": "local",
            "region": None,
            "base_url": "http://127.0.0.1:8080/integrations",
            "token_url": "http://127.0.0.1:8080/auth/realms/ocp/protocol/openid-connect/token",
            "warnings": [],
        },
    ]


def test_text_names_each_environment_and_its_endpoints(project: Path) -> None:
    result = environments()
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "prod (region US2)" in out and "local (no region)" in out
    assert "token_url: https://auth.us2-m.ocp.ai/auth/realms/master/protocol/openid-connect/token" in out
    assert "base_url:  https://tenant.ca1.example.test/integrations" in out


def test_a_region_without_a_documented_base_url_is_refused_with_its_location(project: Path) -> None:
    text = (project / "numsync.yaml").read_text("utf-8")
    (project / "numsync.yaml").write_text(
        text.replace("    base_url: https://tenant.ca1.example.test/integrations\n", ""), encoding="utf-8"
    )
    result = environments("--format", "json")
    assert result.exit_code == 1
    assert "numsync.yaml:7:13:" in result.stderr and "base_url" in result.stderr
    assert result.stdout == ""


def test_a_variable_without_a_value_is_shown_unresolved_with_a_warning(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NS_LOCAL_URL", raising=False)
    text = (project / "numsync.yaml").read_text("utf-8")
    (project / "numsync.yaml").write_text(
        text.replace("http://127.0.0.1:8080/integrations", "${NS_LOCAL_URL}/integrations"), encoding="utf-8"
    )
    result = environments("--format", "json")
    assert result.exit_code == 0, result.output
    local = json.loads(result.stdout)[2]
    assert local["base_url"] == "${NS_LOCAL_URL}/integrations"
    assert local["token_url"] == "${NS_LOCAL_URL}/auth/realms/ocp/protocol/openid-connect/token"
    [warning] = local["warnings"]
    assert warning.startswith("numsync.yaml:12:15: environment variable NS_LOCAL_URL is not set")
    text_result = environments()
    assert "  warning: numsync.yaml:12:15: environment variable NS_LOCAL_URL is not set" in text_result.stdout


#: The vendor's token endpoints ("API Authentication": hosts and authentication endpoints), spelled out here.
VENDOR_TOKEN_URLS = {
    "EU1": "https://eu1-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "US1": "https://us1-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "US2": "https://auth.us2-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "US1W": "https://us1-w-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "CA1": "https://pub.ca1.ocp.ai/auth/realms/ocp/protocol/openid-connect/token",
    "FRANKFURT": "https://pub.frankfurt.ocp.ai/auth/realms/ocp/protocol/openid-connect/token",
}


def test_json_shows_the_vendors_token_url_for_every_region(project: Path) -> None:
    """A numsync.yaml listing every region (CA1 and FRANKFURT with the base_url the vendor leaves to the tenant)."""
    lines = ["environments:"]
    for region in VENDOR_TOKEN_URLS:
        lines += [f"  {region.lower()}:", f"    region: {region}", "    desired: desired", "    groups: {ocp-qa: {}}"]
        if region in ("CA1", "FRANKFURT"):
            lines.append(f"    base_url: https://tenant.{region.lower()}.example.test/integrations")
    (project / "numsync.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = environments("--format", "json")
    assert result.exit_code == 0, result.output
    shown = {e["region"]: e["token_url"] for e in json.loads(result.stdout)}
    assert shown == VENDOR_TOKEN_URLS
