"""Apply results as files: CSV and JSON (``apply --results``), and JUnit XML (``apply --junit``).

The rows come built from :mod:`numsync.workflow.results`; each format escapes them once, its
own way: the ``csv`` module quotes, and a cell a spreadsheet would run as a formula gets a
leading ``'`` (the rule of review.csv; an E.164 NUMBER keeps its ``+``); ``json.dumps`` keeps
data data; the XML is written by :func:`~numsync.reports.escaping.xml_document`, which makes
every value visible once (XML 1.0 cannot carry most controls at all).
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

from numsync.ocp.csvcodec import spreadsheet_safe_cell
from numsync.reports.escaping import xml_document
from numsync.workflow.results import COLUMNS, Outcome, ResultFormat, Results

_DATA = ("message", "desired_at")


def render_csv(results: Results) -> str:
    """One header row (:data:`~numsync.workflow.results.COLUMNS`), then one row per planned row."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in results.rows:
        cells = row.to_json(results.environment)
        # OCP's message, the file path and the environment's name are data a spreadsheet must not run;
        # the rest numsync wrote itself
        cells["environment"] = environment_cell(results.environment)
        writer.writerow(
            [
                spreadsheet_safe_cell(column, str(cells[column])) if column in _DATA else str(cells[column])
                for column in COLUMNS
            ]
        )
    return out.getvalue()


def environment_cell(environment: str) -> str:
    """The environment's name as a CSV cell: a leading ``'`` where a spreadsheet would run it, and before
    a name that starts with ``'`` itself, so that the reader (``--retry-failed``, which checks the name)
    takes exactly one ``'`` off and gets the name back."""
    cell = spreadsheet_safe_cell("environment", environment)
    return "'" + cell if environment.startswith("'") else cell


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
        name=f"apply.{results.environment}",
        tests=str(len(failed) + (1 if applied else 0)),
        failures=str(len(failed)),
    )
    for number, rows in failed.items():
        case = ET.SubElement(suite, "testcase", classname=f"apply.{results.environment}", name=number)
        worst = next(r for r in rows if r.outcome is not Outcome.APPLIED)
        failure = ET.SubElement(
            case,
            "failure",
            type=worst.outcome.value,
            message=f"{worst.operation.value} {worst.outcome.value}: {worst.message}",
        )
        lines = [
            f"{r.operation.value} (phase {r.phase}, file {r.batch}): {r.outcome.value}{': ' + r.message if r.message else ''}"
            for r in rows
        ]
        if rows[0].desired_at:
            lines.append(f"desired at {rows[0].desired_at}")
        failure.text = "\n".join(lines)
    if applied:
        ET.SubElement(
            suite,
            "testcase",
            classname=f"apply.{results.environment}",
            name=f"{len(applied)} number(s) applied",
        )
    return xml_document(suites)
