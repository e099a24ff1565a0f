"""End to end: the numsync CLI against the OCP emulator running as a separate process on a free loopback port."""

from __future__ import annotations

import dataclasses
import http.server
import json
import math
import threading
from pathlib import Path

import httpx
import pytest
from cli_workspace import emulator_process, live_records, run, workspace, write_desired

from numsync.core.model import Field
from numsync.emulator.process import EmulatorProcess


def test_apply_with_more_deletes_than_the_limit_converges_in_the_fewest_requests(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    live = live_records(emulator)
    ocp_qa = sorted((r for r in live if r.group_id == "ocp-qa"), key=lambda r: r.number)
    kept = ocp_qa[:-23]  # 23 pruned: more than the Delete limit of 10
    removed = {r.number for r in ocp_qa[-23:]}
    attached = sum(1 for r in ocp_qa[-23:] if Field.MINIAPP_ID in r.fields)
    unattached = len(removed) - attached
    assert attached and unattached, "the seed should give both kinds in this range"
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    write_desired(tmp_path, kept, ["ocp-qa"])
    before = emulator.stats()["put_requests"]

    result = run(config, "apply", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert "Verified: live now matches desired." in result.output
    numbers = emulator.numbers()
    assert not removed & numbers.keys()
    assert all(r.number in numbers for r in kept)
    # Chains: attached → Detach, Delete; unattached → Delete. Phase 1 holds the Detaches (100 per
    # file) and the unattached Deletes (10 per file); phase 2 the Deletes of the detached numbers.
    expected = max(math.ceil(attached / 100), math.ceil(unattached / 10)) + math.ceil(attached / 10)
    assert emulator.stats()["put_requests"] - before == expected
    again = run(config, "plan", "--detailed-exitcode")
    assert again.exit_code == 0 and "No changes" in again.output


def test_saved_plan_applies_exactly_and_is_refused_when_stale(tmp_path: Path, emulator: EmulatorProcess) -> None:
    live = live_records(emulator)
    records = [r for r in live if r.group_id == "uk-care"]
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    write_desired(tmp_path, records, ["uk-care"])
    text = (tmp_path / "desired" / "uk-care.yaml").read_text()
    (tmp_path / "desired" / "uk-care.yaml").write_text(
        text.replace('"+442079460958":\n', '"+442079460958":\n    note: "changed by review"\n', 1).replace(
            '    note: "Main line, after-hours routing"\n', "", 1
        )
    )
    plan_file = tmp_path / "plan.json"
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0

    # A live change after planning makes the plan stale.
    httpx.patch(f"{emulator.url}/_emulator/numbers/+442079460959", json={"NOTE": "edited by hand"}).raise_for_status()
    puts = emulator.stats()["put_requests"]
    stale = run(config, "apply", str(plan_file))
    assert stale.exit_code == 1
    assert "plan is stale: the live numbers changed" in stale.output
    assert emulator.stats()["put_requests"] == puts

    # Re-plan; then a desired change makes it stale too.
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    (tmp_path / "desired" / "uk-care.yaml").write_text(
        (tmp_path / "desired" / "uk-care.yaml").read_text().replace("changed by review", "changed again")
    )
    stale = run(config, "apply", str(plan_file))
    assert stale.exit_code == 1 and "the desired files changed" in stale.output
    # the refusal says what changed between the reviewed plan and a plan made now
    assert "Between the reviewed plan (old) and a plan made now (new):" in stale.output
    assert '~ +442079460958  note (desired): "changed by review" → "changed again"' in stale.output
    assert emulator.stats()["put_requests"] == puts

    (tmp_path / "desired" / "uk-care.yaml").write_text(
        (tmp_path / "desired" / "uk-care.yaml").read_text().replace("changed again", "changed by review")
    )
    fresh = run(config, "apply", str(plan_file))
    assert fresh.exit_code == 0, fresh.output
    assert emulator.numbers()["+442079460958"]["NOTE"] == "changed by review"
    assert emulator.stats()["put_requests"] == puts + json.loads(plan_file.read_text())["summary"]["requests"]


def test_apply_without_confirmation_and_no_terminal_refuses(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"au-support": True})
    write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "au-support"][:-1], ["au-support"])
    result = run(config, "apply")
    assert result.exit_code == 1 and "--auto-approve" in result.output
    assert emulator.stats()["put_requests"] == 0


# --- bad input: one clear paragraph, a non-zero exit, nothing written ---------------------


def test_yaml_syntax_error(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    (tmp_path / "desired" / "ocp-qa.yaml").write_text('group_id: ocp-qa\nnumbers:\n  "+12015550100": {note: "x"\n')
    result = run(config, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert "ocp-qa.yaml:4:1: YAML syntax error" in result.output
    assert "nothing was sent to OCP" in result.output
    assert emulator.stats()["put_requests"] == emulator.stats()["export_requests"] == 0


def test_schema_violation_points_at_the_line(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(
        'group_id: ocp-qa\nnumbers:\n  "+12015550100":\n    minapp_id: x\n'
    )
    result = run(config, "plan")
    assert result.exit_code == 1
    assert "ocp-qa.yaml:4:5: unknown key 'minapp_id'; did you mean 'miniapp_id'?" in result.output
    assert emulator.stats()["export_requests"] == 0


def test_wrong_credentials(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    write_desired(tmp_path, [], ["ocp-qa"])
    result = run(config, "apply", "--auto-approve", env={"OCP_USERNAME": "demo", "OCP_PASSWORD": "wrong-secret"})
    assert result.exit_code == 1
    assert "OCP refused to log in user 'demo': HTTP 401" in result.output
    assert "wrong-secret" not in result.output
    assert emulator.stats()["put_requests"] == 0


def test_missing_credentials(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    write_desired(tmp_path, [], ["ocp-qa"])
    result = run(config, "plan", env={"OCP_USERNAME": "", "OCP_PASSWORD": "", "OCP_TOKEN": ""})
    assert result.exit_code == 1 and "set OCP_USERNAME and OCP_PASSWORD" in result.output


class _BrokenOCP(http.server.BaseHTTPRequestHandler):
    """A stand-in OCP whose export lacks the NOTE column (and which counts PUTs); a subclass sets another export."""

    puts = 0
    export = b"NUMBER,GROUP_ID,MINIAPP_ID,LOCALE,PHONE_NUMBER_SET_ID,APPLICATION_TAG\r\n+12015550100,ocp-qa,,,,\r\n"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/auth/"):
            body, kind = (
                json.dumps(
                    {"access_token": "t", "expires_in": 300, "refresh_token": "r", "refresh_expires_in": 1800}
                ).encode(),
                "application/json",
            )
        else:
            body, kind = self.export, "text/csv"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        type(self).puts += 1
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_export_with_a_missing_column_stops_before_any_diff(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BrokenOCP)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = workspace(tmp_path, f"http://127.0.0.1:{server.server_port}/integrations", {"ocp-qa": True})
        write_desired(tmp_path, [], ["ocp-qa"])
        result = run(config, "apply", "--auto-approve")
    finally:
        server.shutdown()
    assert result.exit_code == 1
    assert "the live export cannot be read: the export lacks column(s) NOTE" in result.output
    assert _BrokenOCP.puts == 0


_VENDOR_HEADER = "NUMBER,GROUP_ID,MINIAPP_ID,LOCALE,PHONE_NUMBER_SET_ID,APPLICATION_TAG,NOTE"


@pytest.mark.parametrize(
    ("export", "says"),
    [
        (f"{_VENDOR_HEADER},\r\n+12015550100,ocp-qa,,,,,,x\r\n", "export row 1, column 8: 'x' is under a header cell"),
        (
            f"{_VENDOR_HEADER},group_id \r\n+12015550100,ocp-qa,,,,,,ocp-qa\r\n",
            "column 8: 'group_id ' names column GROUP_ID again",
        ),
        (
            f"{_VENDOR_HEADER}\r\n+12015550100,ocp-qa,,,,,\r\n,ocp-qa,,,,,\r\n",
            "export row 2, column NUMBER (column 1) is blank",
        ),
        (f"{_VENDOR_HEADER}\r\n+12015550100, ,,,,,\r\n", "export row 1, column GROUP_ID (column 2) is blank"),
        (
            f"{_VENDOR_HEADER}\r\n+12015550100,ocp-qa,,,,,\r\n+1 201 555 0100,ocp-qa,,,,,\r\n",
            "export row 2: NUMBER +12015550100",
        ),
    ],
    ids=["value-without-column-name", "column-twice", "blank-number", "blank-group", "number-twice"],
)
def test_a_defective_export_stops_apply_before_any_diff_naming_row_and_column(
    tmp_path: Path, export: str, says: str
) -> None:
    handler = type("DefectiveOCP", (_BrokenOCP,), {"export": export.encode(), "puts": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = workspace(tmp_path, f"http://127.0.0.1:{server.server_port}/integrations", {"ocp-qa": True})
        write_desired(tmp_path, [], ["ocp-qa"])
        result = run(config, "apply", "--auto-approve")
    finally:
        server.shutdown()
    assert result.exit_code == 1
    assert "the live export cannot be read" in result.output and says in result.output, result.output
    assert handler.puts == 0


def test_short_token_lifetimes_are_renewed_transparently(tmp_path: Path) -> None:
    with emulator_process("--access-ttl", "1", "--refresh-ttl", "2") as emulator:
        config = workspace(tmp_path, emulator.base_url, {"de-service": False})
        write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "de-service"], ["de-service"])
        for _ in range(3):
            result = run(config, "plan", "--detailed-exitcode")
            assert result.exit_code == 0, result.output
        assert emulator.stats()["token_requests"] >= 4


def test_numbers_ocp_lists_in_another_form_are_addressed_as_listed(tmp_path: Path, export_sample: bytes) -> None:
    """The export lists +12015550123 as "+1 201-555-0123": equal to desired "+12015550123" after
    normalization, so no change for it alone; when a field changes, the Update, Detach and
    Delete rows carry the NUMBER exactly as OCP listed it, so OCP finds the number."""
    sample = export_sample.decode("utf-8")
    listed = {"+12015550123": "+1 201-555-0123", "+12015550124": "+1 (201) 555-0124"}
    for number, form in listed.items():
        assert f",{number}," in sample
        sample = sample.replace(f",{number},", f",{form},")
    seed = tmp_path / "live.csv"
    seed.write_text(sample, "utf-8")
    with emulator_process("--from-csv", str(seed)) as emulator:
        live = live_records(emulator)
        assert {r.listed_as for r in live if r.listed_as} == set(listed.values())
        groups = sorted({r.group_id for r in live})
        config = workspace(tmp_path, emulator.base_url, dict.fromkeys(groups, True))
        write_desired(tmp_path, live, groups)
        assert run(config, "plan", "--detailed-exitcode").exit_code == 0  # another form of the same number is no change

        # +12015550123 gets a note (Update); +12015550124 is pruned (Detach, then Delete).
        noted = [
            dataclasses.replace(r, fields=r.fields | {Field.NOTE: "reached as listed"})
            if r.number == "+12015550123"
            else r
            for r in live
        ]
        write_desired(tmp_path, [r for r in noted if r.number != "+12015550124"], groups)
        saved = tmp_path / "plan.json"
        planned = run(config, "plan", "--out", str(saved))
        assert planned.exit_code == 0, planned.output
        assert (
            'Update  +12015550123     NUMBER="+1 201-555-0123"  NOTE="reached as listed"' in planned.output
        )  # the form sent is shown
        rows = [row for phase in json.loads(saved.read_text())["phases"] for batch in phase for row in batch]
        assert {(r["OPERATION"], r["NUMBER"]) for r in rows} == {
            ("Update", "+1 201-555-0123"),
            ("Detach", "+1 (201) 555-0124"),
            ("Delete", "+1 (201) 555-0124"),
        }

        result = run(config, "apply", str(saved))
        assert result.exit_code == 0, result.output
        assert "Applied 3 of 3 operation(s)" in result.output and "Verified: live now matches desired." in result.output
        numbers = emulator.numbers()
        assert numbers["+1 201-555-0123"]["NOTE"] == "reached as listed" and "+1 (201) 555-0124" not in numbers
        assert run(config, "plan", "--detailed-exitcode").exit_code == 0


def test_import_writes_files_that_plan_no_changes_and_no_machine_specific_schema_path(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    from numsync.workflow.importer import schema_modeline

    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True, "uk-care": False})
    result = run(config, "import")
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "desired").glob("*.yaml"))
    assert [f.name for f in files] == ["ocp-qa.yaml", "uk-care.yaml"]
    # tmp_path is no checkout holding numsync: a path to this machine's install would break elsewhere
    assert not any("$schema" in f.read_text() for f in files)
    assert run(config, "plan", "--detailed-exitcode").exit_code == 0
    assert schema_modeline(tmp_path / "desired") is None
    assert run(config, "import").exit_code == 1  # never overwrites without --force
    # inside numsync's own checkout the path is relative and portable
    root = Path(__file__).resolve().parents[1]
    assert schema_modeline(root / "desired") == "../numsync/schema/desired.schema.json"
