"""The cache of parsed desired files and the parallel load: they change how fast, never what.

Every test compares a load through the cache (or through worker processes) with the plain
sequential load of the same files: the records, locations, groups and problems must be equal.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from numsync.cli import main
from numsync.config import load_config
from numsync.core import desired, desiredcache, fileparts, located
from numsync.core.checks import check_desired
from numsync.core.desired import DesiredState, load_desired
from numsync.core.model import FIELDS, Field, NumberRecord
from numsync.core.yamlsrc import Location
from numsync.errors import DesiredError
from numsync.workflow.pipeline import load_environment_desired, plan_environment
from numsync.workflow.plan import fingerprint

US = "group_id: us-east\ndefaults: {locale: en-US, provider: twilio}\nnumbers:\n"
US_NUMBERS = (
    '  "+12015550123": {miniapp_id: app-1, phone_number_set_id: us-set, note: "Billing\\nline 2"}\n'
    '  "+1 201-555-0124": {miniapp_id: app-1, application_tag: vip}\n'
    '  "+12015550126": {}\n'
)
GB = (
    "group_id: uk-support\nnumbers:\n"
    '  "+442079460000": {miniapp_id: app-2, locale: en-GB, provider: vonage}\n'
    '  "+442079460001":\n'
)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    folder = root / "desired"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        target = folder / name
        target.write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


def load(folder: Path, cache: Path | None = None, **options: Any) -> DesiredState | list[str]:
    """The state, or the problems as text when the load fails."""
    options.setdefault("managed_groups", ["us-east", "uk-support", "de-team"])
    options.setdefault("default_provider", "twilio")
    options.setdefault("display_root", folder.parent)
    try:
        return load_desired(folder, repository=folder.parent, cache_dir=cache, **options)
    except DesiredError as exc:
        return [f"{p.location}: {p.check}: {p.message}" for p in exc.problems]


def entries(cache: Path) -> list[Path]:
    return sorted((cache / desiredcache.SUBFOLDER).glob("*.json"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path, {"us.yaml": US + US_NUMBERS, "gb.yaml": GB.replace("\n", "\r\n")})


@pytest.fixture
def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any YAML parse from here on fails the test: the load must come from the cache."""

    def refuse(*_args: Any) -> None:
        raise AssertionError("a desired file was parsed")

    monkeypatch.setattr(desired, "load_part", refuse)


def test_a_warm_load_parses_nothing_and_equals_the_plain_load(tree: Path, tmp_path: Path, request: Any) -> None:
    plain = load(tree)
    cache = tmp_path / "cache"
    assert load(tree, cache) == plain
    assert len(entries(cache)) == 2
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    request.getfixturevalue("no_parsing")
    warm = load(tree, cache)
    assert warm == plain
    assert isinstance(warm, DesiredState) and warm.records["+12015550124"].provider == "twilio"
    assert warm.field_locations["+12015550126"]["locale"] == plain.field_locations["+12015550126"]["locale"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-7],  # truncated
        lambda raw: raw.replace(b"app-1", b"app-9"),  # a changed byte: the hash no longer matches
        lambda raw: b"\x80\x00not json at all",
        lambda raw: b"",
    ],
)
def test_a_corrupt_entry_is_ignored_and_rewritten(tree: Path, tmp_path: Path, damage: Any) -> None:
    plain = load(tree)
    cache = tmp_path / "cache"
    load(tree, cache)
    for entry in entries(cache):
        entry.write_bytes(damage(entry.read_bytes()))
    assert load(tree, cache) == plain
    assert all(desiredcache.DesiredCache(cache).get(e.stem) is not None for e in entries(cache))  # rewritten


def rehash(entry: Path, change: Any, change_located: Any = None) -> None:
    """Rewrite ``entry`` with ``change`` applied to its JSON (and ``change_located`` to its located JSON) and a
    header that matches again."""
    document, _, located = entry.read_bytes().partition(b"\n")[2].partition(b"\n")
    payload = json.loads(document)
    change(payload)
    if change_located is not None:
        located = change_located(json.loads(located)) if located else located
        located = located if isinstance(located, bytes) else json.dumps(located).encode()
    body = json.dumps(payload).encode() + b"\n" + located
    entry.write_bytes(f"{desiredcache.FORMAT} {hashlib.sha256(body).hexdigest()}\n".encode() + body)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["digest"]["texts"].__setitem__(0, 12),  # a number that is not text
        lambda p: p["digest"].__setitem__("numbers", "nope"),
        lambda p: p["digest"]["numbers"][1].__setitem__(0, -1),  # a provider index below the table
        lambda p: p["digest"]["numbers"][0].__setitem__(0, -2),  # a number index below the table
        lambda p: p["digest"]["numbers"][2].pop(),  # columns of different lengths
        lambda p: p["digest"]["numbers"][2].__setitem__(0, "ab"),  # pairs that are not indexes
        lambda p: p["digest"]["numbers"][0].__setitem__(1, p["digest"]["numbers"][0][0]),  # a number twice
        lambda p: p["digest"].pop("group"),
        lambda p: p.__setitem__("digest", None),
        lambda p: p.__setitem__("key", "0" * 64),  # foreign: written for another file
    ],
)
def test_a_well_hashed_entry_of_the_wrong_shape_is_ignored(tree: Path, tmp_path: Path, change: Any) -> None:
    plain = load(tree)
    cache = tmp_path / "cache"
    load(tree, cache)
    for entry in entries(cache):
        rehash(entry, change)
    assert load(tree, cache) == plain


def test_a_well_hashed_entry_nested_deeper_than_the_json_decoder_goes_is_ignored(tree: Path, tmp_path: Path) -> None:
    plain = load(tree)
    cache = tmp_path / "cache"
    load(tree, cache)
    for entry in entries(cache):
        body = b"[" * 100_000 + b"]" * 100_000 + b"\n"
        entry.write_bytes(f"{desiredcache.FORMAT} {hashlib.sha256(body).hexdigest()}\n".encode() + body)
    assert load(tree, cache) == plain  # not a RecursionError


def test_an_entry_copied_under_another_files_key_is_ignored(tmp_path: Path) -> None:
    folder = write_tree(tmp_path, {"us.yaml": US + US_NUMBERS})
    cache = tmp_path / "cache"
    load(folder, cache)
    (us_entry,) = entries(cache)
    (folder / "us.yaml").write_text(US + '  "+12015550123": {miniapp_id: app-2}\n')
    plain = load(folder)
    key = desiredcache.entry_key(
        (folder / "us.yaml").read_bytes(), "desired/us.yaml", "twilio", ["us-east", "uk-support", "de-team"]
    )
    us_entry.rename(us_entry.with_name(f"{key}.json"))
    assert load(folder, cache) == plain


def test_another_numsync_version_does_not_read_the_entries(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    plain = load(tree, cache)
    monkeypatch.setattr(desiredcache, "_code_fingerprint", lambda: "numsync 99.0")
    parsed: list[str] = []
    real = desired.load_part
    monkeypatch.setattr(
        desired, "load_part", lambda data, shown, *rest: parsed.append(shown) or real(data, shown, *rest)
    )
    assert load(tree, cache) == plain
    assert sorted(parsed) == ["desired/gb.yaml", "desired/us.yaml"]
    assert len(entries(cache)) == 4  # each version's entries, side by side


def test_a_changed_setting_is_never_answered_from_the_cache(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load(tree, cache)
    other_provider = load(tree, cache, default_provider="bandwidth")
    assert other_provider == load(tree, default_provider="bandwidth")
    assert isinstance(other_provider, DesiredState) and other_provider.records["+442079460001"].provider == "bandwidth"
    unmanaged = load(tree, cache, managed_groups=["us-east"])
    assert unmanaged == load(tree, managed_groups=["us-east"])
    assert isinstance(unmanaged, list) and "unmanaged-group" in unmanaged[0]
    moved = load(tree, cache, display_root=tree)  # paths shown differently: locations differ
    assert moved == load(tree, display_root=tree)


def test_a_changed_file_is_read_again(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load(tree, cache)
    (tree / "us.yaml").write_text(US + '  "+12015550123": {miniapp_id: app-3}\n')
    state = load(tree, cache)
    assert state == load(tree)
    assert isinstance(state, DesiredState) and set(state.records) == {"+12015550123", "+442079460000", "+442079460001"}


def test_problems_are_never_cached_and_always_reported(tree: Path, tmp_path: Path) -> None:
    (tree / "de.yaml").write_text(
        'group_id: de-team\nnumbers:\n  "+15550000": {}\n  "+493020563361": {locale: "not a locale"}\n  "+12015550126": {}\n'
    )
    cache = tmp_path / "cache"
    problems = load(tree)
    assert isinstance(problems, list) and len(problems) == 3
    assert load(tree, cache) == problems
    assert len(entries(cache)) == 2  # us and gb only
    assert load(tree, cache) == problems


def test_files_valid_alone_but_clashing_together_report_as_without_cache(tree: Path, tmp_path: Path) -> None:
    (tree / "zz.yaml").write_text('group_id: us-east\nnumbers:\n  "+442079460000": {}\n')
    cache = tmp_path / "cache"
    problems = load(tree)
    assert isinstance(problems, list) and any("duplicate-group" in p for p in problems)
    assert load(tree, cache) == problems
    assert load(tree, cache) == problems  # now from entries: same words, same places


def many_files(root: Path, count: int) -> Path:
    files = {}
    for n in range(count):
        lines = [f"group_id: g{n}", "defaults: {locale: en-US}", "numbers:"]
        lines += [f'  "+1201555{n:02d}{k:02d}": {{miniapp_id: app-{k % 3}, note: "n{k}"}}' for k in range(50)]
        files[f"g{n:02d}.yaml"] = "\n".join(lines) + "\n"
    return write_tree(root, files)


@pytest.mark.parametrize("with_cache", [False, True])
def test_worker_processes_give_the_sequential_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_cache: bool
) -> None:
    folder = many_files(tmp_path, 12)
    groups = [f"g{n}" for n in range(12)]
    sequential = load(folder, managed_groups=groups, workers=1)
    monkeypatch.setattr(fileparts, "PARALLEL_MIN_BYTES", 0)
    cache = tmp_path / "cache" if with_cache else None
    assert load(folder, cache, managed_groups=groups, workers=3) == sequential
    if cache:
        assert len(entries(cache)) == 12  # written by the workers
        assert load(folder, cache, managed_groups=groups, workers=3) == sequential


def test_worker_processes_report_problems_as_the_sequential_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = many_files(tmp_path, 8)
    (folder / "g03.yaml").write_text((folder / "g03.yaml").read_text().replace("app-1", "[app-1"))
    (folder / "g05.yaml").write_bytes(b"group_id: g5\nnumbers: {\xff}\n")
    (folder / "g06.yaml").write_text((folder / "g06.yaml").read_text().replace("+1201555060", "+1201555010"))
    groups = [f"g{n}" for n in range(8)]
    sequential = load(folder, managed_groups=groups, workers=1)
    assert isinstance(sequential, list) and len(sequential) > 3
    monkeypatch.setattr(fileparts, "PARALLEL_MIN_BYTES", 0)
    assert load(folder, managed_groups=groups, workers=2) == sequential


def cli_workspace(tmp_path: Path) -> Path:
    write_tree(tmp_path, {"us.yaml": US + US_NUMBERS})
    (tmp_path / "numsync.yaml").write_text(
        "environments:\n  test:\n    base_url: http://127.0.0.1:9/integrations\n    desired: desired\n"
        "    groups:\n      us-east: {prune: false}\n"
    )
    return tmp_path / "numsync.yaml"


def test_the_cli_caches_beside_numsync_yaml_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cli_workspace(tmp_path)
    monkeypatch.delenv(desiredcache.ENV_VAR, raising=False)
    runner = CliRunner()
    for args in (["--no-cache", "validate"], ["validate", "--no-cache"]):
        result = runner.invoke(main, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        assert not (tmp_path / ".numsync-cache").exists()
    result = runner.invoke(main, ["--config", str(config), "validate"])
    assert result.exit_code == 0, result.output
    assert len(entries(tmp_path / ".numsync-cache")) == 1
    elsewhere = tmp_path / "ci-cache"
    result = runner.invoke(main, ["--config", str(config), "validate"], env={desiredcache.ENV_VAR: str(elsewhere)})
    assert result.exit_code == 0, result.output
    assert len(entries(elsewhere)) == 1


def test_environments_carry_the_cache_folder_and_load_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    config = cli_workspace(tmp_path)
    monkeypatch.delenv(desiredcache.ENV_VAR, raising=False)
    env = load_config(config).environment("test")
    assert env.cache_dir == tmp_path.resolve() / ".numsync-cache"
    assert load_config(config, cache=False).environment("test").cache_dir is None
    first = load_environment_desired(env)
    request.getfixturevalue("no_parsing")
    assert load_environment_desired(env) == first


def test_an_unwritable_cache_folder_is_skipped(tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    assert load(tree, blocker) == load(tree)


def test_unused_entries_are_pruned_when_new_ones_are_written(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load(tree, cache)
    store = desiredcache.DesiredCache(cache)
    store.prune(now=0)  # nothing is that old
    assert len(entries(cache)) == 2
    store.prune(now=10**12)
    assert entries(cache) == []


# --- the whole-tree entry: the records' fingerprint kept with the cache -------------------------------


def tree_entries(cache: Path) -> list[Path]:
    return sorted((cache / desiredcache.TREE_SUBFOLDER).glob("*.json"))


def reference_fingerprint(records: Any) -> str:
    """The fingerprint as documented (one ``json.dumps`` line per record), written out independently."""
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.number):
        cells = [r.number, r.group_id, *[r.fields.get(f) or "" for f in FIELDS], r.provider or ""]
        if r.listed_as:
            cells.append(r.listed_as)
        h.update((json.dumps(cells, ensure_ascii=False) + "\n").encode())
    return "sha256:" + h.hexdigest()


def random_tree(root: Path, seed: int) -> tuple[Path, list[str]]:
    """A few files of random numbers, values (quotes, backslashes, non-ASCII, newlines) and defaults."""
    rng = random.Random(seed)
    texts = ["app-1", 'say "hi"', "back\\slash", "Grüße ☎", "line 1\\nline 2", "x" * rng.randint(1, 40)]
    files, groups = {}, []
    for n in range(rng.randint(1, 6)):
        group = f"g{seed}-{n}"
        groups.append(group)
        lines = [f"group_id: {group}"]
        if rng.random() < 0.5:
            lines.append(f"defaults: {{locale: en-US, provider: {rng.choice(['twilio', 'vonage'])}}}")
        lines.append("numbers:")
        for k in range(rng.randint(0, 30)):
            values = {key: rng.choice(texts) for key in ("miniapp_id", "note", "application_tag") if rng.random() < 0.5}
            if "miniapp_id" in values:
                values["locale"] = rng.choice(["en-US", "en-gb", "de-DE"])
            body = ", ".join(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in values.items())
            lines.append(f'  "+1201555{n:02d}{k:02d}": {{{body}}}')
        files[f"f{n}.yaml"] = "\n".join(lines) + "\n"
    return write_tree(root, files), groups


@pytest.mark.parametrize("seed", range(8))
def test_the_cached_fingerprint_is_the_computed_one_on_random_trees(tmp_path: Path, seed: int, request: Any) -> None:
    folder, groups = random_tree(tmp_path, seed)
    cache = tmp_path / "cache"
    plain = load(folder, managed_groups=groups)
    assert isinstance(plain, DesiredState), plain
    assert plain.fingerprint is None  # no cache: the plan computes it
    computed = fingerprint(plain.records.values())
    assert computed == reference_fingerprint(plain.records.values())
    cold = load(folder, cache, managed_groups=groups)
    assert isinstance(cold, DesiredState) and cold.fingerprint == computed
    assert len(tree_entries(cache)) == 1
    request.getfixturevalue("no_parsing")
    warm = load(folder, cache, managed_groups=groups)
    assert isinstance(warm, DesiredState) and warm == plain and warm.fingerprint == computed


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-7],
        lambda raw: raw.replace(b"sha256:", b"sha256:0"),  # the header's hash no longer matches
        lambda raw: b"",
    ],
)
def test_a_corrupt_tree_entry_is_ignored_and_rewritten(tree: Path, tmp_path: Path, damage: Any) -> None:
    cache = tmp_path / "cache"
    computed = fingerprint(load(tree).records.values())  # type: ignore[union-attr]
    load(tree, cache)
    (entry,) = tree_entries(cache)
    entry.write_bytes(damage(entry.read_bytes()))
    again = load(tree, cache)
    assert isinstance(again, DesiredState) and again.fingerprint == computed
    trees = desiredcache.DesiredCache(cache, desiredcache.TREE_SUBFOLDER)
    assert desiredcache.tree_fingerprint(trees.get(entry.stem)) == computed  # rewritten


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["digest"].__setitem__("fingerprint", "sha256:" + "z" * 64),  # not a fingerprint
        lambda p: p["digest"].__setitem__("fingerprint", 12),
        lambda p: p.__setitem__("digest", ["sha256:" + "0" * 64]),
        lambda p: p.__setitem__("key", "0" * 64),  # foreign: written for another tree
    ],
)
def test_a_well_hashed_tree_entry_of_the_wrong_shape_is_ignored(tree: Path, tmp_path: Path, change: Any) -> None:
    cache = tmp_path / "cache"
    computed = fingerprint(load(tree).records.values())  # type: ignore[union-attr]
    load(tree, cache)
    (entry,) = tree_entries(cache)
    rehash(entry, change)
    again = load(tree, cache)
    assert isinstance(again, DesiredState) and again.fingerprint == computed


def test_a_tree_entry_is_never_used_for_other_files_or_settings(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load(tree, cache)
    (tree / "us.yaml").write_text(US + '  "+12015550123": {miniapp_id: app-3}\n')  # stale: the tree changed
    changed = load(tree, cache)
    assert isinstance(changed, DesiredState) and changed.fingerprint == fingerprint(changed.records.values())
    other = load(tree, cache, default_provider="bandwidth")
    assert isinstance(other, DesiredState) and other.fingerprint == fingerprint(other.records.values())
    assert len({changed.fingerprint, other.fingerprint}) == 2
    assert len(tree_entries(cache)) == 3


def test_a_load_with_problems_keeps_no_fingerprint(tree: Path, tmp_path: Path) -> None:
    (tree / "zz.yaml").write_text('group_id: us-east\nnumbers:\n  "+442079460000": {}\n')
    cache = tmp_path / "cache"
    assert isinstance(load(tree, cache), list)
    assert tree_entries(cache) == []


def test_the_plan_records_the_cached_fingerprint_as_the_computed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    config = cli_workspace(tmp_path)
    monkeypatch.delenv(desiredcache.ENV_VAR, raising=False)
    env, uncached = load_config(config).environment("test"), load_config(config, cache=False).environment("test")
    plain = load_environment_desired(uncached)
    load_environment_desired(env)  # fills the cache
    request.getfixturevalue("no_parsing")
    warm = load_environment_desired(env)
    assert warm.fingerprint is not None and plain.fingerprint is None
    live = [NumberRecord("+12015550123", "us-east", {Field.MINIAPP_ID: "old"})]
    planned = plan_environment(env, warm, live).plan
    assert planned.desired_hash == fingerprint(plain.records.values()) == warm.fingerprint
    assert planned.to_json() == plan_environment(uncached, plain, live).plan.to_json()


values = st.one_of(st.none(), st.text(min_size=1, max_size=12))


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.text(min_size=1, max_size=8),
            st.lists(values, min_size=5, max_size=5),
            values,
            values,
        ),
        max_size=40,
        unique_by=lambda t: t[0],
    )
)
def test_the_fingerprint_is_the_documented_one_on_random_records(rows: list[Any]) -> None:
    records = [
        NumberRecord(
            f"+1201{n:07d}", group, {f: v for f, v in zip(FIELDS, cells) if v}, provider=provider, listed_as=listed
        )
        for n, group, cells, provider, listed in rows
    ]
    assert fingerprint(records) == reference_fingerprint(records)


def test_the_fingerprint_of_more_records_than_one_chunk_is_the_documented_one() -> None:
    records = [NumberRecord(f"+1201{n:07d}", f"g{n % 7}", {Field.NOTE: f"n{n}"}) for n in range(10_000, 0, -1)]
    assert fingerprint(records) == reference_fingerprint(records)


# --- places decoded on first use: a warm plan decodes none --------------------------------------------


@pytest.fixture
def decoded_parts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The shown path of every part whose places are decoded from here on."""
    seen: list[str] = []
    real = located._decoded

    def counting(text: bytes, shown: str, *rest: Any) -> Any:
        seen.append(shown)
        return real(text, shown, *rest)

    monkeypatch.setattr(located, "_decoded", counting)
    return seen


def test_a_warm_plan_decodes_no_places_and_a_message_decodes_one_file(
    tree: Path, tmp_path: Path, request: Any, decoded_parts: list[str]
) -> None:
    cache = tmp_path / "cache"
    plain = load(tree)
    load(tree, cache)
    request.getfixturevalue("no_parsing")
    warm = load(tree, cache)
    assert isinstance(warm, DesiredState) and isinstance(plain, DesiredState)
    assert warm.records == plain.records and "+12015550123" in warm.locations and len(warm.field_locations) == 5
    assert decoded_parts == []
    assert warm.locations["+442079460001"] == plain.locations["+442079460001"]
    assert warm.field_locations["+442079460000"] == plain.field_locations["+442079460000"]
    assert decoded_parts == ["desired/gb.yaml"]  # once per file, for all its numbers
    assert warm == plain
    assert decoded_parts == ["desired/gb.yaml", "desired/us.yaml"]


@pytest.mark.parametrize(
    "change_located",
    [
        lambda lo: b"not json",
        lambda lo: lo[:3],  # a column missing
        lambda lo: [lo[0], lo[1][:-1], lo[2], lo[3]],  # a key place missing
        lambda lo: [lo[0][:-1], *lo[1:]],  # an odd number of line/column integers
        lambda lo: [lo[0], [-1] * len(lo[1]), lo[2], lo[3]],  # a negative index reads another place
        lambda lo: [lo[0], [99] * len(lo[1]), lo[2], lo[3]],  # past the table
        lambda lo: [["3", 1], *lo[1:]],  # a line that is not an integer
        lambda lo: [lo[0], lo[1], [[0]] * len(lo[2]), [[]] * len(lo[3])],  # keys without places
        lambda lo: [lo[0], lo[1], [[len(lo[0])]] * len(lo[2]), [[0]] * len(lo[3])],  # a key that is not text
        lambda lo: {"places": lo},
        lambda lo: [[0, 0] * (len(lo[0]) // 2), *lo[1:]],  # line 0, column 0: no place in a file
        lambda lo: [[-n for n in lo[0]], *lo[1:]],  # negative lines and columns
        lambda lo: b"[" * 100_000 + b"]" * 100_000,  # nested deeper than the JSON decoder goes
    ],
)
def test_located_text_of_the_wrong_shape_reads_the_file_again(
    tree: Path, tmp_path: Path, change_located: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = load(tree)
    cache = tmp_path / "cache"
    load(tree, cache)
    for entry in entries(cache):
        rehash(entry, lambda p: None, change_located)
    parsed: list[str] = []
    real = desired.load_part
    monkeypatch.setattr(
        desired, "load_part", lambda data, shown, *rest: parsed.append(shown) or real(data, shown, *rest)
    )
    warm = load(tree, cache)
    assert parsed == []  # the records are the entry's: only the places are read again, when asked
    assert isinstance(warm, DesiredState) and isinstance(plain, DesiredState)
    assert dict(warm.locations) == dict(plain.locations)
    assert dict(warm.field_locations) == dict(plain.field_locations)
    assert sorted(parsed) == ["desired/gb.yaml", "desired/us.yaml"]


def test_located_text_of_the_wrong_shape_for_a_file_changed_since_points_at_its_first_line(
    tree: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    load(tree, cache)
    for entry in entries(cache):
        rehash(entry, lambda p: None, lambda lo: b"[]")
    warm = load(tree, cache)
    (tree / "us.yaml").write_text(US + '  "+12015550123": {miniapp_id: app-3}\n')  # after the load, before a message
    assert isinstance(warm, DesiredState)
    assert warm.locations["+12015550126"] == Location("desired/us.yaml", 1, 1)
    assert warm.field_locations["+12015550126"] == {}
    assert warm.locations["+442079460001"].line > 1  # gb.yaml is unchanged: read again for its places


def test_the_checks_of_a_clean_warm_tree_decode_no_places(
    tree: Path, tmp_path: Path, request: Any, decoded_parts: list[str]
) -> None:
    cache = tmp_path / "cache"
    load(tree, cache)
    request.getfixturevalue("no_parsing")
    warm = load(tree, cache)
    assert isinstance(warm, DesiredState) and warm.records["+12015550123"].get(Field.PHONE_NUMBER_SET_ID) == "us-set"
    assert check_desired(warm) == [] and decoded_parts == []  # what numsync validate runs on every number
