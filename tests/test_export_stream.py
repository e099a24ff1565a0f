"""The streamed export (issue 16 item 4): parsed as it arrives, with the strict reader's checks and messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_workspace import OTP_POLICY, emulator_process

from numsync.core.model import Field
from numsync.errors import ExportFormatError
from numsync.ocp import Credentials, OCPAuth, OCPClient
from numsync.ocp.csvcodec import parse_export, parse_export_stream
from numsync.ocp.retry import RetryPolicy

HEADER = "NUMBER,GROUP_ID,COUNTRY,MINIAPP_ID,MINIAPP_NAME,LOCALE,PHONE_NUMBER_SET_ID,APPLICATION_TAG,NOTE\r\n"


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def error_of(data: bytes, size: int | None = None) -> str:
    with pytest.raises(ExportFormatError) as caught:
        if size is None:
            parse_export(data)
        else:
            parse_export_stream(chunks(data, size))
    return str(caught.value)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
def test_any_chunking_gives_the_records_of_the_whole_body(export_sample: bytes, size: int) -> None:
    assert parse_export_stream(chunks(export_sample, size)).records == parse_export(export_sample)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_a_bom_a_multibyte_character_and_a_quoted_newline_split_across_chunks(size: int) -> None:
    body = ("\ufeff" + HEADER + '+442079460001,uk-care,GB,,,en-GB,,,"Zürich\r\nline two, ☎"\r\n').encode()
    (record,) = parse_export_stream(chunks(body, size)).records
    assert record.number == "+442079460001"
    assert record.get(Field.NOTE) == "Zürich\nline two, ☎"  # line ends normalized, as in the whole body
    assert [record] == parse_export(body)


BAD = [
    (HEADER + "+442079460001,uk-care,GB,,,en-GB,,,note,extra\r\n", "export row 1 has 10 cells but the header has 9"),
    (HEADER + ",uk-care,GB,,,en-GB,,,\r\n", "export row 1, column NUMBER (column 1) is blank"),
    (HEADER + "+442079460001,uk-care,GB,,,,,,\r\n+44 20 7946 0001,uk-care,GB,,,,,,\r\n", "export row 2: NUMBER"),
    ("NUMBER,NUMBER,GROUP_ID\r\n", "export header, column 2: 'NUMBER' names column NUMBER again"),
    ("NUMBER,GROUP_ID\r\n", "the export lacks column(s)"),
    ("", "the export is empty"),
    ("   <!DOCTYPE html><html><body>maintenance</body></html>", "the export is an HTML or XML page"),
    (HEADER + '+442079460001,uk-care,GB,,,en-GB,,,"cut off', "export row 1 is not valid CSV"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
@pytest.mark.parametrize("size", [1, 4, 50])
def test_streamed_errors_name_the_same_row_and_column(body: str, message: str, size: int) -> None:
    data = body.encode()
    whole = error_of(data)
    assert message in whole
    assert error_of(data, size) == whole


@pytest.mark.parametrize("size", [1, 2, 7, 100, 10_000])
def test_a_byte_that_is_not_utf8_is_named_by_its_offset_in_the_whole_body(size: int) -> None:
    good = (HEADER + "+442079460001,uk-care,GB,,,en-GB,,,é\r\n").encode()
    data = good + b"+442079460002,uk-care,GB,,,en-GB,,,\xff\r\n"
    at = len(good) + data[len(good) :].index(b"\xff")
    assert f"export row 2, column NOTE is not UTF-8 text (byte {at})" in error_of(data, size)
    assert f"export row 2, column NOTE is not UTF-8 text (byte {at})" in error_of(data)
    # a character cut off at the very end
    assert f"export row 2, column NUMBER is not UTF-8 text (byte {len(good)})" in error_of(
        good + "é".encode()[:1], size
    )
    # in the header: named as such
    bad_header = HEADER.replace("NOTE", "NO\udcffTE").encode("utf-8", "surrogateescape")
    assert "the export header is not UTF-8 text (byte" in error_of(bad_header + good[len(HEADER) :], size)


def test_a_chunk_source_that_breaks_passes_its_error_through(export_sample: bytes) -> None:
    def broken() -> Iterator[bytes]:
        yield export_sample[:200]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    with pytest.raises(httpx.RemoteProtocolError):
        parse_export_stream(broken())


# --- over HTTP -------------------------------------------------------------------------------------


def client_for(emulator: object, **options: object) -> OCPClient:
    from cli_workspace import TOTP_SECRET

    auth = OCPAuth(
        emulator.token_url,  # type: ignore[attr-defined]
        Credentials(username="demo", password="demo-secret", totp_secret=TOTP_SECRET),
        otp=OTP_POLICY,
    )
    return OCPClient(emulator.base_url, auth, **options)  # type: ignore[attr-defined, arg-type]


def test_export_records_reads_the_body_as_it_arrives_and_reports_the_bytes(tmp_path: Path) -> None:
    with emulator_process() as emulator, client_for(emulator) as client:
        whole = client.export()
        seen: list[tuple[int, int | None]] = []
        records = client.export_records(lambda received, total: seen.append((received, total))).records
    assert records == parse_export(whole)
    assert seen and seen[-1][0] == len(whole)
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)
    assert all(total in (None, len(whole)) for _, total in seen)


def test_a_body_cut_mid_way_is_exported_again_from_the_start(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {target: export, kind: cut, times: 1}\n")
    retries: list[str] = []
    with (
        emulator_process("--faults", str(faults)) as emulator,
        client_for(
            emulator,
            retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
            on_retry=lambda request, reason, delay: retries.append(reason),
        ) as client,
    ):
        records = client.export_records().records
        again = client.export()
    assert retries == ["connection broken"]
    assert records == parse_export(again)


def test_a_body_cut_every_time_fails_in_words_after_the_last_attempt(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {target: export, kind: cut}\n")
    with (
        emulator_process("--faults", str(faults)) as emulator,
        client_for(emulator, retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)) as client,
    ):
        from numsync.errors import ApiError

        with pytest.raises(ApiError, match=r"export from .* failed: RemoteProtocolError"):
            client.export_records()


class Trickle(httpx.SyncByteStream):
    """A body that counts the chunks taken from it."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.taken = data, size, 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in chunks(self.data, self.size):
            self.taken += 1
            yield chunk


def test_the_export_is_parsed_while_it_arrives_not_read_whole_first(export_sample: bytes) -> None:
    body = Trickle(export_sample, 64)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    taken_when_told: list[int] = []
    auth = OCPAuth("https://ocp.test/auth/token", Credentials(token="pre-issued-token"))
    with OCPClient("https://ocp.test/integrations", auth, transport=transport) as client:
        records = client.export_records(lambda received, total: taken_when_told.append(body.taken)).records
    assert records == parse_export(export_sample)
    # each chunk reached the parser as it came, with the auth flow and the retry layer in between
    assert taken_when_told == list(range(1, len(taken_when_told) + 1)) and len(taken_when_told) > 10
