"""CSV codec: parsing the numbers export defensively, writing operation files per RFC 4180."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numsync.core.model import Field, NumberRecord
from numsync.ocp.csvcodec import ExportFormatError, parse_export, read_export, write_operations
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import FIELD_OF_COLUMN, NULL, Operation

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPORT_SAMPLE = FIXTURES / "export-sample.csv"
OPERATIONS_SAMPLE = FIXTURES / "operations-sample.csv"

# The vendor's documented export columns, spelled out here (not imported) so a change in model.py is caught.
VENDOR_COLUMNS = [
    "APPLICATION_TAG",
    "COUNTRY",
    "GROUP_ID",
    "LOCALE",
    "MINIAPP_DIAMANT_APP_NAME",
    "MINIAPP_GROUP",
    "MINIAPP_ID",
    "MINIAPP_NAME",
    "MINIAPP_TYPE",
    "NUMBER",
    "PHONE_NUMBER_SET_ID",
    "NOTE",
]
FIELD_COLUMNS = ["MINIAPP_ID", "LOCALE", "PHONE_NUMBER_SET_ID", "APPLICATION_TAG", "NOTE"]

APP_BILLING = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"
APP_PIN = "9c1e04d2-51aa-4e0f-8b7e-2f3a6c1d9e10.card_pin.Numeric.ocp-qa@card_pin.ocp-qa"


def export_csv(
    rows: list[dict[str, str]],
    *,
    columns: list[str] | None = None,
    lineterminator: str = "\r\n",
    quoting: int = csv.QUOTE_MINIMAL,
    bom: bool = False,
) -> bytes:
    """An export body written by the csv module: ``rows`` are column -> cell, missing cells empty."""
    columns = columns or VENDOR_COLUMNS
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=lineterminator, quoting=quoting)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def row(number: str = "+12015550123", group: str = "ocp-qa", **cells: str) -> dict[str, str]:
    return {"NUMBER": number, "GROUP_ID": group, **{k.upper(): v for k, v in cells.items()}}


def by_number(records: list[NumberRecord]) -> dict[str, NumberRecord]:
    return {r.number: r for r in records}


# --------------------------------------------------------------------------- parse: the fixture


def test_fixture_parses_to_seven_records_in_file_order() -> None:
    records = parse_export(EXPORT_SAMPLE.read_bytes())
    assert [r.number for r in records] == [
        "+12015550123",
        "+12015550124",
        "+12015550125",
        "+12015550126",
        "+442079460958",
        "+442079460959",
        "+493012345678",
    ]
    assert [r.group_id for r in records] == ["ocp-qa"] * 4 + ["uk-care"] * 2 + ["de-service"]
    assert all(r.provider is None for r in records)


def test_fixture_values_equal_the_csv_cells_and_empty_cells_are_absent() -> None:
    data = EXPORT_SAMPLE.read_bytes()
    records = parse_export(data)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert len(rows) == len(records) == 7
    for cells, record in zip(rows, records):
        assert record.number == cells["NUMBER"]
        assert record.group_id == cells["GROUP_ID"]
        expected = {FIELD_OF_COLUMN[c]: cells[c] for c in FIELD_COLUMNS if cells[c] != ""}
        assert record.fields == expected, cells["NUMBER"]
        for c in FIELD_COLUMNS:
            if cells[c] == "":
                assert record.get(FIELD_OF_COLUMN[c]) is None


def test_fixture_spot_values() -> None:
    records = by_number(parse_export(EXPORT_SAMPLE.read_bytes()))
    assert records["+12015550123"].fields == {
        Field.MINIAPP_ID: APP_BILLING,
        Field.LOCALE: "en-US",
        Field.PHONE_NUMBER_SET_ID: "us-east",
    }
    assert records["+12015550124"].get(Field.APPLICATION_TAG) == "billing"
    assert records["+12015550124"].get(Field.NOTE) == "Billing hotline"
    assert records["+12015550125"].get(Field.MINIAPP_ID) == APP_PIN
    assert records["+12015550126"].fields == {}
    # NOTE with a comma and NOTE with doubled quotes come back intact.
    assert records["+442079460958"].get(Field.NOTE) == "Main line, after-hours routing"
    assert records["+493012345678"].get(Field.NOTE) == 'Kundendienst "Zentrale"'
    assert records["+442079460959"].fields == {Field.PHONE_NUMBER_SET_ID: "london"}


# --------------------------------------------------------------------------- parse: tolerated variations


def test_shuffled_columns_and_extra_columns_are_ignored() -> None:
    reference = parse_export(EXPORT_SAMPLE.read_bytes())
    rows = list(csv.DictReader(io.StringIO(EXPORT_SAMPLE.read_text("utf-8"), newline="")))
    columns = VENDOR_COLUMNS + ["CREATED_AT", "X_EXTRA"]
    random.Random(7).shuffle(columns)
    assert columns[: len(VENDOR_COLUMNS)] != VENDOR_COLUMNS  # really shuffled
    for r in rows:
        r["CREATED_AT"] = "2024-05-01T10:00:00Z"
        r["X_EXTRA"] = "+19999999999, ignored"
    assert parse_export(export_csv(rows, columns=columns)) == reference


def test_only_required_columns_are_needed_and_header_case_and_spaces_are_tolerated() -> None:
    data = b" number ,group_id,Miniapp_Id,LOCALE,PHONE_NUMBER_SET_ID,APPLICATION_TAG,NOTE\r\n+12015550123,ocp-qa,app,en-us,set,tag,hi\r\n"
    [record] = parse_export(data)
    assert record == NumberRecord(
        "+12015550123",
        "ocp-qa",
        {
            Field.MINIAPP_ID: "app",
            Field.LOCALE: "en-US",
            Field.PHONE_NUMBER_SET_ID: "set",
            Field.APPLICATION_TAG: "tag",
            Field.NOTE: "hi",
        },
    )


def test_utf8_bom_is_accepted() -> None:
    plain = EXPORT_SAMPLE.read_bytes()
    assert not plain.startswith(b"\xef\xbb\xbf")
    records = parse_export(b"\xef\xbb\xbf" + plain)
    assert records == parse_export(plain)
    # the BOM must not stick to the first column name (APPLICATION_TAG)
    assert by_number(records)["+12015550124"].get(Field.APPLICATION_TAG) == "billing"


def test_crlf_line_ends_are_accepted() -> None:
    plain = EXPORT_SAMPLE.read_bytes()
    crlf = plain.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert b"\r\n" in crlf
    records = parse_export(crlf)
    assert records == parse_export(plain)
    assert all("\r" not in v for r in records for v in r.fields.values())


def test_quoted_newline_inside_note_is_kept_and_normalized_to_lf() -> None:
    data = export_csv(
        [
            row("+12015550123", note='first line\r\nsecond, line\rthird "q"'),
            row("+12015550124", note="a\nb"),
            row("+12015550125", note="  padded  "),
        ]
    )
    records = by_number(parse_export(data))
    assert len(records) == 3
    assert records["+12015550123"].get(Field.NOTE) == 'first line\nsecond, line\nthird "q"'
    assert records["+12015550124"].get(Field.NOTE) == "a\nb"
    assert records["+12015550125"].get(Field.NOTE) == "padded"


@pytest.mark.parametrize("raw", ["+1 201-555-0123", "+1 (201) 555-0123", " +12015550123 ", "+1.201.555.0123"])
def test_number_is_normalized_to_e164(raw: str) -> None:
    [record] = parse_export(export_csv([row(raw, locale="EN_us")]))
    assert record.number == "+12015550123"
    assert record.get(Field.LOCALE) == "en-US"


def test_whitespace_only_cells_are_absent_and_blank_lines_skipped() -> None:
    data = export_csv([row("+12015550123", note="   ", locale=" en-US ")]) + b"\r\n\r\n"
    [record] = parse_export(data)
    assert record.fields == {Field.LOCALE: "en-US"}


# --------------------------------------------------------------------------- parse: errors


@pytest.mark.parametrize("drop", [["NOTE"], ["GROUP_ID", "LOCALE"], ["NUMBER"]])
def test_missing_column_is_named(drop: list[str]) -> None:
    columns = [c for c in VENDOR_COLUMNS if c not in drop]
    with pytest.raises(ExportFormatError) as info:
        parse_export(export_csv([row()], columns=columns))
    message = str(info.value)
    assert "lacks column" in message
    for name in drop:
        assert name in message.split(";")[0]
    for name in set(FIELD_COLUMNS + ["NUMBER", "GROUP_ID"]) - set(drop):
        assert name not in message.split(";")[0]


def test_optional_informational_columns_may_be_missing() -> None:
    columns = ["NUMBER", "GROUP_ID"] + FIELD_COLUMNS
    [record] = parse_export(export_csv([row(note="x")], columns=columns))
    assert record.get(Field.NOTE) == "x"


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n",
        b"\xef\xbb\xbf  \r\n<html><body>Login required</body></html>",
        b"<?xml version='1.0'?><error>denied</error>",
    ],
)
def test_html_page_is_rejected_as_html(body: bytes) -> None:
    with pytest.raises(ExportFormatError, match="HTML") as info:
        parse_export(body)
    assert "not CSV" in str(info.value)


def test_cut_off_row_names_the_row_number() -> None:
    data = EXPORT_SAMPLE.read_bytes()
    lines = data.split(b"\n")
    cut = b"\n".join(lines[:4]) + b"\n" + lines[4][:20]  # header + rows 1-3 + part of row 4
    with pytest.raises(ExportFormatError) as info:
        parse_export(cut)
    message = str(info.value)
    assert "row 4" in message
    assert "cut off" in message


def test_cut_off_inside_a_quoted_note_names_the_row_number() -> None:
    data = EXPORT_SAMPLE.read_bytes()
    cut = data[: data.index(b'"Main line,') + len(b'"Main line, aft')]
    with pytest.raises(ExportFormatError) as info:
        parse_export(cut)
    assert "row 5" in str(info.value)
    assert "cut off" in str(info.value)


def test_row_with_too_many_cells_is_rejected_with_its_row() -> None:
    data = export_csv([row("+12015550123"), row("+12015550124")]) + b"a,b,c,d,e,f,g,h,i,j,k,l,m\r\n"
    with pytest.raises(ExportFormatError, match=r"row 3 has 13 cells but the header has 12"):
        parse_export(data)


@pytest.mark.parametrize("body", ["Zentrale K\u00f6ln".encode("latin-1"), b"\xff\xfeN\x00U\x00"])
def test_non_utf8_is_rejected(body: bytes) -> None:
    header = ",".join(VENDOR_COLUMNS).encode()
    with pytest.raises(ExportFormatError, match="not UTF-8"):
        parse_export(header + b"\r\n" + body)


@pytest.mark.parametrize("body", [b"", b"\xef\xbb\xbf"])
def test_empty_body_is_rejected(body: bytes) -> None:
    with pytest.raises(ExportFormatError, match="empty"):
        parse_export(body)


def test_header_only_is_an_empty_list_not_an_error() -> None:
    # An empty export is legal CSV; refusing to prune from it is the planner's job.
    assert parse_export(",".join(VENDOR_COLUMNS).encode() + b"\r\n") == []


def test_duplicate_number_names_both_rows() -> None:
    data = export_csv([row("+12015550123"), row("+12015550124"), row("+1 201-555-0123", group="other")])
    with pytest.raises(ExportFormatError) as info:
        parse_export(data)
    message = str(info.value)
    assert "+12015550123" in message
    assert "row 3" in message
    assert "row 1" in message
    assert "(as '+1 201-555-0123')" in message  # the form that row holds


def test_unreadable_number_names_its_row() -> None:
    data = export_csv([row("+12015550123"), row("12015550124")])
    with pytest.raises(ExportFormatError) as info:
        parse_export(data)
    assert "row 2" in str(info.value)
    assert "12015550124" in str(info.value)


@pytest.mark.parametrize("second", ["number", " NUMBER ", "Number"])
def test_a_column_named_twice_in_any_case_or_spacing_names_both_columns(second: str) -> None:
    data = export_csv([row()], columns=[*VENDOR_COLUMNS, second])
    with pytest.raises(ExportFormatError) as info:
        parse_export(data)
    message = str(info.value)
    assert f"column {len(VENDOR_COLUMNS) + 1}: {second!r} names column NUMBER again" in message
    assert f"in column {VENDOR_COLUMNS.index('NUMBER') + 1}" in message


def test_a_value_under_a_header_cell_without_a_name_names_its_row_and_column() -> None:
    columns = [*VENDOR_COLUMNS[:3], "", *VENDOR_COLUMNS[3:]]
    data = export_csv([row("+12015550123"), {**row("+12015550124"), "": "stray"}], columns=columns)
    with pytest.raises(ExportFormatError) as info:
        parse_export(data)
    assert "export row 2, column 4: 'stray' is under a header cell without a name" in str(info.value)


def test_empty_unnamed_columns_are_accepted_with_a_warning_naming_them() -> None:
    data = export_csv([row("+12015550123"), row("+12015550124")], columns=[*VENDOR_COLUMNS, "", " "])
    read = read_export(data)
    assert [r.number for r in read.records] == ["+12015550123", "+12015550124"]
    assert read.records == parse_export(data)
    n = len(VENDOR_COLUMNS)
    [warning] = read.warnings
    assert f"no name in column(s) {n + 1}, {n + 2} (of {n + 2})" in warning and "export it again" in warning


def test_an_export_with_every_column_named_has_no_warning() -> None:
    assert read_export(export_csv([row("+12015550123")])).warnings == ()


@pytest.mark.parametrize("column", ["NUMBER", "GROUP_ID"])
def test_a_blank_number_or_group_id_names_its_row_and_column(column: str) -> None:
    data = export_csv([row("+12015550123"), {**row("+12015550124"), column: "  "}])
    with pytest.raises(ExportFormatError) as info:
        parse_export(data)
    position = VENDOR_COLUMNS.index(column) + 1
    assert f"export row 2, column {column} (column {position}) is blank" in str(info.value)


# --------------------------------------------------------------------------- write_operations


def read_back(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_header_always_has_operation_and_number() -> None:
    data = write_operations([OperationRow(Operation.DETACH, "+442079460958")])
    assert data == b"OPERATION,NUMBER\r\nDetach,+442079460958\r\n"


def test_header_of_no_rows_is_still_operation_and_number() -> None:
    assert write_operations([]) == b"OPERATION,NUMBER\r\n"


def test_provider_column_present_with_a_create() -> None:
    rows = [
        OperationRow(Operation.CREATE, "+12015550127", {"GROUP_ID": "ocp-qa", "PROVIDER": "twilio"}),
        OperationRow(Operation.DELETE, "+442079460959"),
    ]
    header, back = read_back(write_operations(rows))
    assert header == ["OPERATION", "GROUP_ID", "NUMBER", "PROVIDER"]
    assert back == [
        {"OPERATION": "Create", "GROUP_ID": "ocp-qa", "NUMBER": "+12015550127", "PROVIDER": "twilio"},
        {"OPERATION": "Delete", "GROUP_ID": "", "NUMBER": "+442079460959", "PROVIDER": ""},
    ]


def test_provider_column_absent_without_a_create() -> None:
    rows = [
        OperationRow(Operation.UPDATE, "+12015550124", {"NOTE": "x", "APPLICATION_TAG": NULL}),
        OperationRow(Operation.ATTACH, "+12015550126", {"MINIAPP_ID": APP_PIN, "LOCALE": "en-US"}),
    ]
    header, _ = read_back(write_operations(rows))
    assert "PROVIDER" not in header
    assert "GROUP_ID" not in header
    assert header == ["OPERATION", "NUMBER", "MINIAPP_ID", "APPLICATION_TAG", "LOCALE", "NOTE"]


def test_provider_column_present_for_a_create_without_provider_value() -> None:
    rows = [OperationRow(Operation.CREATE, "+12015550127", {"GROUP_ID": "ocp-qa"})]
    header, _ = read_back(write_operations(rows))
    assert "PROVIDER" in header


def test_rfc4180_quoting_of_commas_quotes_and_newlines() -> None:
    note = 'Main line, after "hours"\nsecond line'
    data = write_operations(
        [OperationRow(Operation.UPDATE, "+442079460958", {"NOTE": note, "APPLICATION_TAG": "plain"})]
    )
    assert data == (
        b"OPERATION,NUMBER,APPLICATION_TAG,NOTE\r\n"
        b'Update,+442079460958,plain,"Main line, after ""hours""\nsecond line"\r\n'
    )


def test_crlf_record_ends() -> None:
    rows = [OperationRow(Operation.DETACH, f"+1201555012{i}") for i in range(3)]
    data = write_operations(rows)
    assert data.count(b"\r\n") == 4
    assert data.replace(b"\r\n", b"").count(b"\n") == 0
    assert data.endswith(b"\r\n")


def test_null_is_written_literally() -> None:
    data = write_operations([OperationRow(Operation.UPDATE, "+12015550124", {"APPLICATION_TAG": NULL, "NOTE": "n"})])
    assert b",<NULL>," in data
    _, back = read_back(data)
    assert back[0]["APPLICATION_TAG"] == "<NULL>"


def test_round_trip_of_the_operations_sample() -> None:
    """The sample's rows, written again, read back cell for cell (PHONE_NUMBER_SET_ID is unused, so omitted)."""
    _, sample = read_back(OPERATIONS_SAMPLE.read_bytes())
    rows = [OperationRow.from_json(cells) for cells in sample]
    data = write_operations(rows)
    header, back = read_back(data)
    assert header == ["OPERATION", "GROUP_ID", "NUMBER", "PROVIDER", "MINIAPP_ID", "APPLICATION_TAG", "LOCALE", "NOTE"]
    assert len(back) == len(sample) == 5
    for original, again in zip(sample, back):
        assert {k: v for k, v in original.items() if v} == {k: v for k, v in again.items() if v}


def test_round_trip_through_dictreader_gives_the_same_cells() -> None:
    rows = [
        OperationRow(Operation.CREATE, "+12015550127", {"GROUP_ID": "ocp-qa", "PROVIDER": "twilio"}),
        OperationRow(
            Operation.UPDATE,
            "+12015550124",
            {"NOTE": 'a, "b"\r\nc', "APPLICATION_TAG": NULL, "PHONE_NUMBER_SET_ID": "us-east"},
        ),
        OperationRow(Operation.ATTACH, "+12015550126", {"MINIAPP_ID": APP_PIN, "LOCALE": "en-US"}),
        OperationRow(Operation.UPDATE, "+12015550125", {"NOTE": '=HYPERLINK("x")'}),
        OperationRow(Operation.DELETE, "+442079460959"),
    ]
    _, back = read_back(write_operations(rows))
    assert [{k: v for k, v in r.items() if v} for r in back] == [r.to_json() for r in rows]


# --------------------------------------------------------------------------- spreadsheet_safe


@pytest.mark.parametrize("note", ["=1+1", "+SUM(A1)", "-2+3", "@cmd"])
def test_spreadsheet_safe_prefixes_formula_notes(note: str) -> None:
    rows = [OperationRow(Operation.UPDATE, "+12015550124", {"NOTE": note, "APPLICATION_TAG": "ok"})]
    _, safe = read_back(write_operations(rows, spreadsheet_safe=True))
    assert safe[0]["NOTE"] == "'" + note
    assert safe[0]["NUMBER"] == "+12015550124"  # E.164 keeps its +
    assert safe[0]["APPLICATION_TAG"] == "ok"
    _, raw = read_back(write_operations(rows))
    assert raw[0]["NOTE"] == note  # only when asked


def test_spreadsheet_safe_leaves_null_and_plain_text_alone() -> None:
    rows = [OperationRow(Operation.UPDATE, "+12015550124", {"NOTE": "Billing = main", "APPLICATION_TAG": NULL})]
    _, safe = read_back(write_operations(rows, spreadsheet_safe=True))
    assert safe[0]["NOTE"] == "Billing = main"
    assert safe[0]["APPLICATION_TAG"] == NULL
    assert safe[0]["NUMBER"] == "+12015550124"


def test_spreadsheet_safe_also_covers_other_text_columns() -> None:
    rows = [OperationRow(Operation.UPDATE, "+12015550124", {"APPLICATION_TAG": "=cmd|' /C calc'!A0"})]
    _, safe = read_back(write_operations(rows, spreadsheet_safe=True))
    assert safe[0]["APPLICATION_TAG"] == "'=cmd|' /C calc'!A0"


# --------------------------------------------------------------------------- property: csv module -> parse_export

# printable text with the CSV-special pieces mixed in generously
_TEXT = st.lists(
    st.one_of(
        st.sampled_from([",", '"', "\n", "\r", "\r\n", " ", "\t", "'", ";", "<NULL>", "<b>"]),
        st.characters(blacklist_categories=("Cs", "Cc")),
    ),
    max_size=20,
).map("".join)


def _expected(text: str) -> str | None:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return normalized or None


@settings(max_examples=150, deadline=None)
@given(
    cells=st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=5),
    # Python 3.11's csv writer leaves a bare "\r" unquoted when the line terminator is "\n"
    # (so the file itself is broken); with "\n" line ends every cell is therefore quoted.
    dialect=st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\r\n", csv.QUOTE_ALL), ("\n", csv.QUOTE_ALL)]),
    bom=st.booleans(),
)
def test_property_free_text_round_trips_through_the_csv_module(
    cells: list[tuple[str, str]], dialect: tuple[str, int], bom: bool
) -> None:
    lineterminator, quoting = dialect
    rows = [
        row(f"+1201555{100 + i:04d}", note=note, application_tag=tag, country="US")
        for i, (note, tag) in enumerate(cells)
    ]
    records = parse_export(export_csv(rows, lineterminator=lineterminator, quoting=quoting, bom=bom))
    assert [r.number for r in records] == [f"+1201555{100 + i:04d}" for i in range(len(cells))]
    for record, (note, tag) in zip(records, cells):
        assert record.get(Field.NOTE) == _expected(note)
        assert record.get(Field.APPLICATION_TAG) == _expected(tag)
        assert record.group_id == "ocp-qa"
        assert set(record.fields) <= {Field.NOTE, Field.APPLICATION_TAG}


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("NUMBER", "+12015550123", "+12015550123"),  # E.164: digits only, never a formula
        ("NUMBER", "+44-20-7946-0959", "'+44-20-7946-0959"),  # a spreadsheet would compute 44-20-7946-0959
        ("NUMBER", "+1 (201) 555-0124", "'+1 (201) 555-0124"),
        ("NOTE", "+44 call back", "'+44 call back"),
        ("NOTE", "=1+1", "'=1+1"),
        ("APPLICATION_TAG", "<NULL>", "<NULL>"),
        ("NOTE", "plain", "plain"),
    ],
)
def test_review_cells_never_run_as_formulas(column: str, value: str, shown: str) -> None:
    from numsync.ocp.csvcodec import spreadsheet_safe_cell

    assert spreadsheet_safe_cell(column, value) == shown


def test_a_listed_number_with_an_extension_keeps_its_own_identity() -> None:
    records = by_number(parse_export(export_csv([row("+12015550128"), row("+1 201-555-0128 ext. 12")])))
    assert set(records) == {"+12015550128", "+12015550128;ext=12"}
    assert records["+12015550128;ext=12"].listed_as == "+1 201-555-0128 ext. 12"


@pytest.mark.parametrize("memo_limit", [0, 3, 4096])
def test_repeated_cells_read_as_each_cell_alone(monkeypatch: pytest.MonkeyPatch, memo_limit: int) -> None:
    """Cell texts are remembered per column while reading: every row still gets exactly its own cells' values."""
    from numsync.core.model import normalize_value
    from numsync.ocp import csvcodec

    monkeypatch.setattr(csvcodec, "MEMO_LIMIT", memo_limit)
    rng = random.Random(7)
    texts = ["app-1", " app-1 ", "app-2\r\n", "   ", "", "en-us", "EN_us", "zh-hant-tw", "x" * 3, "Grüße\rzwei"]
    rows = [
        [rng.choice([" g1", "g1", "g2 "]), f"+1201555{n:04d}", *[rng.choice(texts) for _ in FIELD_COLUMNS]]
        for n in range(300)
    ]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["GROUP_ID", "NUMBER", *FIELD_COLUMNS])
    writer.writerows(rows)
    records = parse_export(out.getvalue().encode())
    for row, record in zip(rows, records, strict=True):
        expected = {}
        for column, cell in zip(FIELD_COLUMNS, row[2:]):
            value = normalize_value(FIELD_OF_COLUMN[column], cell)
            if value is not None:
                expected[FIELD_OF_COLUMN[column]] = value
        assert (record.number, record.group_id, record.fields) == (row[1], row[0].strip(), expected)
