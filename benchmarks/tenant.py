"""Synthetic tenants for the benchmarks: a live export CSV and the desired YAML that differs from it.

A tenant of ``size`` numbers lives in groups of 500 (US, GB and DE numbers that phonenumbers
accepts as valid, drawn as in :mod:`benchmarks.validate_bench`), fields as a real export holds
them: most numbers attached to one of three miniapps, a locale, a phone number set per group,
some application tags and notes, every tenth number bare. Every other group prunes; odd groups
put locale and provider in ``defaults``. The export also carries 2% numbers of a group the
environment does not manage (counted, never touched).

``changed`` is the share of numbers whose live state differs from desired, spread over the
kinds a plan meets: field updates (note, tag, set), attaches, detaches, creates (desired, not
live) and deletes (live in a pruning group, in no file).
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.validate_bench import GROUP_SIZE, PLANS, numbers_for
from numsync.ocp.vocabulary import EXPORT_COLUMNS as COLUMNS  # the vendor's order

#: Change kinds and their share of the changed numbers (cycled in this order).
CHANGE_MIX = ("note", "note", "note", "tag", "set", "attach", "detach", "create", "delete", "note")
OUTSIDE_GROUP = "partner-shared"


@dataclass
class Number:
    number: str
    group_id: str
    region: str
    fields: dict[str, str] = field(default_factory=dict)  # yaml key -> value


@dataclass
class Group:
    group_id: str
    kind: str
    prune: bool
    defaults: bool  # locale and provider in the file's defaults
    apps: list[str]
    sets: list[str]
    numbers: list[Number] = field(default_factory=list)


@dataclass
class Tenant:
    size: int
    changed: float
    groups: list[Group]
    live: list[Number]
    desired: dict[str, list[Number]]  # group id -> numbers
    changes: dict[str, int]  # kind -> count


def _base(size: int, rng: random.Random) -> tuple[list[Group], list[Number]]:
    taken: set[str] = set()
    groups = []
    for g in range((size + GROUP_SIZE - 1) // GROUP_SIZE):
        kind = ("us", "uk", "de")[g % 3]
        group_id = f"{kind}-team-{g:03d}"
        apps = [f"{uuid.UUID(int=rng.getrandbits(128))}.flow_{i}.Flow.{group_id}@flow_{i}.{group_id}" for i in range(3)]
        group = Group(
            group_id,
            kind,
            prune=not g % 2,
            defaults=bool(g % 2),
            apps=apps,
            sets=[f"{group_id}-set-{i}" for i in range(3)],
        )
        region, _, _, locale = PLANS[kind]
        count = min(GROUP_SIZE, size - g * GROUP_SIZE)
        for i, number in enumerate(numbers_for(kind, count, rng, taken)):
            n = Number(number, group_id, region)
            if group.defaults:
                n.fields["locale"] = locale
            if i % 10 != 9:
                n.fields["miniapp_id"] = rng.choice(apps)
                n.fields["locale"] = locale
                n.fields["phone_number_set_id"] = rng.choice(group.sets)
                if rng.random() < 0.3:
                    n.fields["application_tag"] = rng.choice(["billing", "support", "qa"])
                if rng.random() < 0.1:
                    n.fields["note"] = f"Line {i} of {group_id}, routed by the {rng.choice(['day', 'night'])} team"
            group.numbers.append(n)
        groups.append(group)
    outside = [
        Number(n, OUTSIDE_GROUP, "US", {"locale": "en-US"}) for n in numbers_for("us", max(1, size // 50), rng, taken)
    ]
    return groups, outside


def build(size: int, changed: float, seed: int = 20240601) -> Tenant:
    """The tenant of ``size`` numbers with ``changed`` (0..1) of them differing between live and desired."""
    rng = random.Random(seed)
    groups, outside = _base(size, rng)
    everything = [n for g in groups for n in g.numbers]
    by_group = {g.group_id: g for g in groups}
    picked = random.Random(seed + 1).sample(range(len(everything)), round(len(everything) * changed))
    live_of: dict[str, Number | None] = {}  # number -> its live state where it differs from desired (None: not live)
    removed: set[str] = set()  # desired numbers dropped from the files (deleted by prune)
    counts = {k: 0 for k in CHANGE_MIX}
    for j, index in enumerate(picked):
        n = everything[index]
        group = by_group[n.group_id]
        kind = CHANGE_MIX[j % len(CHANGE_MIX)]
        if kind == "delete" and not group.prune:
            kind = "note"
        if kind == "detach" and "miniapp_id" not in n.fields:
            kind = "attach"
        live = Number(n.number, n.group_id, n.region, dict(n.fields))
        if kind == "note":
            live.fields["note"] = "old note"
        elif kind == "tag":
            live.fields["application_tag"] = "legacy" if live.fields.get("application_tag") != "legacy" else "x"
        elif kind == "set":
            live.fields["phone_number_set_id"] = next(s for s in group.sets if s != n.fields.get("phone_number_set_id"))
        elif kind == "attach":  # desired attached, live detached (out of band, or a bare number to attach)
            if "miniapp_id" not in n.fields:
                n.fields["miniapp_id"] = group.apps[0]
                n.fields["locale"] = PLANS[group.kind][3]
                live.fields.pop("locale", None) if not group.defaults else None
            live.fields.pop("miniapp_id", None)
        elif kind == "detach":  # desired detaches: live is attached
            live.fields["miniapp_id"] = group.apps[1]
            live.fields["locale"] = PLANS[group.kind][3]
            n.fields.pop("miniapp_id")
        elif kind == "create":
            live = None
        elif kind == "delete":
            removed.add(n.number)
        counts[kind] += 1
        live_of[n.number] = live
    live_numbers = [live_of.get(n.number, n) for n in everything]
    desired = {g.group_id: [n for n in g.numbers if n.number not in removed] for g in groups}
    return Tenant(
        size,
        changed,
        groups,
        [n for n in live_numbers if n is not None] + outside,
        desired,
        {k: v for k, v in counts.items() if v},
    )


def _miniapp_columns(miniapp_id: str) -> dict[str, str]:
    if not miniapp_id:
        return {}
    head, _, tail = miniapp_id.partition("@")
    parts = head.split(".")
    return {
        "MINIAPP_NAME": parts[1],
        "MINIAPP_TYPE": parts[2],
        "MINIAPP_GROUP": parts[3],
        "MINIAPP_DIAMANT_APP_NAME": tail.split(".")[0],
    }


def export_csv(tenant: Tenant) -> bytes:
    """The live numbers as the export sends them: 12 columns, sorted by NUMBER, CRLF, minimal quoting."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n in sorted(tenant.live, key=lambda n: n.number):
        cells = {"NUMBER": n.number, "GROUP_ID": n.group_id, "COUNTRY": n.region}
        cells.update({key.upper(): value for key, value in n.fields.items()})
        cells.update(_miniapp_columns(n.fields.get("miniapp_id", "")))
        writer.writerow([cells.get(c, "") for c in COLUMNS])
    return out.getvalue().encode("utf-8")


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def desired_yaml(group: Group, numbers: list[Number]) -> str:
    """One group's desired file, as ``numsync import`` and people write them (quoted values, defaults)."""
    locale = PLANS[group.kind][3]
    lines = [
        "# yaml-language-server: $schema=../numsync/schema/desired.schema.json\n",
        f"group_id: {_q(group.group_id)}\n",
    ]
    if group.defaults:
        lines.append(f'defaults:\n  locale: {_q(locale)}\n  provider: "twilio"\n')
    lines.append("numbers:\n")
    for n in sorted(numbers, key=lambda n: n.number):
        own = {k: v for k, v in n.fields.items() if not (group.defaults and k == "locale" and v == locale)}
        if not own:
            lines.append(f"  {_q(n.number)}: {{}}\n")
            continue
        lines.append(f"  {_q(n.number)}:\n")
        lines += [
            f"    {k}: {_q(own[k])}\n"
            for k in ("miniapp_id", "locale", "phone_number_set_id", "application_tag", "note")
            if k in own
        ]
    return "".join(lines)


#: The benchmark emulator's two-factor policy (Keycloak's rules, 1 s codes): repeated runs log in often, and a
#: 30 s period would make them wait for fresh codes, which is no part of what is measured.
OTP_PERIOD = 1
OTP_LOOK_AROUND = 2


def write(tenant: Tenant, root: Path) -> None:
    """``root``/numsync.yaml (environment ``bench``), ``root``/desired/*.yaml and ``root``/live.csv."""
    desired = root / "desired"
    desired.mkdir(parents=True, exist_ok=True)
    for group in tenant.groups:
        (desired / f"{group.group_id}.yaml").write_text(desired_yaml(group, tenant.desired[group.group_id]), "utf-8")
    (root / "live.csv").write_bytes(export_csv(tenant))
    config = [
        "environments:\n",
        "  bench:\n",
        "    base_url: ${OCP_EMULATOR_URL:-http://127.0.0.1:9}/integrations\n",
        "    desired: desired\n",
        "    default_provider: twilio\n",
        "    timeout: 300\n",
        f"    otp: {{period: {OTP_PERIOD}, look_around: {OTP_LOOK_AROUND}}}\n",
        "    safety: {max_deletes: 1000000, max_change_percent: 100}\n",
        "    groups:\n",
    ]
    config += [f"      {g.group_id}: {{prune: {'true' if g.prune else 'false'}}}\n" for g in tenant.groups]
    (root / "numsync.yaml").write_text("".join(config), "utf-8")
