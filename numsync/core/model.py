"""The core's plain data: number records, their fields, and the normalization both sides share.

Everything here is the domain's own vocabulary: :class:`Field` members are the desired-YAML
keys. The vendor's wire format (CSV column names, ``<NULL>``, OPERATION values) lives in
:mod:`numsync.ocp` alone, which maps these types onto it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from itertools import islice
from operator import attrgetter
from types import MappingProxyType

import phonenumbers

from numsync.errors import NumberFormatError

#: A NUMBER of "+" and ASCII digits only, as E.164 numbers and nearly all desired keys are.
PLAIN_E164 = re.compile(r"\+[0-9]+")


class Field(str, enum.Enum):
    """A writable attribute of a number, valued by its desired-YAML key.

    A desired value of None (key absent or ``null``) means the field is empty: the diff
    reports it as such, and the vendor adapter turns it into OCP's clear marker.
    """

    MINIAPP_ID = "miniapp_id"
    LOCALE = "locale"
    PHONE_NUMBER_SET_ID = "phone_number_set_id"
    APPLICATION_TAG = "application_tag"
    NOTE = "note"

    @property
    def yaml_key(self) -> str:
        """The desired-YAML key (``miniapp_id``): the member's value."""
        return self.value


#: Fields in the order they are diffed, written and shown.
FIELDS: tuple[Field, ...] = tuple(Field)

#: (field, its desired-YAML key) in :data:`FIELDS` order, for per-number loops (an enum property is slow to read).
FIELD_KEYS: tuple[tuple[Field, str], ...] = tuple((f, f.yaml_key) for f in FIELDS)


@dataclass(frozen=True, slots=True, init=False)
class NumberRecord:
    """The state of one number, normalized (see :func:`normalize_value`).

    ``number`` is E.164 (``+12015550123``), ``group_id`` the owning group (GROUP_ID),
    ``fields`` maps each :class:`Field` to its value; an empty or cleared field is absent.
    ``provider`` (PROVIDER) is only known for desired numbers and only used by Create.
    ``listed_as`` is the NUMBER text of the export when it was not already E.164 (e.g.
    ``+1 201-555-0123``): operations on the live number address it as OCP listed it.
    """

    number: str
    group_id: str
    fields: dict[Field, str] = field(default_factory=dict)
    provider: str | None = None
    listed_as: str | None = None

    def __init__(
        self,
        number: str,
        group_id: str,
        fields: dict[Field, str] | None = None,
        provider: str | None = None,
        listed_as: str | None = None,
    ) -> None:
        # What the generated __init__ does, through the slots' own setters: a frozen dataclass's goes through
        # object.__setattr__ per field, twice as slow, and a warm plan of 100k numbers builds 200k records.
        _set_number(self, number)
        _set_group_id(self, group_id)
        _set_fields(self, {} if fields is None else fields)
        _set_provider(self, provider)
        _set_listed_as(self, listed_as)

    def get(self, f: Field) -> str | None:
        """The value of ``f``, or None when empty."""
        return self.fields.get(f)


_set_number = NumberRecord.__dict__["number"].__set__
_set_group_id = NumberRecord.__dict__["group_id"].__set__
_set_fields = NumberRecord.__dict__["fields"].__set__
_set_provider = NumberRecord.__dict__["provider"].__set__
_set_listed_as = NumberRecord.__dict__["listed_as"].__set__


#: How json.dumps(..., ensure_ascii=False) writes a string (the C implementation where available).
_json_string = json.encoder.encode_basestring
#: Lines hashed at once by :func:`records_fingerprint`: few hash calls, no whole-state text in memory.
_FINGERPRINT_CHUNK = 4096


def records_fingerprint(records: Iterable[NumberRecord]) -> str:
    """SHA-256 over the normalized records (sorted by NUMBER): equal iff the states are equal.

    Each record is hashed as the line ``json.dumps([NUMBER, GROUP_ID, *FIELDS, PROVIDER],
    ensure_ascii=False)`` (empty strings for absent values), with the exported NUMBER text
    appended when it was not E.164 (a saved plan's rows address the number by it). The line is
    written here from its strings — the same text without a JSON encoder per record — and the
    lines are hashed a few thousand at a time.
    """
    js = _json_string
    miniapp, locale, number_set, tag, note = FIELDS  # unpacked: one f-string per record, no inner loop
    h = hashlib.sha256()
    lines: list[str] = []
    for r in sorted(records, key=attrgetter("number")):
        get = r.fields.get
        listed = f", {js(r.listed_as)}" if r.listed_as else ""
        lines.append(
            f"[{js(r.number)}, {js(r.group_id)}, {js(get(miniapp) or '')}, {js(get(locale) or '')}, "
            f"{js(get(number_set) or '')}, {js(get(tag) or '')}, {js(get(note) or '')}, {js(r.provider or '')}{listed}]\n"
        )
        if len(lines) == _FINGERPRINT_CHUNK:
            h.update("".join(lines).encode())
            lines.clear()
    h.update("".join(lines).encode())
    return "sha256:" + h.hexdigest()


def normalize_number(raw: str) -> str:
    """``raw`` as E.164 (``+1 201-555-0123`` → ``+12015550123``).

    Raises NumberFormatError when it has no leading ``+`` country code or cannot be parsed.
    Validity for its region is checked by the desired loader, not here: live numbers
    are taken as the platform reports them. An extension is kept (``+12015550128;ext=12``,
    RFC 3966 style), so it never merges with the number without it.
    """
    cached = _E164.get(raw)
    return cached if cached is not None else parse_number(raw)[0]


#: raw text → E.164. The desired files and the export name (mostly) the same numbers, and
#: phonenumbers.parse dominates loading a large tenant: each text is parsed once per process.
#: Bounded (emptied when full); errors are not cached.
_E164: dict[str, str] = {}
_E164_MAX = 1 << 18
#: The same memo, read-only: a loop over every export row looks a text up here and calls
#: :func:`normalize_number` only when it is not known (``KNOWN_E164.get(raw) or normalize_number(raw)``).
KNOWN_E164: Mapping[str, str] = MappingProxyType(_E164)

# phonenumbers otherwise calls re.compile (a cache lookup in ``re``) for every metadata pattern
# it tries: about a third of is_valid_number. Its own documented switch keeps the compiled
# patterns instead; the results are the same. (Older releases lack the switch: nothing changes.)
_enable_pattern_cache = getattr(phonenumbers, "enable_pattern_cache", None)
if _enable_pattern_cache is not None:
    _enable_pattern_cache()


def parse_number(raw: str) -> tuple[str, phonenumbers.PhoneNumber]:
    """``raw`` as E.164 (as :func:`normalize_number`) and the parse of its stripped text, for validity checks.

    The returned PhoneNumber must not be modified. Raises NumberFormatError like normalize_number.
    """
    text = raw.strip()
    if not text.startswith("+"):
        raise NumberFormatError(f"{raw!r} is not in E.164 form: it must start with + and the country code")
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise NumberFormatError(f"{raw!r} is not a phone number: {exc}") from None
    number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if parsed.extension:  # E.164 has no extension; dropping it would make another number's identity
        number += f";ext={parsed.extension}"
    if len(_E164) >= _E164_MAX:
        _E164.clear()
    _E164[raw] = number
    return number, parsed


def memo_mark() -> int:
    """A mark for :func:`memoized_since`: how many texts :func:`normalize_number` remembers now."""
    return len(_E164)


def memoized_since(mark: int) -> list[tuple[str, str]]:
    """(text, E.164) pairs remembered since ``mark`` (those of a file just read; fewer if the memo was emptied)."""
    added = len(_E164) - mark
    return list(islice(reversed(_E164.items()), added)) if added > 0 else []


def memoize(pairs: Iterable[tuple[str, str]]) -> None:
    """Remember texts another process (or an earlier run, same phonenumbers) normalized: the export then skips their parse."""
    known = dict(pairs)
    if len(_E164) + len(known) > _E164_MAX:
        _E164.clear()
    _E164.update(known)


_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?$")


# A tenant uses a handful of locales on every one of its numbers: normalize each text once.
@lru_cache(maxsize=1024)
def normalize_locale(raw: str) -> str:
    """A locale in canonical case: ``en-us`` / ``en_US`` → ``en-US``, ``zh-hant-tw`` → ``zh-Hant-TW``.

    Values that are not simple language[-Script][-REGION] tags are returned stripped but
    otherwise unchanged (the desired loader reports them).
    """
    text = raw.strip()
    m = _LOCALE.match(text)
    if not m:
        return text
    language, script, region = m.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


@lru_cache(maxsize=1024)
def locale_problem(raw: str) -> str | None:
    """Why ``raw`` is not a LOCALE numsync accepts, or None when it is.

    The tag must be language[-Script][-REGION] (``en-US``, ``zh-Hant-TW``, ``es-419``), and each
    subtag must be in the IANA Language Subtag Registry (RFC 5646; the copy ``langcodes``
    ships), so typos like ``eb-US``, ``en-UK`` or ``eng-US`` are caught before OCP sees them.
    """
    m = _LOCALE.match(raw.strip())
    if not m:
        return f"locale {raw!r} is not a tag numsync accepts: write language[-Script][-REGION], like 'en-US' or 'zh-Hant-TW'"
    registry = _subtag_registry()
    for kind, subtag in zip(("language", "script", "region"), m.groups()):
        if subtag and subtag.lower() not in registry[kind]:
            return f"locale {raw!r}: {kind} {subtag!r} is not in the IANA language subtag registry; check the spelling (e.g. 'en-US', 'en-GB')"
    return None


@cache
def _subtag_registry() -> dict[str, frozenset[str]]:
    """Registered subtags by type (``language``, ``script``, ``region``), lower case; ranges
    (private use, ``qaa..qtz``) are left out."""
    text = resources.files("langcodes").joinpath("data", "language-subtag-registry.txt").read_text("utf-8")
    found: dict[str, set[str]] = {"language": set(), "script": set(), "region": set()}
    for record in text.split("\n%%\n"):
        fields = dict(line.split(": ", 1) for line in record.splitlines() if ": " in line and not line.startswith(" "))
        kind, subtag = fields.get("Type"), fields.get("Subtag", "")
        if kind in found and ".." not in subtag:
            found[kind].add(subtag.lower())
    return {kind: frozenset(subtags) for kind, subtags in found.items()}


def normalize_value(f: Field, raw: str | None) -> str | None:
    """The comparable form of a field value; None for empty.

    Strips surrounding whitespace; LOCALE gets canonical case; NOTE gets ``\\n`` line ends.
    Both desired and live values pass through here so that a plan converges.
    """
    if raw is None:
        return None
    text = (raw.replace("\r\n", "\n").replace("\r", "\n") if "\r" in raw else raw).strip()  # most values have no CR
    if not text:
        return None
    if f is Field.LOCALE:
        return normalize_locale(text)
    return text
