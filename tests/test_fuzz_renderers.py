"""Property tests of every plan and drift renderer with hostile live data (Hypothesis, deterministic).

Random desired and live records — values and GROUP_IDs built from Markdown and HTML specials, bidi
overrides and isolates, C0/C1 controls, line separators and backticks — go through the real diff,
planner and drift classification, then every format. Each hostile input has a *twin*: the same
records with every string mapped one-to-one to a plain token, so the twin's plan and drift have the
same shape. The properties:

- text: no invisible or layout-changing character reaches the output raw;
- Markdown: outside code spans, exactly as many ``<``, ``](``, ``![`` and ``@`` as the twin's (the
  template's own), so none comes from data; no invisible character raw;
- HTML: the same tags, comments and declarations as the twin's page: data adds no markup;
- JUnit: well-formed XML;
- JSON: parses back to the data (the plan to an equal Plan, drift values as they were).
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numsync.config import Environment
from numsync.core import safety
from numsync.core.diff import diff
from numsync.core.drift import DriftReport, classify
from numsync.core.model import FIELDS, Field, NumberRecord, normalize_value
from numsync.core.policy import GroupPolicy
from numsync.ocp.vocabulary import FIELD_OF_COLUMN
from numsync.reports import drift as drift_reports
from numsync.reports import plan_formats
from numsync.workflow.plan import Notice, NoticeKind, Plan, make_plan

#: Deterministic (derandomize) and generous on time: the suite stays well under a minute.
FUZZ = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PIECES = [
    "<", ">", "](", "![", "@", "@all", "`", "``", "|", "\\", "*", "_", "[", "]", "(", ")", "#", "!", "&", "~",
    "javascript:", "<b>", "<img src=x onerror=alert(1)>", "<!--", "-->", "<details>", "</td>", "<script>",
    "\u202e", "\u202a", "\u2066", "\u2067", "\u2069", "\u200f", "\u061c", "\u009b", "\u0085", "\u2028", "\u2029",
    "\x1b[31m", "\x00", "\x07", "\x7f", "\r", "\n", "\t", " ", "\ufeff", "\u200b", "é", "中", "😀", "{", "}",
    '"', "'", ":", "=", "+1", "<NULL>",
]  # fmt: skip
hostile = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), min_size=1, max_size=6).map("".join)
NUMBERS = [f"+1201555{100 + i:04d}" for i in range(8)]
RAW_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _values(draw: st.DrawFn) -> dict[Field, str]:
    values = {}
    for f in FIELDS:
        if f is not Field.LOCALE and draw(st.booleans()):
            value = normalize_value(f, draw(hostile))
            if value is not None:
                values[f] = value
    if Field.MINIAPP_ID in values:  # an attached number needs a locale (else the plan is refused, not rendered)
        values[Field.LOCALE] = "en-US"
    return values


@st.composite
def tenants(draw: st.DrawFn) -> tuple[list[str], dict[str, NumberRecord], list[NumberRecord]]:
    """(managed groups, desired by number, live): hostile values and GROUP_IDs, a plain one besides."""
    names = draw(st.lists(hostile.map(str.strip).filter(bool), min_size=1, max_size=2, unique=True))
    groups = ["ocp-qa", *[g for g in names if g != "ocp-qa"]]
    everywhere = [*groups, draw(hostile.map(str.strip).filter(bool))]  # the last may be unmanaged
    desired: dict[str, NumberRecord] = {}
    live: list[NumberRecord] = []
    for number in NUMBERS:
        if draw(st.booleans()):
            desired[number] = NumberRecord(number, draw(st.sampled_from(groups)), _values(draw), provider="twilio")
        if draw(st.booleans()):
            live.append(NumberRecord(number, draw(st.sampled_from(everywhere)), _values(draw)))
    return groups, desired, live


def twin_of(value: str) -> str:
    """A plain token standing for ``value``: one-to-one (equal values stay equal, different ones differ)."""
    return "v" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _twin_record(r: NumberRecord) -> NumberRecord:
    fields = {f: v if f is Field.LOCALE else twin_of(v) for f, v in r.fields.items()}
    return NumberRecord(r.number, twin_of(r.group_id), fields, provider=r.provider)


def _env(groups: list[str]) -> Environment:
    return Environment(
        name="prod",
        base_url="https://ocp.example/integrations",
        token_url="https://ocp.example/token",
        desired=Path("desired"),
        groups={g: GroupPolicy(g, prune=True) for g in groups},
    )


def _render(groups: list[str], desired: dict[str, NumberRecord], live: list[NumberRecord]) -> dict[str, str]:
    env = _env(groups)
    result = diff(desired, live, env.groups)
    plan = make_plan(env, desired, live, result)
    violations = safety.check(plan, env, safety.Overrides())
    plan.notices = [Notice(NoticeKind.FREEZE, f"freeze {g!r}") for g in groups] + [
        Notice.of_violation(v) for v in violations
    ]
    report = plan_formats.PlanReport(plan)
    drift = DriftReport("2026-12-01T00:00:00+00:00", [classify(env, diff(desired, live, env.groups), live, desired)])
    out = {f"plan.{f.name}": f.render(report) for f in plan_formats.FORMATS.formats}
    out |= {f"drift.{f.name}": f.render(drift) for f in drift_reports.FORMATS.formats}
    return out


def _twin_render(groups: list[str], desired: dict[str, NumberRecord], live: list[NumberRecord]) -> dict[str, str]:
    return _render(
        [twin_of(g) for g in groups],
        {n: _twin_record(r) for n, r in desired.items()},
        [_twin_record(r) for r in live],
    )


def outside_code_spans(markdown_text: str) -> str:
    """The Markdown with every inline code span removed (GitLab interprets nothing inside them)."""
    return re.sub(r"(`+)(?:(?!\1).)*?\1", "", markdown_text)


def markup(text: str, needles: tuple[str, ...] = ("<", "](", "![", "@")) -> Counter[str]:
    free = outside_code_spans(text)
    return Counter({n: free.count(n) for n in needles})


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen[f"<{tag} {sorted(name for name, _ in attrs)}"] += 1

    def handle_endtag(self, tag: str) -> None:
        self.seen[f"</{tag}"] += 1

    def handle_comment(self, data: str) -> None:
        self.seen["comment"] += 1

    def handle_decl(self, decl: str) -> None:
        self.seen["decl"] += 1

    def handle_pi(self, data: str) -> None:
        self.seen["pi"] += 1


def tags(page: str) -> Counter[str]:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser.seen


def check_text(out: dict[str, str]) -> None:
    for name in ("plan.text", "drift.text"):
        found = RAW_INVISIBLE.search(out[name])
        assert found is None, (name, repr(found.group()) if found else None)


def check_markdown(out: dict[str, str], twin: dict[str, str]) -> None:
    for name in ("plan.markdown", "drift.markdown"):
        assert markup(out[name]) == markup(twin[name]), name
        assert RAW_INVISIBLE.search(out[name]) is None, name
        assert out[name].count("\n") == twin[name].count("\n"), f"{name}: data added or removed a line"


def check_html(out: dict[str, str], twin: dict[str, str]) -> None:
    assert tags(out["drift.html"]) == tags(twin["drift.html"])
    assert RAW_INVISIBLE.search(out["drift.html"].replace("\n", "")) is None


def check_junit(out: dict[str, str]) -> None:
    ET.fromstring(out["drift.junit"].encode("utf-8"))


def check_json(out: dict[str, str], desired: dict[str, NumberRecord], live: list[NumberRecord]) -> None:
    plan_data = json.loads(out["plan.json"])
    assert Plan.from_json(plan_data).to_json() == plan_data  # the saved plan reads back to the same plan
    by_number = {r.number: r for r in live}
    for change in plan_data["changes"]:
        for column, values in change["fields"].items():
            have = by_number.get(change["number"])
            assert values["live"] == (have.get(FIELD_OF_COLUMN[column]) if have else None)
    drift = json.loads(out["drift.json"])
    for item in drift["environments"][0]["items"]:
        for f in item["fields"]:
            assert f["live"] == by_number[item["number"]].get(Field(f["field"]))
            assert f["desired"] == desired[item["number"]].get(Field(f["field"]))


@FUZZ
@given(tenants())
def test_every_format_shows_hostile_live_data_as_data(tenant: tuple) -> None:
    """One rendering per example (the costly part), every format's property checked on it."""
    groups, desired, live = tenant
    out, twin = _render(groups, desired, live), _twin_render(groups, desired, live)
    check_text(out)
    check_markdown(out, twin)
    check_html(out, twin)
    check_junit(out)
    check_json(out, desired, live)


def test_the_properties_catch_what_they_are_for() -> None:
    """The checks fail on the bugs issue 15 found (so the suite cannot pass vacuously)."""
    import pytest

    with pytest.raises(AssertionError):
        check_text({"plan.text": "note \u202e", "drift.text": ""})
    plain = {"plan.markdown": "a `x`\n", "drift.markdown": "b\n", "drift.html": "<p>x</p>"}
    for injected in ("a `x` [l](javascript:x)\n", "a `x` @all\n", "a `x` ![i](u)\n", "a `x` <b>\n"):
        with pytest.raises(AssertionError):
            check_markdown({**plain, "plan.markdown": injected}, plain)
    with pytest.raises(AssertionError):
        check_html({**plain, "drift.html": "<p><b>x</b></p>"}, plain)
