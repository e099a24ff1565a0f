"""numsync.redaction: known secret values never survive into text, in any of the forms they travel in."""

from __future__ import annotations

import json
from pathlib import Path

from numsync.redaction import Redactor
from numsync.workflow.journal import Journal


def test_each_secret_is_masked_raw_and_stripped() -> None:
    redact = Redactor(["  s3cret-pw\n", None, "", "tok-123"])
    assert redact("sent s3cret-pw and '  s3cret-pw\n' and tok-123") == "sent *** and '***' and ***"
    assert redact("nothing secret here") == "nothing secret here"


def test_a_secret_containing_another_is_masked_whole() -> None:
    redact = Redactor(["abc", "xxabcxx"])
    assert redact("xxabcxx then abc") == "*** then ***"


def test_whitespace_only_and_missing_secrets_mask_nothing() -> None:
    assert Redactor([" ", "\n", None, ""]).secrets == ()
    assert Redactor([" ", "pw"])("a b pw") == "a b ***"


def test_the_journal_masks_a_secret_that_json_escapes(tmp_path: Path) -> None:
    secret = 'pa"ss\\word\twith-quote'
    path = tmp_path / "j.jsonl"
    with Journal(path, [secret]) as j:
        j.write("request", error=f"login with {secret} failed")
    text = path.read_text("utf-8")
    assert json.dumps(secret)[1:-1] not in text and secret not in text
    assert json.loads(text)["error"] == "login with *** failed"
