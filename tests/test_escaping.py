"""Hostile live values in every report format: one escaping layer per format (issue 15, item 2)."""

from __future__ import annotations

import json
import re

from numsync.core.diff import ChangeKind, ChangeSummary
from numsync.core.drift import DriftItem, DriftKind, DriftReport, EnvironmentDrift, FieldDrift
from numsync.core.model import Field
from numsync.gitlab import truncate
from numsync.reports import drift as drift_reports
from numsync.reports import markdown, text
from numsync.reports.escaping import visible
from numsync.workflow.plan import Plan

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
    data = json.loads(drift_reports.render_json(hostile_drift()))
    assert [i["group_id"] for i in data["environments"][0]["items"]] == sorted(HOSTILE, key=lambda v: v)[:0] or [
        i.group_id for i in hostile_drift().environments[0].items
    ]


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
