"""The OCP emulator over real HTTP: a subprocess on 127.0.0.1, driven with httpx.

One module-scoped emulator serves read-only tests; tests that write or need
special flags start their own (``fresh`` fixture or an explicit EmulatorProcess).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import phonenumbers
import pytest
from cli_workspace import emulator_process
from click.testing import CliRunner

from numsync.emulator import EmulatorProcess, TenantState, create_app, seed_tenant
from numsync.emulator.command import emulator_command
from numsync.emulator.state import EXPORT_COLUMNS, load_state

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPORT_SAMPLE = FIXTURES / "export-sample.csv"
OPERATIONS_SAMPLE = FIXTURES / "operations-sample.csv"

BILLING = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"
CARD_PIN = "9c1e04d2-51aa-4e0f-8b7e-2f3a6c1d9e10.card_pin.Numeric.ocp-qa@card_pin.ocp-qa"
CARE_ROUTER = "0b7f3a90-2c4d-4e1b-9a55-7d2e8c6f1a3b.care_router.Flow.uk-care@care_router.uk-care"
HEADER = "OPERATION,GROUP_ID,NUMBER,PROVIDER,MINIAPP_ID,PHONE_NUMBER_SET_ID,APPLICATION_TAG,LOCALE,NOTE"


# ---------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorProcess]:
    """A demo-seeded emulator shared by tests that do not write; they log in often, so OTP codes last 1 s."""
    with emulator_process(otp_period=1) as process:
        yield process


@pytest.fixture
def fresh() -> Iterator[EmulatorProcess]:
    """A demo-seeded emulator of this test's own."""
    with emulator_process() as process:
        yield process


def token_request(emu: EmulatorProcess, **form: str) -> httpx.Response:
    return httpx.post(emu.token_url, data={"client_id": "ocp", **form})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def export(emu: EmulatorProcess, token: str, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{emu.base_url}/api/numbers/csv", headers=auth(token), **kwargs)  # type: ignore[arg-type]


def export_rows(emu: EmulatorProcess, token: str, **kwargs: object) -> list[dict[str, str]]:
    answer = export(emu, token, **kwargs)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text, newline="")))


def put_csv(emu: EmulatorProcess, text: str, *, user: str = "demo", raw: bool = False) -> httpx.Response:
    """Upload an operation CSV as multipart field ``file`` (or a raw text/csv body) as ``user``."""
    token = emu.token(user, f"{user}-secret")
    url = f"{emu.base_url}/api/numbers/csv"
    if raw:
        headers = {**auth(token), "Content-Type": "text/csv; charset=utf-8"}
        return httpx.put(url, headers=headers, content=text.encode("utf-8"))
    return httpx.put(url, headers=auth(token), files={"file": ("ops.csv", text.encode("utf-8"), "text/csv")})


def ops(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def results_by_row(answer: httpx.Response) -> dict[int, dict[str, str]]:
    assert answer.status_code == 200, answer.text
    return {r["row"]: r for r in answer.json()["results"]}


def assert_refused(answer: httpx.Response, status: int, error: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error
    assert body["applied"] == 0
    return str(body["message"])


# ---------------------------------------------------------------------------
# auth


def test_password_grant_returns_keycloak_shaped_tokens(emu: EmulatorProcess) -> None:
    answer = httpx.post(emu.token_url, data=emu.login_form())
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["refresh_expires_in"] == 1800
    assert body["access_token"] != body["refresh_token"]
    assert export(emu, body["access_token"]).status_code == 200


def test_refresh_grant_returns_a_new_working_access_token(emu: EmulatorProcess) -> None:
    first = httpx.post(emu.token_url, data=emu.login_form()).json()
    answer = token_request(emu, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert answer.status_code == 200
    second = answer.json()
    assert second["access_token"] != first["access_token"]
    assert export(emu, second["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password", "username": "demo", "password": "wrong"}, 401, "invalid_grant"),
        ({"grant_type": "password", "username": "nobody", "password": "demo-secret"}, 401, "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": "not-a-token"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ],
)
def test_token_refusals(emu: EmulatorProcess, form: dict[str, str], status: int, error: str) -> None:
    answer = token_request(emu, **form)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert "access_token" not in answer.json()


def test_wrong_client_id_is_unauthorized_client(emu: EmulatorProcess) -> None:
    answer = httpx.post(
        emu.token_url,
        data={"client_id": "other", "grant_type": "password", "username": "demo", "password": "demo-secret"},
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic ZGVtbzpkZW1v"}])
def test_api_needs_a_valid_bearer_token(emu: EmulatorProcess, headers: dict[str, str]) -> None:
    for method in ("POST", "PUT"):
        answer = httpx.request(method, f"{emu.base_url}/api/numbers/csv", headers=headers)
        assert answer.status_code == 401
        assert set(answer.json()) >= {"error", "message"}


def test_expired_access_token_is_refused_but_refresh_still_works() -> None:
    with emulator_process("--access-ttl", "1", "--refresh-ttl", "30") as emu:
        tokens = httpx.post(emu.token_url, data=emu.login_form()).json()
        assert tokens["expires_in"] == 1
        assert export(emu, tokens["access_token"]).status_code == 200
        time.sleep(1.2)
        expired = export(emu, tokens["access_token"])
        assert expired.status_code == 401
        assert expired.json()["error"] == "invalid_token"
        renewed = token_request(emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        assert export(emu, renewed.json()["access_token"]).status_code == 200


def test_expired_refresh_token_is_invalid_grant_with_injected_clock() -> None:
    now = [1000.0]
    app = create_app(seed_tenant("empty"), refresh_ttl=10, clock=lambda: now[0])
    transport = httpx.ASGITransport(app=app)

    async def scenario() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://emu") as client:
            form = {"client_id": "ocp", "grant_type": "password", "username": "demo", "password": "demo-secret"}
            tokens = (await client.post("/auth/realms/master/protocol/openid-connect/token", data=form)).json()
            refresh = {"client_id": "ocp", "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            now[0] += 9
            ok = await client.post("/auth/realms/master/protocol/openid-connect/token", data=refresh)
            now[0] += 2
            late = await client.post("/auth/realms/master/protocol/openid-connect/token", data=refresh)
            return ok.status_code, late.status_code

    assert asyncio.run(scenario()) == (200, 400)


# ---------------------------------------------------------------------------
# export


def test_export_has_the_twelve_columns_in_order_and_csv_type(emu: EmulatorProcess) -> None:
    answer = export(emu, emu.token())
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    header = next(csv.reader(io.StringIO(answer.text)))
    assert tuple(header) == EXPORT_COLUMNS
    assert answer.text.split("\r\n", 1)[0] == ",".join(EXPORT_COLUMNS)


def test_export_contains_the_fixture_rows_with_identical_values(emu: EmulatorProcess) -> None:
    exported = {r["NUMBER"]: r for r in export_rows(emu, emu.token())}
    with EXPORT_SAMPLE.open(newline="", encoding="utf-8") as handle:
        fixture = list(csv.DictReader(handle))
    assert len(fixture) == 7
    for row in fixture:
        assert exported[row["NUMBER"]] == row


def test_export_quotes_per_rfc4180(emu: EmulatorProcess) -> None:
    text = export(emu, emu.token()).text
    assert '"Main line, after-hours routing"' in text
    assert '"Kundendienst ""Zentrale"""' in text
    assert '"Escalations desk\nweekdays only"' in text
    rows = {r["NUMBER"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    assert rows["+493012345660"]["NOTE"] == "Rückruf für Großkunden"


def test_export_is_sorted_and_seed_is_realistic(emu: EmulatorProcess) -> None:
    rows = export_rows(emu, emu.token())
    numbers = [r["NUMBER"] for r in rows]
    assert numbers == sorted(numbers)
    assert 250 <= len(rows) <= 350
    assert {r["GROUP_ID"] for r in rows} == {"ocp-qa", "us-sales", "uk-care", "de-service", "au-support"}
    unattached = [r for r in rows if not r["MINIAPP_ID"]]
    assert 0.15 <= len(unattached) / len(rows) <= 0.25
    assert all(not r["MINIAPP_NAME"] and not r["MINIAPP_TYPE"] for r in unattached)
    for row in rows:
        parsed = phonenumbers.parse(row["NUMBER"])
        assert phonenumbers.is_valid_number(parsed), row["NUMBER"]
        assert row["COUNTRY"] == phonenumbers.region_code_for_number(parsed)


def test_export_shows_only_the_callers_groups(emu: EmulatorProcess) -> None:
    rows = export_rows(emu, emu.token("qa-owner", "qa-owner-secret"))
    assert rows
    assert {r["GROUP_ID"] for r in rows} == {"ocp-qa"}


def test_export_group_filter_body(emu: EmulatorProcess) -> None:
    token = emu.token()
    filtered = export_rows(emu, token, json={"group_ids": ["uk-care", "de-service"]})
    assert {r["GROUP_ID"] for r in filtered} == {"uk-care", "de-service"}
    unfiltered = export_rows(emu, token, json={})
    assert len(unfiltered) > len(filtered)
    bad = export(emu, token, json={"group_ids": "uk-care"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_filter"


def test_viewer_may_export(emu: EmulatorProcess) -> None:
    assert export_rows(emu, emu.token("viewer", "viewer-secret"))


# ---------------------------------------------------------------------------
# operations that apply


def test_operations_fixture_applies_one_of_each_type(fresh: EmulatorProcess) -> None:
    answer = put_csv(fresh, OPERATIONS_SAMPLE.read_text(encoding="utf-8"))
    body = answer.json()
    assert (body["applied"], body["failed"]) == (5, 0), body
    assert [r["OPERATION"] for r in body["results"]] == ["Create", "Update", "Attach", "Detach", "Delete"]
    numbers = fresh.numbers()
    created = numbers["+12015550127"]
    assert (created["GROUP_ID"], created["MINIAPP_ID"], created["LOCALE"]) == ("ocp-qa", "", "")
    updated = numbers["+12015550124"]
    assert (updated["APPLICATION_TAG"], updated["NOTE"], updated["MINIAPP_ID"]) == (
        "",
        "Billing hotline (24/7)",
        BILLING,
    )
    attached = numbers["+12015550126"]
    assert (attached["MINIAPP_ID"], attached["LOCALE"], attached["MINIAPP_NAME"]) == (CARD_PIN, "en-US", "card_pin")
    detached = numbers["+442079460958"]
    assert detached["MINIAPP_ID"] == "" and detached["MINIAPP_NAME"] == ""
    assert (detached["LOCALE"], detached["PHONE_NUMBER_SET_ID"], detached["NOTE"]) == (
        "en-GB",
        "london",
        "Main line, after-hours routing",
    )
    assert "+442079460959" not in numbers


def test_null_clears_and_empty_leaves_as_is(fresh: EmulatorProcess) -> None:
    answer = put_csv(fresh, ops("Update,,+12015550124,,,<NULL>,,,", "update,,+442079460958,,,,<NULL>, ,New note"))
    assert answer.json()["applied"] == 2, answer.text
    numbers = fresh.numbers()
    billing = numbers["+12015550124"]
    assert billing["PHONE_NUMBER_SET_ID"] == ""
    assert (billing["APPLICATION_TAG"], billing["NOTE"], billing["LOCALE"], billing["MINIAPP_ID"]) == (
        "billing",
        "Billing hotline",
        "en-US",
        BILLING,
    )
    care = numbers["+442079460958"]
    assert (care["APPLICATION_TAG"], care["NOTE"], care["LOCALE"]) == ("", "New note", "en-GB")


def test_update_moves_set_and_attaches_with_locale(fresh: EmulatorProcess) -> None:
    answer = put_csv(fresh, ops(f"Update,ocp-qa,+12015550126,,{CARD_PIN},us-west,ivr,es-US,"))
    assert answer.json()["results"][0]["status"] == "applied", answer.text
    row = fresh.numbers()["+12015550126"]
    assert (row["MINIAPP_ID"], row["PHONE_NUMBER_SET_ID"], row["APPLICATION_TAG"], row["LOCALE"]) == (
        CARD_PIN,
        "us-west",
        "ivr",
        "es-US",
    )


def test_update_null_miniapp_detaches(fresh: EmulatorProcess) -> None:
    put_csv(fresh, ops("Update,,+12015550123,,<NULL>,,,,"))
    row = fresh.numbers()["+12015550123"]
    assert row["MINIAPP_ID"] == "" and row["LOCALE"] == "en-US"


def test_detach_of_unattached_number_is_a_no_op_success(fresh: EmulatorProcess) -> None:
    result = results_by_row(put_csv(fresh, ops("Detach,,+12015550126,,,,,,")))[1]
    assert result["status"] == "applied"
    assert fresh.numbers()["+12015550126"]["MINIAPP_ID"] == ""


# ---------------------------------------------------------------------------
# row errors (other rows still apply)


def test_row_errors_do_not_stop_other_rows(fresh: EmulatorProcess) -> None:
    before = fresh.numbers()
    assert before["+12015550104"]["MINIAPP_ID"] == "" and before["+12015550104"]["LOCALE"] == ""
    text = ops(
        "Create,ocp-qa,+12015550123,twilio,,,,,",  # 1 exists
        "Create,ocp-qa,+12015550127,twilio,,,,,",  # 2 applies
        "Update,,+12015550125,,,london,,,",  # 3 set of uk-care
        "Update,,+12015550100,,nope.app.Flow.ocp-qa@app.ocp-qa,,,,",  # 4 unknown miniapp
        f"Update,,+12015550101,,{CARE_ROUTER},,,,",  # 5 miniapp of another group
        f"Attach,,+12015550126,,{CARD_PIN},,,,",  # 6 Attach without LOCALE
        "Delete,,+12015550102,,,,,,",  # 7 attached
        "Delete,,+19999999999,,,,,,",  # 8 unknown
        "Update,us-sales,+12015550103,,,,tag,,",  # 9 group change
        f"Update,,+12015550104,,{CARD_PIN},,,,",  # 10 Update attaching without LOCALE
    )
    answer = put_csv(fresh, text)
    results = results_by_row(answer)
    body = answer.json()
    assert (body["applied"], body["failed"]) == (1, 9), body
    assert results[1]["message"] == "number already exists"
    assert results[2]["status"] == "applied"
    assert "london" in results[3]["message"] and "uk-care" in results[3]["message"]
    assert "unknown MINIAPP_ID" in results[4]["message"]
    assert "uk-care" in results[5]["message"]
    assert "LOCALE" in results[6]["message"]
    assert "detach it first" in results[7]["message"]
    assert results[8]["message"] == "unknown number"
    assert "GROUP_ID cannot be changed" in results[9]["message"]
    assert "LOCALE" in results[10]["message"]
    after = fresh.numbers()
    assert "+12015550127" in after
    del after["+12015550127"]
    assert after == before


def test_create_rejects_invalid_numbers_and_unknown_groups(fresh: EmulatorProcess) -> None:
    results = results_by_row(
        put_csv(
            fresh,
            ops(
                "Create,ocp-qa,12015550199,twilio,,,,,",
                "Create,no-such-group,+12125550190,twilio,,,,,",
                "Create,ocp-qa,+12125550191,,,,,,",
            ),
        )
    )
    assert "E.164" in results[1]["message"]
    assert "unknown GROUP_ID" in results[2]["message"]
    assert "PROVIDER" in results[3]["message"]
    assert all(r["status"] == "failed" for r in results.values())


def test_create_ignores_other_columns_and_says_so(fresh: EmulatorProcess) -> None:
    result = results_by_row(put_csv(fresh, ops(f"Create,ocp-qa,+12015550127,twilio,{BILLING},,,en-US,hello")))[1]
    assert result["status"] == "applied"
    assert "ignored on Create: MINIAPP_ID, LOCALE, NOTE" in result["message"]
    row = fresh.numbers()["+12015550127"]
    assert (row["MINIAPP_ID"], row["LOCALE"], row["NOTE"]) == ("", "", "")


def test_invalid_locale_is_a_row_error(fresh: EmulatorProcess) -> None:
    result = results_by_row(put_csv(fresh, ops("Update,,+12015550123,,,,,en_US,")))[1]
    assert result["status"] == "failed" and "LOCALE" in result["message"]
    assert fresh.numbers()["+12015550123"]["LOCALE"] == "en-US"


# ---------------------------------------------------------------------------
# file-level refusals (nothing applied)


def test_limit_exceeded_refuses_the_whole_file(fresh: EmulatorProcess) -> None:
    before = fresh.numbers()
    unattached = sorted(n for n, r in before.items() if not r["MINIAPP_ID"])[:11]
    rows = [f"Delete,,{n},,,,,," for n in unattached] + ["Update,,+12015550123,,,,,,changed"]
    message = assert_refused(put_csv(fresh, ops(*rows)), 400, "limit_exceeded")
    assert message == "Delete: 11 rows exceed the limit of 10 per file"
    assert fresh.numbers() == before


def test_limit_option_overrides_default() -> None:
    with emulator_process("--limit", "Update=2", "--limit", "delete=20") as emu:
        message = assert_refused(
            put_csv(emu, ops(*[f"Update,,+1212555010{i},,,,,,n" for i in range(3)])), 400, "limit_exceeded"
        )
        assert message == "Update: 3 rows exceed the limit of 2 per file"
        before = emu.numbers()
        unattached = sorted(n for n, r in before.items() if not r["MINIAPP_ID"])[:11]
        assert put_csv(emu, ops(*[f"Delete,,{n},,,,,," for n in unattached])).json()["applied"] == 11


# Each file but the empty one holds a valid Update of +12015550100 that must not apply.
@pytest.mark.parametrize(
    ("text", "error", "fragment"),
    [
        ("GROUP_ID,NUMBER,NOTE\r\nocp-qa,+12015550100,changed\r\n", "missing_column", "OPERATION"),
        (
            "OPERATION,NUMBER,NOTE\r\nUpdate,+12015550100,changed\r\nRemove,+12015550124,\r\n",
            "invalid_operation",
            "row 2: OPERATION 'Remove'",
        ),
        (
            "OPERATION,GROUP_ID,NUMBER,NOTE\r\nUpdate,,+12015550100,changed\r\nCreate,ocp-qa,+12015550127,\r\n",
            "missing_column",
            "PROVIDER",
        ),
        ("OPERATION,NUMBER,NOTE,COUNTRY\r\nUpdate,+12015550100,changed,US\r\n", "unknown_column", "COUNTRY"),
        ("OPERATION,NUMBER,NOTE,note\r\nUpdate,+12015550100,changed,x\r\n", "duplicate_column", "NOTE"),
        (
            "OPERATION,NUMBER,NOTE\r\nUpdate,+12015550100,changed\r\nUpdate,+12015550100,again\r\n",
            "duplicate_number",
            "rows 1 and 2",
        ),
        ("OPERATION,NUMBER,NOTE\r\nUpdate,+12015550100,changed\r\nUpdate,+12015550123\r\n", "bad_csv", "row 2"),
        ("", "empty_file", "header"),
    ],
)
def test_bad_files_are_refused_whole(fresh: EmulatorProcess, text: str, error: str, fragment: str) -> None:
    before = fresh.numbers()
    message = assert_refused(put_csv(fresh, text), 400, error)
    assert fragment in message
    assert fresh.numbers() == before


def test_viewer_cannot_write(fresh: EmulatorProcess) -> None:
    before = fresh.numbers()
    message = assert_refused(put_csv(fresh, ops("Update,,+12015550123,,,,,,x"), user="viewer"), 403, "forbidden")
    assert "OWNER" in message
    assert fresh.numbers() == before


def test_owner_of_one_group_cannot_touch_another(fresh: EmulatorProcess) -> None:
    before = fresh.numbers()
    text = ops(
        "Update,,+12015550123,,,,,,mine", "Update,,+442079460958,,,,,,not mine", "Create,uk-care,+442079460930,bt,,,,,"
    )
    message = assert_refused(put_csv(fresh, text, user="qa-owner"), 403, "forbidden")
    assert "row 2 (+442079460958, group uk-care)" in message
    assert "row 3" in message and "row 1 " not in message
    assert fresh.numbers() == before
    # the same user may write its own group
    assert put_csv(fresh, ops("Update,,+12015550123,,,,,,mine"), user="qa-owner").json()["applied"] == 1


def test_other_content_types_are_415(fresh: EmulatorProcess) -> None:
    answer = httpx.put(
        f"{fresh.base_url}/api/numbers/csv",
        headers={**auth(fresh.token()), "Content-Type": "application/json"},
        content=b"{}",
    )
    assert_refused(answer, 415, "unsupported_media_type")


def test_multipart_without_file_field_is_refused(fresh: EmulatorProcess) -> None:
    answer = httpx.put(
        f"{fresh.base_url}/api/numbers/csv",
        headers=auth(fresh.token()),
        files={"upload": ("ops.csv", ops("Update,,+12015550123,,,,,,x").encode(), "text/csv")},
    )
    message = assert_refused(answer, 400, "missing_file")
    assert "upload" in message


# ---------------------------------------------------------------------------
# encodings


def test_raw_text_csv_upload_with_bom_crlf_and_quoted_newline(fresh: EmulatorProcess) -> None:
    text = '\ufeffnumber,Operation,note,LOCALE\r\n+12015550123,update,"two\r\nlines, ""quoted""",en-GB\r\n\r\n'
    answer = put_csv(fresh, text, raw=True)
    assert answer.json()["applied"] == 1, answer.text
    row = fresh.numbers()["+12015550123"]
    assert row["NOTE"] == 'two\r\nlines, "quoted"'
    assert row["LOCALE"] == "en-GB"


def test_raw_and_multipart_uploads_have_the_same_effect() -> None:
    text = OPERATIONS_SAMPLE.read_text(encoding="utf-8")
    with emulator_process() as multipart, emulator_process() as raw:
        assert put_csv(multipart, text).json() == put_csv(raw, text, raw=True).json()
        assert multipart.numbers() == raw.numbers()


# ---------------------------------------------------------------------------
# stats, admin, persistence


def test_stats_count_every_put_including_refused(fresh: EmulatorProcess) -> None:
    start = fresh.stats()
    put_csv(fresh, ops("Update,,+12015550123,,,,,,x", "Update,,+19999999999,,,,,,y"))
    put_csv(fresh, "GROUP_ID,NUMBER\r\n")  # refused
    put_csv(fresh, ops("Update,,+12015550123,,,,,,z"), user="viewer")  # forbidden
    httpx.put(f"{fresh.base_url}/api/numbers/csv")  # no token
    export(fresh, fresh.token())
    end = fresh.stats()
    assert end["put_requests"] - start["put_requests"] == 4
    assert end["rows_applied"] - start["rows_applied"] == 1
    assert end["export_requests"] - start["export_requests"] == 1
    assert end["token_requests"] - start["token_requests"] == 4


def test_admin_edits_and_reset(fresh: EmulatorProcess) -> None:
    url = f"{fresh.url}/_emulator/numbers"
    patched = httpx.patch(f"{url}/+12015550123", json={"NOTE": "out of band", "MINIAPP_ID": None})
    assert patched.status_code == 200
    assert (patched.json()["NOTE"], patched.json()["MINIAPP_ID"], patched.json()["MINIAPP_NAME"]) == (
        "out of band",
        "",
        "",
    )
    assert httpx.patch(f"{url}/+19999999999", json={"NOTE": "x"}).status_code == 404
    assert httpx.patch(f"{url}/+12015550123", json={"COUNTRY": "FR"}).status_code == 400
    created = httpx.post(url, json={"NUMBER": "+12015550127", "GROUP_ID": "ocp-qa", "NOTE": "direct"})
    assert created.status_code == 201
    assert httpx.post(url, json={"NUMBER": "+12015550127", "GROUP_ID": "ocp-qa"}).status_code == 409
    assert httpx.delete(f"{url}/+12015550100").status_code == 200
    numbers = fresh.numbers()
    assert numbers["+12015550127"]["NOTE"] == "direct"
    assert "+12015550100" not in numbers
    assert numbers["+12015550123"]["NOTE"] == "out of band"
    fresh.reset()
    numbers = fresh.numbers()
    assert "+12015550127" not in numbers and "+12015550100" in numbers
    assert numbers["+12015550123"]["MINIAPP_ID"] == BILLING


def test_state_endpoint_shows_no_secrets(emu: EmulatorProcess) -> None:
    token = emu.token()
    text = httpx.get(f"{emu.url}/_emulator/state").text
    assert "demo-secret" not in text and token not in text and "password" not in text
    state = json.loads(text)
    assert set(state["numbers"][0]) == set(EXPORT_COLUMNS)
    assert {"PHONE_NUMBER_SET_ID": "london", "GROUP_ID": "uk-care"} in state["phone_number_sets"]
    assert {u["username"] for u in state["users"]} == {"demo", "viewer", "qa-owner"}


def test_state_file_persists_across_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "tenant.json"
    with emulator_process("--state", str(state_file)) as first:
        assert state_file.exists()
        assert (
            put_csv(first, ops("Update,,+12015550123,,,,,,persisted", "Delete,,+12015550126,,,,,,")).json()["applied"]
            == 2
        )
    assert load_state(state_file).numbers["+12015550123"].note == "persisted"
    with emulator_process("--state", str(state_file), "--seed", "empty") as second:
        numbers = second.numbers()
        assert numbers["+12015550123"]["NOTE"] == "persisted"
        assert "+12015550126" not in numbers
        second.reset()  # back to the state as loaded, not to the seed
        assert second.numbers()["+12015550123"]["NOTE"] == "persisted"


def test_sigterm_exits_cleanly() -> None:
    emu = emulator_process()
    try:
        emu.start()
        assert emu.process is not None
        emu.process.send_signal(signal.SIGTERM)
        assert emu.process.wait(5) == 0
    finally:
        emu.stop()  # never leaves the process behind, whatever failed


def test_sigterm_right_after_the_port_file_appears_is_never_lost() -> None:
    """50 quick start/stop cycles, SIGTERM the moment the port is known: each exits 0, none hangs."""
    for cycle in range(50):
        emu = emulator_process("--seed", "empty")
        try:
            emu.start()
            assert emu.process is not None
            emu.process.send_signal(signal.SIGTERM)
            assert emu.process.wait(10) == 0, f"cycle {cycle}: {emu.stderr_text()}"
        finally:
            emu.stop()


# ---------------------------------------------------------------------------
# command-line options


def test_user_option_replaces_seeded_users() -> None:
    with emulator_process("--user", "alice:pa:ss:OWNER:uk-care,de-service", "--user", "bob:b-pw:viewer") as emu:
        assert token_request(emu, grant_type="password", username="demo", password="demo-secret").status_code == 401
        rows = export_rows(emu, emu.token("alice", "pa:ss"))
        assert {r["GROUP_ID"] for r in rows} == {"uk-care", "de-service"}
        bob = emu.token("bob", "b-pw")
        answer = httpx.put(
            f"{emu.base_url}/api/numbers/csv",
            headers=auth(bob),
            files={"file": ("o.csv", b"OPERATION,NUMBER\r\n", "text/csv")},
        )
        assert answer.status_code == 403


def test_empty_seed_and_from_csv(tmp_path: Path) -> None:
    with emulator_process("--seed", "empty") as emu:
        state = emu.state()
        assert state["numbers"] == [] and len(state["miniapps"]) >= 10
    with emulator_process("--from-csv", str(EXPORT_SAMPLE)) as emu:
        exported = export(emu, emu.token()).text.replace("\r\n", "\n")
        assert exported == EXPORT_SAMPLE.read_text(encoding="utf-8")
        state = emu.state()
        assert set(state["groups"]) == {"ocp-qa", "uk-care", "de-service"}
        assert state["groups"]["uk-care"]["phone_number_sets"] == ["london"]


def test_command_refuses_non_loopback_host_and_bad_limits() -> None:
    runner = CliRunner()
    result = runner.invoke(emulator_command, ["--host", "0.0.0.0"])
    assert result.exit_code == 2 and "loopback" in result.output
    result = runner.invoke(emulator_command, ["--limit", "Frobnicate=3"])
    assert result.exit_code == 2 and "Frobnicate" in result.output
    result = runner.invoke(emulator_command, ["--user", "eve:s3cr3t-pw:ROOT"])
    assert result.exit_code == 1 and "ROLE" in result.output and "s3cr3t" not in result.output


def test_start_failure_reports_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "state.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(RuntimeError, match="cannot read emulator state"), emulator_process("--state", str(broken)):
        pass


# ---------------------------------------------------------------------------
# seed (in process)


def test_seed_is_deterministic_and_round_trips() -> None:
    first, second = seed_tenant("demo"), seed_tenant("demo")
    assert first.to_json() == second.to_json()
    assert TenantState.from_json(first.to_json()) == first
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in first.numbers)
    ids = list(first.miniapps)
    assert all(m.id.endswith(f".{m.type}.{m.group}@{m.name}.{m.group}") for m in first.miniapps.values())
    assert len(ids) == len(set(ids))
    with pytest.raises(ValueError):
        seed_tenant("nope")
