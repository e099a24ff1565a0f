"""The emulator's faults of a tenant that is more than flaky: ``late``, ``lag``, ``echo``, ``writer``.

Each is shown with a raw httpx client over real HTTP: what the answer is, and when the write
shows in live state. Waits poll the emulator's admin state with a deadline (no fixed sleeps
that a loaded machine could outrun).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_workspace import wait_for

from numsync.emulator.faults import load_rules
from tests.test_faults import DROPPED, PUT_UPDATE, RAW, bearer, emulator, raw_export, raw_put

NUMBER = "+12015550100"


def note(emu, number: str = NUMBER) -> str:
    return emu.numbers()[number]["NOTE"]


def test_late_answers_first_and_applies_afterwards(tmp_path: Path) -> None:
    with emulator(tmp_path, [{"target": "put", "kind": "late", "status": 504, "seconds": 0.5, "times": 1}]) as emu:
        before = note(emu)
        answer = raw_put(emu, bearer(emu))
        assert answer.status_code == 504
        assert note(emu) == before  # answered before processing
        assert wait_for(lambda: note(emu) == "written by the fault test")


def test_late_after_a_reset(tmp_path: Path) -> None:
    rules = [{"target": "put", "kind": "late", "answer": "reset", "seconds": 0.3, "times": 1}]
    with emulator(tmp_path, rules) as emu:
        with pytest.raises(DROPPED):
            raw_put(emu, bearer(emu))
        assert wait_for(lambda: note(emu) == "written by the fault test")


def test_lag_shows_the_state_of_seconds_ago(tmp_path: Path) -> None:
    with emulator(tmp_path, [{"target": "export", "kind": "lag", "seconds": 1.0}]) as emu:
        headers = bearer(emu)
        assert raw_put(emu, headers).status_code == 200
        assert "written by the fault test" not in raw_export(emu, headers).text  # the write is not visible yet
        assert wait_for(lambda: "written by the fault test" in raw_export(emu, headers).text)
        assert raw_export(emu, {"Authorization": "Bearer wrong"}).status_code == 401


def test_echo_repeats_the_authorization_header_and_the_form(tmp_path: Path) -> None:
    with emulator(tmp_path, [{"target": "token", "kind": "echo", "status": 400, "after": 1}]) as emu:
        headers = bearer(emu)  # the first login passes
        form = {"client_id": "ocp", "grant_type": "password", "username": "demo", "password": "p@ss word/+"}
        answer = RAW.post(emu.token_url, data=form, headers=headers)
        assert answer.status_code == 400
        text = answer.json()["error_description"]
        assert headers["Authorization"] in text
        assert "password=p@ss word/+" in text  # decoded
        assert "p%40ss+word%2F%2B" in text  # and as sent


def test_writer_changes_another_number_after_the_file(tmp_path: Path) -> None:
    with emulator(tmp_path, [{"target": "put", "kind": "writer", "times": 1}]) as emu:
        before = emu.numbers()
        assert raw_put(emu, bearer(emu), PUT_UPDATE).status_code == 200
        after = emu.numbers()
        changed = {n for n in after if after[n] != before[n]}
        assert NUMBER in changed and len(changed) == 2
        other = (changed - {NUMBER}).pop()
        assert after[other]["NOTE"].startswith("changed by another writer")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"target": "export", "kind": "late"}, "fault kind late applies to target put"),
        ({"target": "put", "kind": "lag", "seconds": 1}, "fault kind lag applies to target export"),
        ({"target": "put", "kind": "late", "answer": "never"}, "answer must be one of"),
        ({"target": "put", "kind": "writer", "number": 5}, "number must be a string"),
    ],
)
def test_new_rule_keys_are_validated(rule: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_rules([rule])


def test_the_log_lists_every_row_carried_out(tmp_path: Path) -> None:
    with emulator(tmp_path, []) as emu:
        headers = bearer(emu)
        raw_put(emu, headers)
        raw_put(emu, headers)  # the same Update again: carried out, changes nothing
        log = RAW.get(emu.url + "/_emulator/log").json()
    assert [(e["OPERATION"], e["NUMBER"], e["status"], e["changed"]) for e in log] == [
        ("Update", NUMBER, "applied", True),
        ("Update", NUMBER, "applied", False),
    ]
    assert log[0]["cells"] == {"OPERATION": "Update", "NUMBER": NUMBER, "NOTE": "written by the fault test"}
