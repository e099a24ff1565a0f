"""Drift reports: kinds, causes, ages, suppressions, formats, and the read-only guarantee."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import jsonschema
import pytest
from cli_workspace import OTP_POLICY, OTP_SETTING, TOTP_SECRET, emulator_process
from click.testing import CliRunner
from freezegun import freeze_time

from numsync.cli import main
from numsync.config import Environment
from numsync.core import drift as drift_mod
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy, Suppression
from numsync.core.schema import load_schema
from numsync.ocp import Credentials, OCPAuth, OCPReader, ReadOnlyViolation
from numsync.reports import drift as reports

ENV = Environment(
    name="prod",
    base_url="http://127.0.0.1:1/integrations",
    token_url="http://127.0.0.1:1/token",
    desired=Path("desired"),
    groups={"ocp-qa": GroupPolicy("ocp-qa", prune=True), "uk-care": GroupPolicy("uk-care")},
    protected=frozenset({"+442079460958"}),
)
CREDENTIALS = {"OCP_USERNAME": "demo", "OCP_PASSWORD": "demo-secret", "OCP_TOTP_SECRET": TOTP_SECRET}


def rec(number: str, group: str = "ocp-qa", **fields: str) -> NumberRecord:
    return NumberRecord(number, group, {Field[k.upper()]: v for k, v in fields.items()})


def env_drift(
    desired: list[NumberRecord], live: list[NumberRecord], env: Environment = ENV
) -> drift_mod.EnvironmentDrift:
    d = {r.number: r for r in desired}
    return drift_mod.classify(env, diff(d, live, env.groups), live, d)


def sample_report(now: str = "2026-11-30T12:00:00+00:00") -> drift_mod.DriftReport:
    desired = [
        rec("+12015550100", note="a|b <x>"),
        rec("+12015550101"),
        rec("+442079460958", "uk-care"),
        rec("+12015550103", "uk-care"),
    ]
    live = [
        rec("+12015550100", note="old & stale"),
        rec("+12015550102"),
        rec("+442079460958", "uk-care", note="hand edit"),
        rec("+12015550103"),
    ]
    e = env_drift(desired, live)
    drift_mod.age(e, {}, now)
    return drift_mod.DriftReport(now, [e])


def test_each_kind_is_classified() -> None:
    e = env_drift(
        desired=[
            rec("+12015550100", note="want"),
            rec("+12015550101"),
            rec("+12015550103", "uk-care"),
            rec("+12015550104"),
        ],
        live=[
            rec("+12015550100", note="have"),
            rec("+12015550102"),
            rec("+12015550103", "ocp-qa"),
            rec("+12015550104", "elsewhere"),
            rec("+12015550105", "elsewhere"),
        ],
    )
    kinds = {i.number: i.kind for i in e.items}
    assert kinds == {
        "+12015550100": drift_mod.DriftKind.CHANGED,
        "+12015550101": drift_mod.DriftKind.MISSING,
        "+12015550102": drift_mod.DriftKind.UNMANAGED,
        "+12015550103": drift_mod.DriftKind.WRONG_GROUP,
        "+12015550104": drift_mod.DriftKind.WRONG_GROUP,
    }
    changed = next(i for i in e.items if i.number == "+12015550100")
    assert [(f.field, f.desired, f.live) for f in changed.fields] == [("note", "want", "have")]
    assert next(i for i in e.items if i.number == "+12015550104").live_group_id == "elsewhere"
    assert e.out_of_scope == 1  # +12015550105: counted, not listed


def test_unmanaged_in_a_group_without_prune_is_still_drift_and_protected_is_flagged() -> None:
    e = env_drift([], [rec("+442079460958", "uk-care"), rec("+442079460959", "uk-care")])
    assert [(i.number, i.kind.value, i.protected) for i in e.items] == [
        ("+442079460958", "unmanaged", True),
        ("+442079460959", "unmanaged", False),
    ]


def test_cause_tells_out_of_band_from_pending_apply() -> None:
    applied = {"+12015550100": rec("+12015550100", note="v1"), "+12015550101": rec("+12015550101", note="v1")}
    now = {"+12015550100": rec("+12015550100", note="v1"), "+12015550101": rec("+12015550101", note="v2")}
    live = [rec("+12015550100", note="edited in OCP"), rec("+12015550101", note="v1")]
    e = drift_mod.classify(ENV, diff(now, live, ENV.groups), live, now)
    drift_mod.attribute(e, now, applied)
    assert {i.number: i.cause for i in e.items} == {"+12015550100": "out_of_band", "+12015550101": "pending_apply"}


def test_previous_report_keeps_first_seen_and_new_drift_is_new() -> None:
    with freeze_time("2026-11-01T08:00:00Z"):
        first = drift_mod.DriftReport(
            drift_mod.now_utc(), [env_drift([rec("+12015550100", note="x")], [rec("+12015550100")])]
        )
        drift_mod.age(first.environments[0], {}, first.generated_at)
    previous = drift_mod.previous_first_seen(json.loads(reports.render_json(first)))
    with freeze_time("2026-11-04T20:00:00Z"):
        now = drift_mod.now_utc()
        e = env_drift([rec("+12015550100", note="x"), rec("+12015550101")], [rec("+12015550100")])
        drift_mod.age(e, previous, now)
        report = drift_mod.DriftReport(now, [e])
    seen = {i.number: i.first_seen for i in e.items}
    assert seen == {"+12015550100": "2026-11-01T08:00:00+00:00", "+12015550101": "2026-11-04T20:00:00+00:00"}
    text = reports.render_text(report)
    assert "+12015550100" in text and "for 3.5 days" in text
    assert "+12015550101" in text and "— new" in text


@pytest.mark.parametrize(
    ("today", "hidden"),
    [("2026-12-31", True), ("2027-01-01", False)],
)
def test_suppression_hides_until_its_date_then_is_reported_expired(today: str, hidden: bool) -> None:
    suppression = Suppression("+12015550100", "carrier migration", dt.date(2026, 12, 31), "changed")
    with freeze_time(today):
        e = env_drift([rec("+12015550100", note="x")], [rec("+12015550100")])
        drift_mod.suppress(e, [suppression], dt.datetime.now(dt.UTC).date())
    report = drift_mod.DriftReport(today + "T00:00:00+00:00", [e])
    assert report.drifted is (not hidden)
    assert (e.expired_suppressions == [suppression]) is (not hidden)
    if not hidden:
        assert "expired on 2026-12-31" in reports.render_text(report)


def test_suppression_of_another_kind_hides_nothing() -> None:
    e = env_drift([rec("+12015550100", note="x")], [rec("+12015550100")])
    drift_mod.suppress(e, [Suppression("+12015550100", "r", dt.date(2099, 1, 1), "missing")], dt.date(2026, 1, 1))
    assert e.active == e.items


def test_json_validates_against_the_published_schema() -> None:
    data = json.loads(reports.render_json(sample_report()))
    validator = jsonschema.Draft202012Validator(load_schema("drift"), format_checker=jsonschema.FormatChecker())
    assert list(validator.iter_errors(data)) == []
    assert data["environments"][0]["counts"] == {"missing": 1, "unmanaged": 1, "changed": 2, "wrong_group": 1}


def test_junit_has_one_failing_case_per_drifted_number() -> None:
    root = ET.fromstring(reports.render_junit(sample_report()).encode())
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    failing = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert sorted(c.get("name") for c in failing) == [
        "+12015550100",
        "+12015550101",
        "+12015550102",
        "+12015550103",
        "+442079460958",
    ]
    assert suite.get("failures") == "5"
    assert "a|b <x>" in failing[0].find("failure").get("message")  # escaped by the XML writer, read back intact


def test_markdown_escapes_table_cells() -> None:
    md = reports.render_markdown(sample_report())
    assert "a\\|b" in md and "a|b" not in md.replace("a\\|b", "")


def test_html_is_self_contained_and_escaped() -> None:
    page = reports.render_html(sample_report())
    assert "<x>" not in page and "&lt;x&gt;" in page
    without_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in without_namespace and "https://" not in without_namespace  # nothing to fetch
    assert page.count('<tr data-kind="') == 5


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run must install Debian's chromium")
        pytest.skip("chromium is not installed: apt-get install chromium to run this test (.ci/run installs it)")
    page = tmp_path / "drift.html"
    page.write_text(reports.render_html(sample_report()))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "5 of 5 shown" in dom, dom[:2000]  # written by the page's own script: it ran
    assert dom.count('data-kind="') == 5
    shot = tmp_path / "drift.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 5000


# --- against the emulator -----------------------------------------------------------------


def test_read_only_session_cannot_write() -> None:
    with emulator_process() as emulator:
        reader = OCPReader(
            emulator.base_url,
            OCPAuth(emulator.token_url, Credentials("demo", "demo-secret", totp_secret=TOTP_SECRET), otp=OTP_POLICY),
        )
        assert not hasattr(reader, "execute")
        assert reader.export().startswith(b"APPLICATION_TAG,")
        with pytest.raises(ReadOnlyViolation):
            reader._http.put(
                emulator.base_url + "/api/numbers/csv", content=b"OPERATION,NUMBER\r\nDelete,+12015550100\r\n"
            )
        assert emulator.stats()["put_requests"] == 0


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_drift_cli_end_to_end(tmp_path: Path) -> None:
    with emulator_process() as emulator:
        token = emulator.token()
        from numsync.ocp.csvcodec import parse_export
        from numsync.workflow.importer import render_desired

        live = parse_export(
            httpx.post(emulator.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {token}"}).content
        )
        (tmp_path / "desired").mkdir()
        for name, text in render_desired(live, ["uk-care"]).items():
            (tmp_path / "desired" / name).write_text(text)
        (tmp_path / "numsync.yaml").write_text(
            f"environments:\n  demo:\n    base_url: {emulator.base_url}\n    desired: desired\n    {OTP_SETTING}\n    groups:\n      uk-care: {{}}\n"
        )
        _git(tmp_path, "init", "-q")
        _git(tmp_path, "add", ".")
        _git(tmp_path, "commit", "-qm", "applied")
        runner = CliRunner()
        args = ["--config", str(tmp_path / "numsync.yaml"), "drift"]

        clean = runner.invoke(main, args, env=CREDENTIALS)
        assert clean.exit_code == 0 and "No drift." in clean.output

        httpx.patch(
            f"{emulator.url}/_emulator/numbers/+442079460958", json={"NOTE": "edited by hand"}
        ).raise_for_status()
        text = (
            (tmp_path / "desired" / "uk-care.yaml")
            .read_text()
            .replace('"+442079460959":', '"+442079460959":\n    note: "pending"', 1)
        )
        (tmp_path / "desired" / "uk-care.yaml").write_text(text)
        out = tmp_path / "out"
        out.mkdir()
        result = runner.invoke(
            main,
            [
                *args,
                "--last-applied",
                "HEAD",
                "--format",
                "text",
                "--format",
                f"json={out / 'd.json'}",
                "--format",
                f"junit={out / 'd.xml'}",
                "--format",
                f"html={out / 'd.html'}",
            ],
            env=CREDENTIALS,
        )
        assert result.exit_code == 2, result.output
        data = json.loads((out / "d.json").read_text())
        causes = {i["number"]: i["cause"] for i in data["environments"][0]["items"]}
        assert causes == {"+442079460958": "out_of_band", "+442079460959": "pending_apply"}
        assert ET.parse(out / "d.xml").getroot().tag == "testsuites"
        assert emulator.stats()["put_requests"] == 0

        bad = runner.invoke(main, [*args, "--format", "pdf"], env=CREDENTIALS)
        assert bad.exit_code == 1 and "pdf" in bad.output  # usage errors are errors, never "drift"
        no_creds = runner.invoke(main, args, env={"OCP_USERNAME": "", "OCP_PASSWORD": "", "OCP_TOKEN": ""})
        assert no_creds.exit_code == 1


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("nope", "line 1 column 1"),
        ('{"environments": [{"items": [{"x": 1}]}]}', "'format_version' is a required property"),
        ("[" * 100_000, "nested too deeply"),
        (None, "environments.0.items.0.first_seen: 'last week' is not an ISO-8601 timestamp with a time zone"),
        (
            None,
            "environments.0.items.0.first_seen: '2026-11-01T08:00:00' is not an ISO-8601 timestamp with a time zone",
        ),
    ],
)
def test_a_previous_report_that_is_not_one_is_refused_where_it_is_wrong(
    tmp_path: Path, content: str | None, said: str
) -> None:
    """``drift --previous`` with a file that is no drift report used to end in a KeyError, JSONDecodeError or
    (a first_seen that is not a timestamp) a ValueError traceback from the age column; now a located refusal,
    before any request (the base_url below answers nothing)."""
    if content is None:
        first = drift_mod.DriftReport("2026-11-30T12:00:00+00:00", [env_drift([rec("+12015550100", note="x")], [])])
        drift_mod.age(first.environments[0], {}, first.generated_at)
        data = json.loads(reports.render_json(first))
        data["environments"][0]["items"][0]["first_seen"] = said.split("'")[1]
        content = json.dumps(data)
    (tmp_path / "previous.json").write_text(content)
    config = tmp_path / "numsync.yaml"
    config.write_text(
        "environments:\n  p:\n    base_url: http://127.0.0.1:9/integrations\n    desired: desired\n    groups: {ocp-qa: {}}\n"
    )
    (tmp_path / "desired").mkdir()
    result = CliRunner().invoke(
        main, ["--config", str(config), "drift", "--previous", str(tmp_path / "previous.json")], env=CREDENTIALS
    )
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert f"{tmp_path / 'previous.json'} is not a numsync drift report" in result.output
    assert said in result.output, result.output
    assert "Traceback" not in result.output and "127.0.0.1:9" not in result.output
