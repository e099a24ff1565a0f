"""Drift report renderers: text, Markdown, JSON, JUnit XML and a self-contained HTML page.

All take a :class:`DriftReport` and return a string; nothing here prints or fetches.
Values from OCP or YAML are escaped for their format (XML/HTML escaping, Markdown pipes).
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET

from numsync.core.drift import DriftCause, DriftItem, DriftKind, DriftReport, EnvironmentDrift, age_days, counts
from numsync.reports.escaping import code, visible, xml_document
from numsync.reports.registry import Format, Registry
from numsync.reports.text import show

KIND_LABEL = {
    DriftKind.MISSING: "missing (desired, not live)",
    DriftKind.UNMANAGED: "unmanaged (live, not desired)",
    DriftKind.CHANGED: "changed",
    DriftKind.WRONG_GROUP: "wrong group",
}
#: Said under an environment with unmanaged numbers (text and Markdown).
ADOPT_HINT = "{n} unmanaged number(s): adopt them with `numsync import --unmanaged`"
CAUSE_LABEL = {
    DriftCause.OUT_OF_BAND: "out-of-band change in OCP",
    DriftCause.PENDING_APPLY: "pending apply (desired changed in git)",
    None: "",
}


def describe(item: DriftItem) -> str:
    """One sentence about an item."""
    if item.kind is DriftKind.CHANGED:
        detail = "; ".join(f"{f.field}: desired {show(f.desired)}, live {show(f.live)}" for f in item.fields)
    elif item.kind is DriftKind.WRONG_GROUP:
        detail = f"desired in {item.group_id!r}, live in {item.live_group_id!r}"
    elif item.kind is DriftKind.MISSING:
        detail = f"desired in {item.group_id!r}, not in OCP"
    else:
        detail = f"live in {item.group_id!r}, in no desired file"
    extra = [
        x
        for x in (
            CAUSE_LABEL[item.cause],
            "PROTECTED" if item.protected else "",
            f"suppressed: {item.suppressed_by}" if item.suppressed_by else "",
        )
        if x
    ]
    return detail + (f" [{', '.join(extra)}]" if extra else "")


def _age(item: DriftItem, now: str) -> str:
    if not item.first_seen or item.first_seen == now:
        return "new"
    return f"for {age_days(item.first_seen, now):.1f} days"


def _kind(kind: str | None) -> str:
    return f" ({kind})" if kind else ""


def suppression_notices(env: EnvironmentDrift) -> list[str]:
    """What to do about an environment's suppressions, as plain sentences (expired, expiring, unused); each
    format escapes them its own way."""
    return (
        [
            f"suppression of {s.number} expired on {s.until.isoformat()} ({s.reason}); it hides nothing now — renew or remove it"
            for s in env.expired_suppressions
        ]
        + [
            f"suppression of {s.number} expires on {s.until.isoformat()} ({s.reason}); renew or remove it before then"
            for s in env.expiring_suppressions
        ]
        + [
            f"suppression of {s.number}{_kind(s.kind)} matches no drift ({s.reason}); remove it, or check its number and kind"
            for s in env.unused_suppressions
        ]
    )


def render_text(report: DriftReport) -> str:
    """For terminals and CI logs."""
    out = []
    for env in report.environments:
        c = counts(env.active)
        out.append(
            f'Drift in environment "{env.environment}": '
            + ", ".join(f"{n} {k}" for k, n in c.items())
            + f"; {env.in_sync} in sync, {env.out_of_scope} out of scope"
        )
        for item in env.items:
            mark = "  (suppressed)" if item.suppressed_by else ""
            out.append(
                f"  {item.kind.value:<11} {visible(item.number):<16} {visible(describe(item))}  — {_age(item, report.generated_at)}{mark}"
            )
        out += [f"  ! {visible(notice)}" for notice in suppression_notices(env)]
        if c[DriftKind.UNMANAGED.value]:
            out.append("  " + ADOPT_HINT.format(n=c[DriftKind.UNMANAGED.value]))
    out.append("Drift found." if report.drifted else "No drift.")
    return "\n".join(out)


def _md(text: str) -> str:
    """Data in a Markdown table cell: a code span (no HTML, link, image or mention), its pipes escaped."""
    return code(text).replace("|", "\\|")


def render_markdown(report: DriftReport) -> str:
    """For merge requests, issues and wikis."""
    out = [f"## numsync drift report ({report.generated_at})", ""]
    for env in report.environments:
        c = counts(env.active)
        out.append(f"### {code(env.environment)}: " + ", ".join(f"{n} {k}" for k, n in c.items()))
        out.append("")
        if env.items:
            out += ["| number | kind | group | details | age |", "|---|---|---|---|---|"]
            for item in env.items:
                out.append(
                    f"| {_md(item.number)} | {item.kind.value} | {_md(item.group_id)} | {_md(describe(item))} | {_age(item, report.generated_at)} |"
                )
            out.append("")
        for s in env.expired_suppressions:
            out.append(
                f"- :warning: suppression of {code(s.number)} expired on {s.until.isoformat()} ({code(s.reason)})"
            )
        for s in env.expiring_suppressions:
            out.append(
                f"- :hourglass: suppression of {code(s.number)} expires on {s.until.isoformat()} ({code(s.reason)}): renew or remove it"
            )
        for s in env.unused_suppressions:
            out.append(
                f"- :grey_question: suppression of {code(s.number)}{_kind(s.kind)} matches no drift ({code(s.reason)})"
            )
        if c[DriftKind.UNMANAGED.value]:
            out += [ADOPT_HINT.format(n=c[DriftKind.UNMANAGED.value]), ""]
    out.append("**Drift found.**" if report.drifted else "No drift.")
    return "\n".join(out) + "\n"


def render_json(report: DriftReport) -> str:
    """Machine-readable; validates against numsync/schema/drift.schema.json."""
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


def render_junit(report: DriftReport) -> str:
    """JUnit XML: one test suite per environment, one failing test case per drifted number.

    Values go in raw: :func:`~numsync.reports.escaping.xml_document` escapes every one of them once.
    """
    suites = ET.Element("testsuites", name="numsync drift")
    for env in report.environments:
        active = env.active
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"drift.{env.environment}",
            tests=str(len(env.items) + env.in_sync),
            failures=str(len(active)),
            timestamp=report.generated_at,
        )
        for item in env.items:
            case = ET.SubElement(
                suite, "testcase", classname=f"drift.{env.environment}.{item.group_id}", name=item.number
            )
            if item.suppressed_by:
                ET.SubElement(case, "skipped", message=f"suppressed: {item.suppressed_by}")
            else:
                failure = ET.SubElement(
                    case, "failure", message=f"{item.kind.value}: {describe(item)}", type=item.kind.value
                )
                failure.text = f"{describe(item)}\nfirst seen {item.first_seen}"
        if env.in_sync:
            ET.SubElement(
                suite, "testcase", classname=f"drift.{env.environment}", name=f"{env.in_sync} number(s) in sync"
            )
        notices = suppression_notices(env)
        if notices:
            ET.SubElement(suite, "system-out").text = "\n".join(notices)
    return xml_document(suites)


_COLORS = {
    DriftKind.MISSING: "#d9534f",
    DriftKind.UNMANAGED: "#f0ad4e",
    DriftKind.CHANGED: "#5bc0de",
    DriftKind.WRONG_GROUP: "#9b59b6",
}

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>numsync drift report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;width:100%}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}} th{{background:#f4f4f4}}
.summary td{{text-align:right}} .kind{{font-weight:600}} tr.suppressed{{color:#888}} code{{font-size:13px}}
#filters{{margin:1em 0}} #filters input{{width:20em}}
</style></head><body>
<h1>numsync drift report</h1>
<p>Generated {generated}. <strong id="verdict">{verdict}</strong></p>
<h2>Summary</h2>
{summary}
{notices}<h2>Drift by kind</h2>
{chart}
<h2>Items</h2>
<div id="filters"><input id="q" type="search" placeholder="Filter by number, group, details…" aria-label="filter">
<select id="kind" aria-label="kind"><option value="">all kinds</option>{kind_options}</select>
<span id="shown"></span></div>
<table id="items"><thead><tr><th>environment</th><th>number</th><th>kind</th><th>group</th><th>details</th><th>age</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
(function () {{
  var q = document.getElementById('q'), kind = document.getElementById('kind'), shown = document.getElementById('shown');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#items tbody tr'));
  function apply() {{
    var text = q.value.toLowerCase(), k = kind.value, n = 0;
    rows.forEach(function (r) {{
      var ok = (!k || r.dataset.kind === k) && (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
      r.style.display = ok ? '' : 'none'; if (ok) n++;
    }});
    shown.textContent = n + ' of ' + rows.length + ' shown';
  }}
  q.addEventListener('input', apply); kind.addEventListener('change', apply); apply();
}})();
</script>
</body></html>
"""


def _h(value: str) -> str:
    """Data in the page: HTML-escaped, and invisible or layout-changing characters as visible escapes."""
    return html.escape(visible(value))


def _summary_table(report: DriftReport) -> str:
    head = "<tr><th>environment</th><th>group</th>" + "".join(f"<th>{k.value}</th>" for k in DriftKind) + "</tr>"
    body = []
    for env in report.environments:
        groups = sorted({i.group_id for i in env.active})
        for g in groups or ["—"]:
            c = counts(i for i in env.active if i.group_id == g)
            body.append(
                f"<tr><th>{_h(env.environment)}</th><th>{_h(g)}</th>"
                + "".join(f"<td>{c[k.value]}</td>" for k in DriftKind)
                + "</tr>"
            )
    return f'<table class="summary">{head}{"".join(body)}</table>'


def _chart(report: DriftReport) -> str:
    c = counts(i for e in report.environments for i in e.active)
    top = max(c.values()) or 1
    bars = []
    for n, kind in enumerate(DriftKind):
        width = 300 * c[kind.value] / top
        y = n * 28
        bars.append(
            f'<text x="0" y="{y + 17}" font-size="13">{kind.value}</text>'
            f'<rect x="110" y="{y + 4}" width="{width:.1f}" height="18" fill="{_COLORS[kind]}"><title>{kind.value}: {c[kind.value]}</title></rect>'
            f'<text x="{116 + width:.1f}" y="{y + 17}" font-size="13">{c[kind.value]}</text>'
        )
    return f'<svg id="chart" role="img" aria-label="drift by kind" width="480" height="{len(DriftKind) * 28}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'


def render_html(report: DriftReport) -> str:
    """A single self-contained page (no network fetches): summary per environment and group, a chart, a filterable table."""
    rows = []
    for env in report.environments:
        for item in env.items:
            cls = ' class="suppressed"' if item.suppressed_by else ""
            rows.append(
                f'<tr data-kind="{item.kind.value}"{cls}><td>{_h(env.environment)}</td><td><code>{_h(item.number)}</code></td>'
                f'<td class="kind">{item.kind.value}</td><td>{_h(item.group_id)}</td><td>{_h(describe(item))}</td>'
                f"<td>{html.escape(_age(item, report.generated_at))}</td></tr>"
            )
    return _PAGE.format(
        generated=html.escape(report.generated_at),
        verdict="Drift found." if report.drifted else "No drift.",
        summary=_summary_table(report),
        chart=_chart(report),
        kind_options="".join(f'<option value="{k.value}">{html.escape(KIND_LABEL[k])}</option>' for k in DriftKind),
        rows="\n".join(rows),
        notices=_notices_html(report),
    )


def _notices_html(report: DriftReport) -> str:
    items = [
        f"<li>{html.escape(env.environment)}: {html.escape(notice)}</li>"
        for env in report.environments
        for notice in suppression_notices(env)
    ]
    return f'<h2>Suppressions</h2>\n<ul id="suppressions">{"".join(items)}</ul>\n' if items else ""


#: The drift report's formats; every one renders a whole :class:`DriftReport`.
FORMATS: Registry[DriftReport] = Registry(
    "drift",
    (
        Format("text", "for terminals and CI logs", render_text),
        Format("markdown", "for merge requests, issues and wikis", render_markdown),
        Format("json", "machine-readable, with first_seen for --previous", render_json),
        Format("junit", "JUnit XML, a failing test case per drifted number", render_junit),
        Format("html", "one self-contained page with a chart and a filterable table", render_html),
    ),
)
