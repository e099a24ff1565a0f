"""Property tests of every loader with hostile input (Hypothesis, deterministic): desired YAML, numsync.yaml,
the export CSV and the saved plan JSON.

Inputs: arbitrary text and bytes; "token soup" of the format's own syntax (YAML indicators, anchors and
aliases, tags, flow brackets, quotes, BOMs, invisible characters; CSV quotes, separators and line ends;
JSON brackets); and random edits of a valid file (a piece inserted, a span deleted, a line doubled),
which reach far deeper than random text. The properties, for every input:

- no traceback: the loader returns, or raises a NumsyncError subclass — nothing else;
- every error is located: ``file:line:col`` inside the text for YAML; for the CSV, the row (``export
  row N``), the header or byte, or a whole-file finding (empty, HTML); for the plan, the JSON line and
  column, the part of the plan (``changes[3]``), or the format version;
- bounded time: each example under Hypothesis's deadline (generous, for a loaded CI machine).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numsync.config import load_config
from numsync.core.desired import load_desired, load_text
from numsync.core.policy import GroupPolicy
from numsync.core.yamlsrc import Problem
from numsync.errors import ConfigError, DesiredError, ExportFormatError, NumsyncError, PlanFileError
from numsync.ocp.csvcodec import parse_export
from numsync.workflow.plan import load_plan_with_data

FUZZ = settings(
    max_examples=250,
    derandomize=True,
    deadline=dt.timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

VALID_DESIRED = """\
# yaml-language-server: $schema=desired.schema.json
group_id: ocp-qa
defaults:
  locale: en-US
  provider: twilio
numbers:
  "+12015550123":
    miniapp_id: "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"
    phone_number_set_id: us-east
  "+12015550124":
    application_tag: billing
    note: "Billing hotline"
  "+12015550126": {}
"""
VALID_CONFIG = """\
environments:
  prod:
    region: EU1
    desired: desired
    default_provider: twilio
    groups:
      ocp-qa: {prune: true, max_deletes: 5}
      uk-care: {}
    limits: {Delete: 10}
    timeout: 60
    retry: {min_interval: 0.5}
    protected: ["+12015550123"]
    freeze:
      timezone: Europe/Berlin
      weekly:
        - {days: [fri], from: "16:00", to: "24:00", reason: "weekend"}
"""
VALID_EXPORT = (
    "NUMBER,GROUP_ID,COUNTRY,MINIAPP_ID,MINIAPP_NAME,MINIAPP_TYPE,LOCALE,PHONE_NUMBER_SET_ID,"
    "APPLICATION_TAG,NOTE,CREATED_AT,UPDATED_AT\r\n"
    '+12015550123,ocp-qa,US,app-1,Billing,Flow,en-US,us-east,billing,"a ""quoted"", note",2026-01-01,2026-01-02\r\n'
    "+442079460958,uk-care,GB,,,,en-GB,,,,2026-01-01,2026-01-02\r\n"
)
VALID_PLAN = {
    "format_version": 1,
    "environment": "prod",
    "live_fingerprint": "abc",
    "desired_hash": "def",
    "git_commit": None,
    "live_counts": {"ocp-qa": 2},
    "desired_count": 2,
    "desired_counts": {"ocp-qa": 2},
    "limits": {"Update": 800},
    "in_sync": 1,
    "out_of_scope": 0,
    "unmanaged": [],
    "conflicts": [],
    "changes": [
        {
            "number": "+12015550123",
            "kind": "update",
            "group_id": "ocp-qa",
            "live_group_id": None,
            "fields": {"NOTE": {"live": "old", "desired": "new"}},
        }
    ],
    "phases": [[[{"OPERATION": "Update", "GROUP_ID": "ocp-qa", "NUMBER": "+12015550123", "NOTE": "new"}]]],
}

YAML_PIECES = [
    "\n", "  ", "    ", "- ", ": ", ":", "? ", "{", "}", "[", "]", ",", '"', "'", "#", "|", ">", "|-", "&a ", "*a",
    "<<: ", "!!python/object:os.system ", "!!binary ", "!x ", "%YAML 1.2\n", "---\n", "...\n", "~", "null",
    "group_id: ", "numbers:", "defaults:", '"+12015550123":', "+12015550123", "note: ", "locale: ", "en-US",
    "miniapp_id: ", "allow_possible: ", "true", "0x1F", "1e3", "12:30", "2026-01-01", "\t", "\r\n", "\r",
    "\ufeff", "\u202e", "\u2028", "\x85", "\x00", "\x1b", "\\u202e", "\\", "<NULL>", "é", "😀",
]  # fmt: skip
CONFIG_PIECES = [
    *YAML_PIECES,
    "environments:", "prod:", "region: ", "EU1", "base_url: ", "http://", "https://", "${OCP_EMULATOR_URL}",
    "${X:-http://127.0.0.1:9}", "token_url: ", "realm: ", "groups:", "prune: ", "limits:", "Delete: ", "-1",
    "freeze:", "timezone: ", "Mars/Olympus", "dates:", "weekly:", "days: [fri]", "from: ", '"25:00"', "to: ",
    "proxy: ", "allow_insecure_http: ", "otp:", "period: ", "0", "safety:", "suppressions:", "until: ",
]  # fmt: skip
CSV_PIECES = [
    ",", '"', '""', "\r\n", "\n", "\r", " ", "NUMBER", "GROUP_ID", "NOTE", "LOCALE", "MINIAPP_ID",
    "PHONE_NUMBER_SET_ID", "APPLICATION_TAG", "+12015550123", "+1 201-555-0124", "12015550125", "ocp-qa",
    "<html>", "\ufeff", "\x00", "\u202e", "é", "ext. 5",
]  # fmt: skip
JSON_PIECES = ["{", "}", "[", "]", ",", ":", '"', "null", "true", "1", "-1", "1e999", "\\u0000", '"changes"',
               '"phases"', '"kind"', '"format_version"', '"bogus"', " ", "\n"]  # fmt: skip


def soup(pieces: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(pieces), st.text(max_size=3)), max_size=40).map("".join)


@st.composite
def edited(draw: st.DrawFn, valid: str, pieces: list[str]) -> str:
    """``valid`` after a few random edits: pieces inserted, spans deleted, lines doubled or dropped."""
    text = valid
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "double", "drop"]))
        at = draw(st.integers(0, len(text)))
        if op == "insert":
            text = text[:at] + draw(st.sampled_from(pieces)) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        else:
            lines = text.splitlines(keepends=True) or [""]
            i = draw(st.integers(0, len(lines) - 1))
            lines[i : i + 1] = [lines[i]] * (2 if op == "double" else 0)
            text = "".join(lines)
    return text


def yaml_inputs(valid: str, pieces: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=200), soup(pieces), edited(valid, pieces))


def assert_located(problem: Problem, shown: str, text: str) -> None:
    """The problem names this file and a line:column inside the text."""
    where = problem.location
    assert where.path == shown, problem
    lines = max(1, len(re.split("\r\n|[\r\n\x85\u2028\u2029]", text)))
    assert 1 <= where.line <= lines + 1 and where.column >= 1, (str(problem), lines)
    assert problem.message.strip(), problem


# -- desired YAML ---------------------------------------------------------------------------------------------


@FUZZ
@given(yaml_inputs(VALID_DESIRED, YAML_PIECES))
def test_a_desired_file_loads_or_says_where_it_is_wrong(text: str) -> None:
    shown = "desired/ocp-qa.yaml"
    try:
        _state, problems = load_text(text, shown)
    except NumsyncError as exc:  # a loader may refuse as a whole; then it must still say where
        problems = getattr(exc, "problems", None) or [exc.problem]  # type: ignore[attr-defined]
    for problem in problems:
        assert_located(problem, shown, text)


def test_the_valid_desired_file_is_valid() -> None:
    """The seed of the edits loads cleanly, so the edits start from a real file."""
    state, problems = load_text(VALID_DESIRED, "desired/ocp-qa.yaml")
    assert problems == [] and len(state.records) == 3


# -- numsync.yaml ----------------------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(yaml_inputs(VALID_CONFIG, CONFIG_PIECES), st.binary(max_size=120).map(lambda b: b.decode("latin-1"))))
def test_numsync_yaml_loads_or_says_where_it_is_wrong(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numsync.yaml"
        path.write_text(text, "utf-8", newline="")
        (Path(tmp) / "desired").mkdir()
        try:
            load_config(path, cache=False)
        except ConfigError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert_located(problem, str(path), text)


def test_the_valid_config_is_valid() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numsync.yaml"
        path.write_text(VALID_CONFIG, "utf-8")
        assert load_config(path, cache=False).environment("prod").groups.keys() == {"ocp-qa", "uk-care"}


# -- export CSV ------------------------------------------------------------------------------------------------

#: Where an export error may point: a data row, the header, a byte, or the whole body (empty, HTML, no columns).
CSV_LOCATED = re.compile(
    r"export row \d+|export header|the export header|\(byte \d+\)|the export is empty|HTML or XML page|"
    r"the export lacks column"
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        soup(CSV_PIECES).map(str.encode),
        edited(VALID_EXPORT, CSV_PIECES).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_an_export_parses_or_names_the_row_or_column(data: bytes) -> None:
    try:
        records = parse_export(data)
    except ExportFormatError as exc:
        assert CSV_LOCATED.search(str(exc)), str(exc)
    else:
        assert len({r.number for r in records}) == len(records)  # every number once


def test_the_valid_export_parses() -> None:
    assert [r.number for r in parse_export(VALID_EXPORT.encode())] == ["+12015550123", "+442079460958"]


# -- saved plan JSON -------------------------------------------------------------------------------------------

PLAN_LOCATED = re.compile(
    r"line \d+ column \d+|position \d+|at (phases|changes)\[\d+\]|(phases|changes)(\[\d+\])* lacks|at the top level|"
    r"the top level lacks|phases lacks|changes lacks|format_version|format version|the JSON is not an object|"
    r"nested too deeply"
)


def _mutated_plans() -> st.SearchStrategy[str]:
    """The valid plan with one value replaced by junk, at any depth: the shape errors a loader meets."""
    junk = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just({}))

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        data = json.loads(json.dumps(VALID_PLAN))
        node = data
        for _ in range(draw(st.integers(0, 5))):
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if draw(st.booleans()) or not isinstance(node[key], (dict, list)):
                if draw(st.booleans()) and isinstance(node, dict):
                    del node[key]
                else:
                    node[key] = draw(junk)
                break
            node = node[key]
        return json.dumps(data)

    return mutate()


@FUZZ
@given(st.one_of(st.text(max_size=200), soup(JSON_PIECES), _mutated_plans(), st.binary(max_size=50).map(repr)))
def test_a_saved_plan_loads_or_says_where_it_is_wrong(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(text, "utf-8", errors="surrogatepass")
        try:
            load_plan_with_data(path)
        except PlanFileError as exc:
            assert str(path) in str(exc)
            assert PLAN_LOCATED.search(str(exc)), str(exc)


def test_a_deeply_nested_plan_is_refused_not_a_crash() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text("[" * 100_000, "utf-8")
        try:
            load_plan_with_data(path)
        except PlanFileError as exc:
            assert str(path) in str(exc)
        else:
            raise AssertionError("accepted")


def test_a_yaml_bomb_among_the_pieces_is_refused_quickly() -> None:
    """The alias bomb issue 15 found, as one of the soup's shapes: refused at its first anchor."""
    bomb = 'a: &a ["x"]\n' + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    assert yaml.safe_load("x: 1") == {"x": 1}
    _state, problems = load_text("group_id: g\nnumbers: {}\n" + bomb, "desired/g.yaml")
    assert problems and problems[0].check == "yaml-anchor" and problems[0].location.line == 3


def test_deeply_nested_yaml_is_a_located_error() -> None:
    text = "group_id: g\nnumbers: " + "[" * 100_000 + "]" * 100_000 + "\n"
    _state, problems = load_text(text, "desired/g.yaml")
    assert problems and all(p.location.line == 2 for p in problems)


def test_yaml_nested_within_the_parsers_limit_but_past_the_stack_is_a_located_error() -> None:
    """libyaml stops at 1,000 levels; 900 used to parse, then overflow the builder (a RecursionError traceback)."""
    for opener, closer in (("[", "]"), ("{a: ", "}")):
        text = "group_id: g\nnumbers: {}\nx: " + opener * 900 + "1" * (opener != "[") + closer * 900 + "\n"
        _state, problems = load_text(text, "desired/g.yaml")
        [problem] = problems
        assert problem.check == "yaml-depth" and problem.location.line == 3, problem
        assert "nested deeper than 32 levels" in problem.message
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numsync.yaml"
        path.write_text(VALID_CONFIG + "    x: " + "[" * 900 + "]" * 900 + "\n", "utf-8")
        try:
            load_config(path)
        except ConfigError as exc:
            assert re.search(r"numsync\.yaml:\d+:\d+: .*nested deeper than 32 levels", str(exc)), str(exc)
        else:
            raise AssertionError("accepted")


def test_an_unknown_yaml_tag_is_a_located_problem_not_a_crash() -> None:
    _state, problems = load_text(
        'group_id: g\nnumbers:\n  "+12015550123": {note: !!python/object:os.system x}\n', "d.yaml"
    )
    [problem] = [p for p in problems if p.check == "yaml-tag"]
    assert (problem.location.line, problem.location.column) == (3, 26)
    assert "'tag:yaml.org,2002:python/object:os.system' is not allowed" in problem.message


def test_a_yaml_tag_on_a_mapping_or_list_is_a_located_problem_as_on_a_value() -> None:
    """``!!set``, ``!!omap`` or ``!!python/object`` on a collection used to be dropped silently: the file loaded."""
    text = 'group_id: g\nnumbers: !!set {"+12015550123"}\nx: !!python/object:os.system [1]\ny: !!map {}\n'
    _state, problems = load_text(text, "d.yaml")
    tags = [(p.location.line, p.location.column, p.message) for p in problems if p.check == "yaml-tag"]
    assert [(line, column) for line, column, _ in tags] == [(2, 10), (3, 4)], problems
    assert "'tag:yaml.org,2002:set' is not allowed" in tags[0][2]


@settings(FUZZ, max_examples=60)
@given(
    st.one_of(
        st.binary(max_size=200), edited(VALID_DESIRED, YAML_PIECES).map(lambda t: t.encode("utf-8", "surrogatepass"))
    )
)
def test_a_desired_folder_with_any_bytes_loads_or_says_where(data: bytes) -> None:
    """Through load_desired, as validate reads files: bytes that are not UTF-8 included."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "g.yaml").write_bytes(data)
        try:
            load_desired(folder, managed_groups={"ocp-qa": GroupPolicy("ocp-qa")}, repository=folder)
        except DesiredError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert problem.location.path.endswith("g.yaml") or problem.location.path == str(folder), problem
                assert problem.location.line >= 1 and problem.location.column >= 1, problem
