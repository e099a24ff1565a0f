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


def test_every_form_of_a_secret_is_masked() -> None:
    import base64
    import urllib.parse

    from numsync.redaction import SecretRegistry

    registry = SecretRegistry()
    registry.add("tok/en+1 ä")
    registry.add_basic("user", "pw:x")
    for form in (
        "tok/en+1 ä",
        urllib.parse.quote("tok/en+1 ä", safe=""),
        urllib.parse.quote_plus("tok/en+1 ä"),
        "tok/en+1 \\u00e4",  # JSON with ensure_ascii
        base64.b64encode("tok/en+1 ä".encode()).decode(),
        base64.b64encode(b"user:pw:x").decode(),  # HTTP Basic
    ):
        assert registry.redact(f"before {form} after") == "before *** after", form
    assert registry.redact_bytes(b"\xff tok/en+1 \xc3\xa4") == b"\xff ***"
    registry.clear()
    assert registry.redact("tok/en+1 ä") == "tok/en+1 ä"


def test_a_one_time_code_is_not_masked_in_every_phone_number() -> None:
    from numsync.redaction import SecretRegistry

    registry = SecretRegistry()
    registry.add("123456", "tok-123456-x")
    assert registry.redact("+12015123456 tok-123456-x") == "+12015123456 ***"


def test_tokens_are_masked_from_eight_characters() -> None:
    from numsync.redaction import SecretRegistry

    registry = SecretRegistry()
    registry.add_token("t", "r", "tok-1234")
    assert registry.redact("the error: tok-1234") == "the error: ***"
