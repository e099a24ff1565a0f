"""Tenant state of the OCP emulator: plain dataclasses, JSON round trip, seeds.

The emulator plays the vendor, so this module deliberately does not import the
client's :mod:`numsync.core.model`: sharing the client's column lists or normalizers
would hide exactly the disagreements the emulator exists to reveal. Column names
below are spelled as the OCP "numbers CSV" Integrations API spells them.

Shapes:

- :class:`TenantState` holds ``groups`` (GROUP_ID -> :class:`Group`), ``miniapps``
  (MINIAPP_ID -> :class:`Miniapp`), ``numbers`` (NUMBER in E.164 -> :class:`NumberRow`)
  and ``users`` (username -> :class:`User`).
- :meth:`TenantState.to_json` / :meth:`TenantState.from_json` give the state file
  format (``{"format": "numsync-emulator-state/1", ...}``).
- :func:`seed_tenant` builds the deterministic ``demo`` or ``empty`` tenant;
  :func:`state_from_export_csv` builds a tenant from an export CSV.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

#: Columns of ``POST {base}/api/numbers/csv``, in the vendor's documented order.
EXPORT_COLUMNS: tuple[str, ...] = (
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
)

#: Per-number columns an operation may write (Update/Attach/Detach).
WRITABLE_COLUMNS: tuple[str, ...] = (
    "MINIAPP_ID",
    "PHONE_NUMBER_SET_ID",
    "APPLICATION_TAG",
    "LOCALE",
    "NOTE",
)

#: Columns stored per number: identity, writable fields and the internal PROVIDER.
STORED_COLUMNS: tuple[str, ...] = ("NUMBER", "GROUP_ID", *WRITABLE_COLUMNS, "PROVIDER")

#: The role that may write (``PUT {base}/api/numbers/csv``).
OWNER = "OWNER"
#: Roles the emulator knows; only :data:`OWNER` may write.
ROLES: tuple[str, ...] = (OWNER, "VIEWER")
#: The group wildcard in :attr:`User.groups`: every group.
ALL_GROUPS = "*"

STATE_FORMAT = "numsync-emulator-state/1"
DIAMANT_APP_NAME = "miniApps"


class StateFileError(ValueError):
    """A state file or seed CSV that cannot be read; the message names the file and the problem."""


@dataclass(slots=True)
class Group:
    """A tenant group (GROUP_ID).

    ``country`` is the ISO region its numbers come from (informational, ``""`` when
    unknown); ``phone_number_sets`` are the PHONE_NUMBER_SET_ID values a number of
    this group may be moved into.
    """

    id: str
    country: str = ""
    phone_number_sets: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Miniapp:
    """A miniapp of the registry, keyed by its MINIAPP_ID.

    ``name`` -> MINIAPP_NAME, ``type`` (``Flow``, ``Numeric``, ...) -> MINIAPP_TYPE,
    ``group`` -> MINIAPP_GROUP (a number may only attach to a miniapp of its own
    group), ``diamant_app_name`` -> MINIAPP_DIAMANT_APP_NAME.
    """

    id: str
    name: str
    type: str
    group: str
    diamant_app_name: str = DIAMANT_APP_NAME


@dataclass(slots=True)
class NumberRow:
    """One number. Attribute ``x`` holds column ``X``; ``""`` means empty.

    ``number`` is NUMBER (E.164), ``group_id`` GROUP_ID; ``provider`` (PROVIDER, given
    on Create) is kept internally and never exported.
    """

    number: str
    group_id: str
    miniapp_id: str = ""
    phone_number_set_id: str = ""
    locale: str = ""
    application_tag: str = ""
    note: str = ""
    provider: str = ""

    def get(self, column: str) -> str:
        """The value of a :data:`STORED_COLUMNS` column (``"LOCALE"`` -> ``self.locale``)."""
        if column not in STORED_COLUMNS:
            raise KeyError(column)
        return str(getattr(self, column.lower()))

    def set(self, column: str, value: str) -> None:
        """Set a :data:`STORED_COLUMNS` column; ``""`` clears it. Raises KeyError on other names."""
        if column not in STORED_COLUMNS:
            raise KeyError(column)
        setattr(self, column.lower(), value)

    @property
    def attached(self) -> bool:
        """Whether the number is attached to a miniapp (MINIAPP_ID set)."""
        return bool(self.miniapp_id)

    def to_json(self) -> dict[str, str]:
        """``{column: value}`` over :data:`STORED_COLUMNS` (includes PROVIDER)."""
        return {column: self.get(column) for column in STORED_COLUMNS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NumberRow:
        """Inverse of :meth:`to_json`; missing columns are empty. Raises KeyError without NUMBER/GROUP_ID."""
        row = cls(number=str(data["NUMBER"]), group_id=str(data["GROUP_ID"]))
        for column in (*WRITABLE_COLUMNS, "PROVIDER"):
            value = data.get(column)
            row.set(column, "" if value is None else str(value))
        return row


@dataclass(slots=True)
class User:
    """A login. ``role`` is one of :data:`ROLES`; ``groups`` lists GROUP_IDs or ``["*"]`` for all;
    ``totp_secret``: the user's own two-factor secret (base32), None for the emulator's ``--totp-secret``."""

    username: str
    password: str
    role: str
    groups: list[str] = field(default_factory=lambda: [ALL_GROUPS])
    totp_secret: str | None = None

    def may_access(self, group_id: str) -> bool:
        """Whether this user has permission on ``group_id``."""
        return ALL_GROUPS in self.groups or group_id in self.groups

    def public_json(self) -> dict[str, Any]:
        """The user without the password: ``{"username", "role", "groups"}``."""
        return {"username": self.username, "role": self.role, "groups": list(self.groups)}


@dataclass(slots=True)
class TenantState:
    """Everything the emulated tenant holds. See the module docstring for shapes."""

    groups: dict[str, Group] = field(default_factory=dict)
    miniapps: dict[str, Miniapp] = field(default_factory=dict)
    numbers: dict[str, NumberRow] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def export_row(self, row: NumberRow) -> dict[str, str]:
        """The 12 :data:`EXPORT_COLUMNS` of ``row`` as the export shows them.

        COUNTRY is the ISO region of NUMBER (``phonenumbers.region_code_for_number``,
        ``""`` when it cannot be parsed); MINIAPP_* come from the registry entry of
        MINIAPP_ID and are empty when the number is unattached or the id is unknown.
        """
        app = self.miniapps.get(row.miniapp_id) if row.miniapp_id else None
        return {
            "APPLICATION_TAG": row.application_tag,
            "COUNTRY": country_of(row.number),
            "GROUP_ID": row.group_id,
            "LOCALE": row.locale,
            "MINIAPP_DIAMANT_APP_NAME": app.diamant_app_name if app else "",
            "MINIAPP_GROUP": app.group if app else "",
            "MINIAPP_ID": row.miniapp_id,
            "MINIAPP_NAME": app.name if app else "",
            "MINIAPP_TYPE": app.type if app else "",
            "NUMBER": row.number,
            "PHONE_NUMBER_SET_ID": row.phone_number_set_id,
            "NOTE": row.note,
        }

    def set_owner(self, set_id: str) -> str | None:
        """The GROUP_ID owning PHONE_NUMBER_SET_ID ``set_id``, or None."""
        for group in self.groups.values():
            if set_id in group.phone_number_sets:
                return group.id
        return None

    def to_json(self, *, include_passwords: bool = True) -> dict[str, Any]:
        """The state file document. Numbers are sorted by NUMBER.

        With ``include_passwords=False`` users carry no ``password`` key (for anything
        shown to a caller); the state file itself keeps them so a restart can log in.
        """
        users: dict[str, Any] = {}
        for name, user in sorted(self.users.items()):
            entry = user.public_json()
            del entry["username"]
            if include_passwords:
                entry["password"] = user.password
                if user.totp_secret:
                    entry["totp_secret"] = user.totp_secret
            users[name] = entry
        return {
            "format": STATE_FORMAT,
            "groups": {
                gid: {"country": g.country, "phone_number_sets": list(g.phone_number_sets)}
                for gid, g in sorted(self.groups.items())
            },
            "miniapps": {
                mid: {"name": m.name, "type": m.type, "group": m.group, "diamant_app_name": m.diamant_app_name}
                for mid, m in sorted(self.miniapps.items())
            },
            "numbers": [self.numbers[n].to_json() for n in sorted(self.numbers)],
            "users": users,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TenantState:
        """Inverse of :meth:`to_json`. Raises StateFileError on another format or a malformed entry."""
        if data.get("format") != STATE_FORMAT:
            raise StateFileError(
                f"not a numsync emulator state (format is {data.get('format')!r}, expected {STATE_FORMAT!r})"
            )
        try:
            groups = {
                gid: Group(gid, str(g.get("country", "")), [str(s) for s in g.get("phone_number_sets", [])])
                for gid, g in data.get("groups", {}).items()
            }
            miniapps = {
                mid: Miniapp(
                    mid,
                    str(m["name"]),
                    str(m["type"]),
                    str(m["group"]),
                    str(m.get("diamant_app_name", DIAMANT_APP_NAME)),
                )
                for mid, m in data.get("miniapps", {}).items()
            }
            numbers = {str(r["NUMBER"]): NumberRow.from_json(r) for r in data.get("numbers", [])}
            users = {
                name: User(
                    name,
                    str(u["password"]),
                    str(u["role"]),
                    [str(x) for x in u.get("groups", [ALL_GROUPS])],
                    str(u["totp_secret"]) if u.get("totp_secret") else None,
                )
                for name, u in data.get("users", {}).items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise StateFileError(f"malformed state entry: {exc!r}") from None
        return cls(groups=groups, miniapps=miniapps, numbers=numbers, users=users)


def country_of(number: str) -> str:
    """ISO region (``US``, ``GB``...) of an E.164 number; ``""`` when it cannot be parsed."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def miniapp_id_for(app_uuid: str, name: str, app_type: str, group: str) -> str:
    """The MINIAPP_ID shape OCP uses: ``uuid.name.Type.group@name.group``."""
    return f"{app_uuid}.{name}.{app_type}.{group}@{name}.{group}"


def parse_miniapp_id(miniapp_id: str) -> Miniapp | None:
    """Read name, type and group back out of a ``uuid.name.Type.group@name.group`` id; None if not that shape."""
    head, sep, _tail = miniapp_id.partition("@")
    parts = head.split(".")
    if not sep or len(parts) < 4:
        return None
    return Miniapp(miniapp_id, name=".".join(parts[1:-2]), type=parts[-2], group=parts[-1])


# ---------------------------------------------------------------------------
# state file I/O


def save_state(state: TenantState, path: str | os.PathLike[str]) -> None:
    """Write ``state`` (with passwords) to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``.

    The file is created with mode 0600 because it holds the emulator's login passwords.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state.to_json(include_passwords=True), indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: str | os.PathLike[str]) -> TenantState:
    """Read a state file written by :func:`save_state`. Raises StateFileError naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateFileError(f"{path}: cannot read emulator state: {exc}") from None
    if not isinstance(data, dict):
        raise StateFileError(f"{path}: emulator state must be a JSON object")
    try:
        return TenantState.from_json(data)
    except StateFileError as exc:
        raise StateFileError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------
# seeds

_UUID_NAMESPACE = uuid.UUID("6f1d3c52-8a47-4b0e-9d2a-5c3e7f9a1b64")


@dataclass(frozen=True, slots=True)
class _GroupSeed:
    """How to generate one demo group: numbers ``prefix + str(first + i)`` for i < count."""

    id: str
    country: str
    sets: tuple[str, ...]
    prefix: str
    first: int
    count: int
    locales: tuple[str, ...]
    provider: str
    apps: tuple[tuple[str, str, str | None], ...]  # (name, type, fixed uuid or None -> uuid5)
    tags: tuple[str, ...]
    skip: tuple[str, ...] = ()


_DEMO_GROUPS: tuple[_GroupSeed, ...] = (
    _GroupSeed(
        "ocp-qa",
        "US",
        ("us-east", "us-west"),
        "+12015550",
        100,
        100,
        ("en-US", "es-US"),
        "twilio",
        (
            ("SND_billing_flow", "Flow", "3781bcc1-7c76-439b-ba26-05d22217b316"),
            ("card_pin", "Numeric", "9c1e04d2-51aa-4e0f-8b7e-2f3a6c1d9e10"),
            ("SND_dmt_test_app_vp", "Flow", None),
        ),
        ("billing", "qa"),
        # left free so that tests/fixtures/operations-sample.csv can Create it
        skip=("+12015550127",),
    ),
    _GroupSeed(
        "us-sales",
        "US",
        ("new-york", "chicago"),
        "+12125550",
        100,
        60,
        ("en-US",),
        "twilio",
        (("sales_router", "Flow", None), ("zip_code_entry", "Numeric", None)),
        ("sales", "campaign-q3"),
    ),
    _GroupSeed(
        "uk-care",
        "GB",
        ("london", "manchester"),
        "+442079460",
        900,
        60,
        ("en-GB",),
        "bt-wholesale",
        (
            ("care_router", "Flow", "0b7f3a90-2c4d-4e1b-9a55-7d2e8c6f1a3b"),
            ("complaints_ivr", "Flow", None),
        ),
        ("support",),
    ),
    _GroupSeed(
        "de-service",
        "DE",
        ("berlin", "munich", "hamburg"),
        "+4930123456",
        50,
        40,
        ("de-DE",),
        "sipgate",
        (
            ("kundendienst", "Flow", "5e8d2c17-9f3b-4a6e-b1d4-3c7a9e2f0b58"),
            ("pin_eingabe", "Numeric", None),
        ),
        ("service",),
    ),
    _GroupSeed(
        "au-support",
        "AU",
        ("sydney",),
        "+61255500",
        100,
        40,
        ("en-AU",),
        "telstra",
        (("support_triage", "Flow", None), ("account_lookup", "Numeric", None)),
        ("support", "escalations"),
    ),
)

#: Demo rows that must match tests/fixtures/export-sample.csv exactly:
#: NUMBER -> (MINIAPP name or "", PHONE_NUMBER_SET_ID, LOCALE, APPLICATION_TAG, NOTE).
_FIXTURE_ROWS: dict[str, tuple[str, str, str, str, str]] = {
    "+12015550123": ("SND_billing_flow", "us-east", "en-US", "", ""),
    "+12015550124": ("SND_billing_flow", "us-east", "en-US", "billing", "Billing hotline"),
    "+12015550125": ("card_pin", "us-east", "es-US", "", ""),
    "+12015550126": ("", "", "", "", ""),
    "+442079460958": ("care_router", "london", "en-GB", "support", "Main line, after-hours routing"),
    "+442079460959": ("", "london", "", "", ""),
    "+493012345678": ("kundendienst", "berlin", "de-DE", "", 'Kundendienst "Zentrale"'),
}

#: Extra notes that exercise CSV quoting: non-ASCII, a quoted newline, a comma.
_DEMO_NOTES: dict[str, str] = {
    "+493012345660": "Rückruf für Großkunden",
    "+61255500105": "Escalations desk\nweekdays only",
    "+12125550110": "Spring campaign, east coast",
    "+442079460911": "Line for the Café Royal account",
}


def _seed_miniapps(spec: _GroupSeed) -> list[Miniapp]:
    """The miniapps of one demo group, with fixed or uuid5 (deterministic) uuids."""
    apps = []
    for name, app_type, fixed in spec.apps:
        app_uuid = fixed or str(uuid.uuid5(_UUID_NAMESPACE, f"{spec.id}/{name}"))
        apps.append(Miniapp(miniapp_id_for(app_uuid, name, app_type, spec.id), name, app_type, spec.id))
    return apps


def _seed_number(spec: _GroupSeed, i: int, apps: list[Miniapp]) -> NumberRow:
    """The i-th demo number of a group, by pure arithmetic on ``i`` (20 % unattached)."""
    digits = len(str(spec.first + spec.count - 1))
    number = f"{spec.prefix}{spec.first + i:0{digits}d}"
    row = NumberRow(number, spec.id, provider=spec.provider)
    if i % 5 == 4:  # unattached; every other one still sits in a set
        if i % 10 == 4:
            row.phone_number_set_id = spec.sets[i % len(spec.sets)]
    else:
        row.miniapp_id = apps[(i // 3) % len(apps)].id
        row.phone_number_set_id = spec.sets[(i // 2) % len(spec.sets)]
        row.locale = spec.locales[(i // 7) % len(spec.locales)]
        if i % 6 == 1:
            row.application_tag = spec.tags[(i // 6) % len(spec.tags)]
    return row


def _apply_fixture_row(row: NumberRow, apps: list[Miniapp]) -> None:
    """Overwrite ``row`` with its fixture values, if it is one of the fixture numbers."""
    fixed = _FIXTURE_ROWS.get(row.number)
    if fixed is None:
        return
    app_name, set_id, locale, tag, note = fixed
    by_name = {a.name: a.id for a in apps}
    row.miniapp_id = by_name[app_name] if app_name else ""
    row.phone_number_set_id, row.locale, row.application_tag, row.note = set_id, locale, tag, note


def default_users() -> dict[str, User]:
    """The seeded logins: ``demo``/``demo-secret`` (OWNER, all groups), ``viewer``/``viewer-secret``
    (VIEWER, all groups), ``qa-owner``/``qa-owner-secret`` (OWNER, ``ocp-qa`` only)."""
    users = (
        User("demo", "demo-secret", OWNER, [ALL_GROUPS]),
        User("viewer", "viewer-secret", "VIEWER", [ALL_GROUPS]),
        User("qa-owner", "qa-owner-secret", OWNER, ["ocp-qa"]),
    )
    return {u.username: u for u in users}


SEEDS: tuple[str, ...] = ("demo", "empty")


def seed_tenant(name: str = "demo") -> TenantState:
    """A deterministic tenant: ``"demo"`` (299 numbers in 5 groups) or ``"empty"`` (same groups,
    sets, miniapps and users, no numbers). Raises ValueError on another name.

    Demo numbers are from fictional/drama ranges and valid per phonenumbers:
    ocp-qa ``+1 201 555 0100..0199`` (without 0127, left free for the operations fixture),
    us-sales ``+1 212 555 0100..0159``, uk-care ``+44 20 7946 0900..0959``,
    de-service ``+49 30 1234 5650..5689``, au-support ``+61 2 5550 0100..0139``.
    The rows of ``tests/fixtures/export-sample.csv`` appear with identical values.
    """
    if name not in SEEDS:
        raise ValueError(f"unknown seed {name!r}; expected one of {', '.join(SEEDS)}")
    state = TenantState(users=default_users())
    for spec in _DEMO_GROUPS:
        state.groups[spec.id] = Group(spec.id, spec.country, list(spec.sets))
        apps = _seed_miniapps(spec)
        state.miniapps.update((a.id, a) for a in apps)
        if name == "empty":
            continue
        for i in range(spec.count):
            row = _seed_number(spec, i, apps)
            if row.number in spec.skip:
                continue
            _apply_fixture_row(row, apps)
            row.note = _DEMO_NOTES.get(row.number, row.note)
            state.numbers[row.number] = row
    return state


def state_from_export_csv(text: str, *, users: Mapping[str, User] | None = None) -> TenantState:
    """A tenant whose numbers are the rows of an export CSV (``POST {base}/api/numbers/csv`` shape).

    Column names are matched case-insensitively, order is free, a BOM is ignored;
    NUMBER and GROUP_ID are required. Groups, their PHONE_NUMBER_SET_IDs and the
    miniapps (name/type/group from the MINIAPP_* columns, else parsed from the id) are
    derived from what the rows reference. PROVIDER is set to ``imported``. ``users``
    defaults to :func:`default_users`. Raises StateFileError naming the data row.
    """
    rows = _read_dict_rows(text.removeprefix("\ufeff"))
    state = TenantState(users=dict(users) if users is not None else default_users())
    for index, cells in enumerate(rows, start=1):
        number, group_id = cells.get("NUMBER", ""), cells.get("GROUP_ID", "")
        if not number or not group_id:
            raise StateFileError(f"row {index}: NUMBER and GROUP_ID are required")
        if number in state.numbers:
            raise StateFileError(f"row {index}: NUMBER {number} appears twice")
        group = state.groups.setdefault(group_id, Group(group_id, cells.get("COUNTRY") or country_of(number)))
        row = NumberRow(number, group_id, provider="imported")
        for column in WRITABLE_COLUMNS:
            row.set(column, cells.get(column, ""))
        if row.phone_number_set_id and row.phone_number_set_id not in group.phone_number_sets:
            group.phone_number_sets.append(row.phone_number_set_id)
        if row.miniapp_id and row.miniapp_id not in state.miniapps:
            state.miniapps[row.miniapp_id] = _miniapp_from_cells(row.miniapp_id, group_id, cells)
        state.numbers[number] = row
    return state


def _read_dict_rows(text: str) -> list[dict[str, str]]:
    """CSV rows as ``{UPPERCASE column: stripped cell}``; blank lines skipped. Raises StateFileError."""
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise StateFileError(f"not a CSV file: {exc}") from None
    if not records:
        raise StateFileError("the CSV file is empty")
    header = [c.strip().upper() for c in records[0]]
    missing = [c for c in ("NUMBER", "GROUP_ID") if c not in header]
    if missing:
        raise StateFileError(f"the CSV has no {' or '.join(missing)} column (header: {','.join(header)})")
    return [{h: (cell.strip() if h != "NOTE" else cell) for h, cell in zip(header, record)} for record in records[1:]]


def _miniapp_from_cells(miniapp_id: str, group_id: str, cells: Mapping[str, str]) -> Miniapp:
    """A registry entry for ``miniapp_id`` from a row's MINIAPP_* cells, falling back to the id's parts."""
    parsed = parse_miniapp_id(miniapp_id)
    return Miniapp(
        miniapp_id,
        name=cells.get("MINIAPP_NAME") or (parsed.name if parsed else miniapp_id),
        type=cells.get("MINIAPP_TYPE") or (parsed.type if parsed else "Flow"),
        group=cells.get("MINIAPP_GROUP") or (parsed.group if parsed else group_id),
        diamant_app_name=cells.get("MINIAPP_DIAMANT_APP_NAME") or DIAMANT_APP_NAME,
    )


def users_from_specs(specs: Iterable[str]) -> dict[str, User]:
    """Users from ``USER:PASSWORD:ROLE[:GROUP,GROUP...]`` strings (the ``--user`` option).

    The password may itself contain ``:`` (the role is found from the right). Groups
    default to ``*``. Raises ValueError with a message that never repeats the password.
    """
    users: dict[str, User] = {}
    for spec in specs:
        user = _user_from_spec(spec)
        if user.username in users:
            raise ValueError(f"user {user.username!r} is given twice")
        users[user.username] = user
    return users


def _user_from_spec(spec: str) -> User:
    """One ``--user`` value; see :func:`users_from_specs`."""
    username, sep, rest = spec.partition(":")
    shape = "expected USER:PASSWORD:ROLE[:GROUP,GROUP...]"
    if not sep or not username:
        raise ValueError(f"--user for {username or '?'!r}: {shape}")
    parts = rest.rsplit(":", 2)
    if len(parts) >= 2 and parts[-1].upper() in ROLES:
        password, role, groups_text = ":".join(parts[:-1]), parts[-1], ALL_GROUPS
    elif len(parts) == 3 and parts[1].upper() in ROLES:
        password, role, groups_text = parts[0], parts[1], parts[2]
    else:
        raise ValueError(f"--user for {username!r}: {shape} with ROLE one of {', '.join(ROLES)}")
    groups = [g.strip() for g in groups_text.split(",") if g.strip()]
    if not password or not groups:
        raise ValueError(f"--user for {username!r}: password and groups must not be empty ({shape})")
    return User(username, password, role.upper(), groups)
