"""Progress of long stages (issue 16 item 4, issue 18 item 6): a redrawn line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from cli_workspace import CREDENTIALS, emulator_process, live_records, run, workspace, write_desired

from numsync import cli
from numsync.core.model import Field
from numsync.workflow.policy import ProgressStyle, progress_setting_warning, progress_style, worth_showing

EXPORTED = re.compile(r"^exported (\d+) live numbers \((\d+\.\d) kB\) in \d+\.\ds$", re.M)
LOADED = re.compile(r"^loaded (\d+) desired numbers from (\d+) file\(s\) in \d+\.\ds$", re.M)


def test_the_style_follows_the_terminal_ci_and_no_color() -> None:
    assert progress_style({}, True) is ProgressStyle.LIVE
    assert progress_style({}, False) is ProgressStyle.PLAIN
    assert progress_style({"CI": "true"}, True) is ProgressStyle.PLAIN
    assert progress_style({"NO_COLOR": "1"}, True) is ProgressStyle.PLAIN
    # no-color.org: NO_COLOR counts "when present and not an empty string"; an empty one is as if unset
    assert progress_style({"NO_COLOR": ""}, True) is ProgressStyle.LIVE
    assert progress_style({"NUMSYNC_PROGRESS": "never"}, True) is ProgressStyle.OFF


def test_an_unknown_progress_setting_is_named_not_quietly_ignored() -> None:
    for fine in ({}, {"NUMSYNC_PROGRESS": ""}, {"NUMSYNC_PROGRESS": "always"}, {"NUMSYNC_PROGRESS": "NEVER"}):
        assert progress_setting_warning(fine) is None
    warning = progress_setting_warning({"NUMSYNC_PROGRESS": "bogus"})
    assert warning is not None and "NUMSYNC_PROGRESS='bogus'" in warning and "always or never" in warning
    result = run(Path("/nonexistent/numsync.yaml"), "schema", env={"NUMSYNC_PROGRESS": "bogus"})
    assert "Warning: NUMSYNC_PROGRESS='bogus' is not one of always, never" in result.output


def test_only_large_stages_are_shown_unless_asked() -> None:
    assert not worth_showing({}, size=40_000, numbers=300, files=3)
    assert worth_showing({}, size=2_000_000)
    assert worth_showing({}, numbers=20_000)
    assert worth_showing({}, files=10)
    assert worth_showing({"NUMSYNC_PROGRESS": "always"}, size=1)


def edited(tmp_path: Path, emulator: object, notes: int) -> Path:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False}, "limits: {Update: 1}")  # type: ignore[attr-defined]
    records = sorted((r for r in live_records(emulator) if r.group_id == "uk-care"), key=lambda r: r.number)  # type: ignore[arg-type]
    changed = []
    for i, r in enumerate(records):
        fields = dict(r.fields)
        if i < notes:
            fields[Field.NOTE] = f"edited {i}"
        changed.append(type(r)(r.number, r.group_id, fields, provider="twilio"))
    write_desired(tmp_path, changed, ["uk-care"])
    return config


def test_plan_and_apply_print_one_plain_line_per_stage_without_a_terminal(tmp_path: Path) -> None:
    with emulator_process("--limit", "Update=1") as emulator:
        config = edited(tmp_path, emulator, 10)
        live = len(live_records(emulator))
        planned = run(config, "plan", env=CREDENTIALS | {"NUMSYNC_PROGRESS": "always"})
        applied = run(config, "apply", "--auto-approve", env=CREDENTIALS | {"NO_COLOR": "1"})
    assert planned.exit_code == 0, planned.output
    assert [m.group(1) for m in EXPORTED.finditer(planned.output)] == [str(live)]
    assert [(m.group(1), m.group(2)) for m in LOADED.finditer(planned.output)] == [("60", "1")]
    assert applied.exit_code == 0, applied.output
    # a small tenant: no export or load line; ten files is a long apply: one line when all are answered
    assert not EXPORTED.search(applied.output) and not LOADED.search(applied.output)
    assert applied.output.count("sent 10 file(s), every one answered\n") == 1
    for output in (planned.output, applied.output):
        assert "\r" not in output and "\x1b" not in output  # nothing redrawn without a terminal


def test_a_small_plan_prints_no_progress(tmp_path: Path) -> None:
    with emulator_process() as emulator:
        config = edited(tmp_path, emulator, 1)
        planned = run(config, "plan")
    assert planned.exit_code == 0
    assert not EXPORTED.search(planned.output) and not LOADED.search(planned.output)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_redrawn_and_erased_before_other_output(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI", "NO_COLOR", "NUMSYNC_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    terminal = Terminal()
    monkeypatch.setattr(cli.sys, "stderr", terminal)
    echo = cli._Echo()
    echo.export_progress(1_500_000, None)
    echo.export_progress(1_600_000, None)  # within 0.1 s of the last: not redrawn
    assert terminal.getvalue() == "\r\x1b[Kexporting live numbers: 1.5 MB"
    echo.exported(12_000, 2_000_000, 1.25)
    assert terminal.getvalue().endswith("\r\x1b[Kexported 12000 live numbers (2.0 MB) in 1.2s\n")
    echo.loading_desired()
    assert terminal.getvalue().endswith("\r\x1b[Kloading desired files…")
    echo.desired_loaded(20, 1, 0.01)  # small: the line is erased, nothing stays
    assert terminal.getvalue().endswith("loading desired files…\r\x1b[K")
