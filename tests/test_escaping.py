"""Hostile live values in every report format: one escaping layer per format (issue 15, item 2)."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from numsync.core.diff import ChangeKind, ChangeSummary
from numsync.core.drift import DriftItem, DriftKind, DriftReport, EnvironmentDrift, FieldDrift
from numsync.core.model import Field
from numsync.gitlab import truncate
from numsync.ocp.vocabulary import Operation
from numsync.reports import drift as drift_reports
from numsync.reports import markdown, text
from numsync.reports import results as result_files
from numsync.reports.escaping import visible
from numsync.workflow.plan import Plan
from numsync.workflow.results import Outcome, ResultRow, Results, read_results

#: What a tenant editor can put in NOTE, APPLICATION_TAG or GROUP_ID.
HOSTILE = [
    "[click](javascript:alert(1))",
    "![x](https://tracker.example/p.png)",
    "<b>bold</b><img src=x onerror=alert(1)>",
    "@all please look",
    "rtl \u202eevil\u202c and \u2066isolate\u2069",
    "c1 \u009b31m and line\u2028sep",
    "esc \x1b[31mred",
]
INVISIBLE = ["\u202e", "\u2066", "\u2069", "\u009b", "\u2028", "\x1b"]


def outside_code_spans(markdown_text: str) -> str:
    """The Markdown with every inline code span removed (GitLab interprets nothing inside them)."""
    return re.sub(r"(`+)(?:(?!\1).)*?\1", "", markdown_text)


def hostile_plan() -> Plan:
    changes = [
        ChangeSummary(f"+1201555{100 + i:04d}", ChangeKind.UPDATE, value, {Field.NOTE: ("old", value)})
        for i, value in enumerate(HOSTILE)
    ]
    return Plan("prod", [], changes, conflicts=[f"+12015550100 is live in group {v!r}" for v in HOSTILE])


def hostile_drift() -> DriftReport:
    items = [
        DriftItem("prod", f"+1201555{100 + i:04d}", DriftKind.CHANGED, v, v, (FieldDrift("note", "x", v),))
        for i, v in enumerate(HOSTILE)
    ]
    return DriftReport("2026-12-01T00:00:00+00:00", [EnvironmentDrift("prod", items)])


def test_visible_escapes_every_layout_changing_character() -> None:
    shown = visible("a\u202eb\u2066c\u009bd\u2028e\x1bf\u200bg")
    assert shown == "a\\u202eb\\u2066c\\u009bd\\u2028e\\u001bf\\u200bg"
    assert visible("plain ascii, and ünïcödé ✓") == "plain ascii, and ünïcödé ✓"


def test_text_reports_show_no_invisible_character_from_data() -> None:
    for rendered in (text.render_plan(hostile_plan()), drift_reports.render_text(hostile_drift())):
        for char in INVISIBLE:
            assert char not in rendered, repr(char)
        assert "\\u202e" in rendered


def test_markdown_reports_interpret_nothing_from_data() -> None:
    for rendered in (
        markdown.render_plan(hostile_plan(), violations=[f"group {v!r} deletes" for v in HOSTILE]),
        drift_reports.render_markdown(hostile_drift()),
    ):
        free = outside_code_spans(rendered)
        for needle in ("<b>", "<img", "](", "![", "@all", "javascript:"):
            assert needle not in free, (needle, free)
        for char in INVISIBLE:
            assert char not in rendered, repr(char)


def test_json_keeps_data_as_data() -> None:
    rendered = drift_reports.render_json(hostile_drift())
    items = json.loads(rendered)["environments"][0]["items"]
    assert [i["group_id"] for i in items] == HOSTILE  # every character back as it was: data, not escapes
    assert [i["fields"][0]["live"] for i in items] == HOSTILE


def test_a_truncated_note_ends_its_table_and_closes_its_blocks() -> None:
    rows = "\n".join(f"| `+1201555{i:04d}` | update |" for i in range(400))
    body = f"<details><summary>ops</summary>\n\n| number | kind |\n|---|---|\n{rows}\n\n</details>\n"
    pointer = "**The plan is too long for a note and was truncated here.**\n"
    cut = truncate(body, 2000, pointer)
    assert len(cut) <= 2000
    before_pointer = cut[: cut.index(pointer)]
    assert before_pointer.endswith("</details>\n\n")  # the table ended, the block closed, then a blank line
    assert cut.count("<details>") == cut.count("</details>")
    fenced = truncate("```\n" + "line\n" * 500 + "```\n", 500, pointer)
    assert fenced.count("```") % 2 == 0


def test_a_truncated_note_closes_its_details_whatever_the_data_says() -> None:
    """A live value "</details>" (in a code span, so only text) used to count as closing the block: the cut left it open."""
    rows = "\n".join(f"| `+1201555{i:04d}` | `</details>` |" for i in range(400))
    body = f"<details><summary>ops</summary>\n\n| number | note |\n|---|---|\n{rows}\n\n</details>\n"
    cut = truncate(body, 2000, "POINTER\n")
    assert cut[: cut.index("POINTER")].endswith("\n\n</details>\n\n")
    opened = truncate("| `<details>` |\n" * 400, 2000, "POINTER\n")
    assert "</details>" not in opened  # nor does "<details>" in data open one


#: Every character XML 1.0 cannot hold, or a reader would be misled by: C0 and C1 controls, DEL,
#: the noncharacters U+FFFE/U+FFFF, a lone surrogate (from a JSON escape), bidi, separators.
XML_HOSTILE = "".join(chr(c) for c in range(0x20)) + "\x7f\x85\x9b\ufffe\uffff\ud800\udfff\u202e\u2066\u2028 <&]]>\"'"


def _well_formed_and_shown(rendered: str) -> ET.Element:
    root = ET.fromstring(rendered.encode("utf-8", "surrogatepass"))  # raises on any character XML cannot hold
    everything = " ".join([*(v for e in root.iter() for v in e.attrib.values()), *(t for t in root.itertext())])
    for char in ("\x00", "\x1b", "\x9b", "\ufffe", "\uffff", "\ud800", "\u202e", "\u2028"):
        assert char not in everything, repr(char)
    assert "\\ufffe" in everything and "\\ud800" in everything and "\\u202e" in everything  # shown, not dropped
    assert "<&]]>" in everything  # markup from data is text, not markup
    return root


def test_drift_junit_is_well_formed_xml_for_any_live_value() -> None:
    item = DriftItem(
        f"prod{XML_HOSTILE}",
        f"+12015550100{XML_HOSTILE}",
        DriftKind.CHANGED,
        f"g{XML_HOSTILE}",
        f"g{XML_HOSTILE}",
        (FieldDrift("note", f"want{XML_HOSTILE}", f"have{XML_HOSTILE}"),),
        first_seen=f"2026-12-01{XML_HOSTILE}",
    )
    suppressed = replace(item, number="+12015550101", suppressed_by=f"ticket{XML_HOSTILE}")
    report = DriftReport("2026-12-01T00:00:00+00:00", [EnvironmentDrift(f"prod{XML_HOSTILE}", [item, suppressed])])
    _well_formed_and_shown(drift_reports.render_junit(report))


def test_apply_junit_is_well_formed_xml_for_any_value() -> None:
    rows = [
        ResultRow(f"+12015550100{XML_HOSTILE}", Operation.UPDATE, 1, 1, Outcome.FAILED, f"OCP: {XML_HOSTILE}"),
        ResultRow("+12015550101", Operation.DELETE, 2, 1, Outcome.NOT_SENT, "", f"desired/{XML_HOSTILE}.yaml:3"),
        ResultRow("+12015550102", Operation.UPDATE, 1, 1, Outcome.APPLIED),
    ]
    root = _well_formed_and_shown(result_files.render_junit(Results(f"prod{XML_HOSTILE}", rows)))
    assert [c.get("name") for c in root.iter("testcase")][-1] == "1 number(s) applied"


def test_the_results_csv_neutralizes_a_formula_in_every_data_cell_the_environment_too(tmp_path: Path) -> None:
    rows = [ResultRow("+12015550100", Operation.UPDATE, 1, 1, Outcome.FAILED, "=1+1", "@SUM(A1)")]
    cells = list(csv.reader(io.StringIO(result_files.render_csv(Results("=HYPERLINK(1)", rows)), newline="")))
    row = dict(zip(cells[0], cells[1], strict=True))
    assert row["environment"] == "'=HYPERLINK(1)" and row["message"] == "'=1+1" and row["desired_at"] == "'@SUM(A1)"
    assert row["number"] == "+12015550100"  # an E.164 NUMBER keeps its +

    for name in ("=HYPERLINK(1)", "'=x", "prod"):  # --retry-failed reads the name back exactly, for its check
        path = tmp_path / f"results-{len(name)}.csv"
        path.write_text(result_files.render_csv(Results(name, rows)), "utf-8")
        assert read_results(path).environment == name
