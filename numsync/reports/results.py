"""Apply results as files: CSV and JSON (``apply --results``), and JUnit XML (``apply --junit``).

The rows come built from :mod:`numsync.workflow.results`; each format escapes them once, its
own way: the ``csv`` module quotes, and a cell a spreadsheet would run as a formula gets a
leading ``'`` (the rule of review.csv; an E.164 NUMBER keeps its ``+``); ``json.dumps`` keeps
data data; the XML text is written with ElementTree after invisible characters are made
visible (XML 1.0 cannot carry most controls at all).
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

from numsync.ocp.csvcodec import spreadsheet_safe_cell
from numsync.reports.escaping import visible
from numsync.workflow.results import COLUMNS, Outcome, ResultFormat, Results

_DATA = ("message", "desired_at")


def render_csv(results: Results) -> str:
    """One header row (:data:`~numsync.workflow.results.COLUMNS`), then one row per planned row."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in results.rows:
        cells = row.to_json(results.environment)
        # OCP's message and the file path are data a spreadsheet must not run; the rest numsync wrote itself
        writer.writerow(
            [
                spreadsheet_safe_cell(column, str(cells[column])) if column in _DATA else str(cells[column])
                for column in COLUMNS
            ]
        )
    return out.getvalue()


def render_json(results: Results) -> str:
    """``{"format": "numsync-results", "version": 1, "environment", "complete", "rows": [...]}``."""
    return json.dumps(results.to_json(), indent=2, ensure_ascii=False) + "\n"


def render(results: Results, kind: ResultFormat) -> str:
    """``results`` in the format a results file's extension chose."""
    return render_json(results) if kind is ResultFormat.JSON else render_csv(results)


def render_junit(results: Results) -> str:
    """JUnit XML: one failing test case per number with a row not applied, one passing case for the rest."""
    failed = results.failed_numbers()
    applied = {r.number for r in results.rows} - failed.keys()
    suites = ET.Element("testsuites", name="numsync apply")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"apply.{visible(results.environment)}",
        tests=str(len(failed) + (1 if applied else 0)),
        failures=str(len(failed)),
    )
    for number, rows in failed.items():
        case = ET.SubElement(suite, "testcase", classname=f"apply.{visible(results.environment)}", name=number)
        worst = next(r for r in rows if r.outcome is not Outcome.APPLIED)
        failure = ET.SubElement(
            case,
            "failure",
            type=worst.outcome.value,
            message=visible(f"{worst.operation.value} {worst.outcome.value}: {worst.message}"),
        )
        lines = [
            f"{r.operation.value} (phase {r.phase}, file {r.batch}): {r.outcome.value}{': ' + r.message if r.message else ''}"
            for r in rows
        ]
        if rows[0].desired_at:
            lines.append(f"desired at {rows[0].desired_at}")
        failure.text = "\n".join(visible(line) for line in lines)
    if applied:
        ET.SubElement(
            suite,
            "testcase",
            classname=f"apply.{visible(results.environment)}",
            name=f"{len(applied)} number(s) applied",
        )
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
