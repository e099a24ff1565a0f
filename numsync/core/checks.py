"""Checks over the loaded desired state that no single number can fail on its own.

They run offline (``numsync validate``) on a :class:`~numsync.core.desired.DesiredState`, also on
the partial state left when some files had problems, so that every finding is reported at once:

- ``provider-missing`` (warning): a number with no PROVIDER on itself, in its file's
  ``defaults`` or as the environment's ``default_provider``. Offline numsync cannot know
  whether the number exists in OCP; if it does not, creating it needs a provider.
- ``set-other-group`` (error): a PHONE_NUMBER_SET_ID used by numbers of two groups. A set
  belongs to one group, so the first group using it (in file order) is taken as its owner and
  every later use from another group is reported, once per line, naming the owner and where.
- ``ignored-value`` (warning): a desired value of a field the number's group ignores
  (``ignore_fields``): it is neither compared nor written, so editing it changes nothing.
- ``country`` (error, opt-in): a number outside its group's ``countries:`` (its region as
  phonenumbers tells it). Plan and apply refuse it too (see :func:`wrong_countries`).
- ``retire-mark-desired`` (error, needs the environment's groups): a desired value that reads as
  its group's retire mark. Removed from desired later, the number would count as marked on that
  day and could be deleted at once, without its grace period.
"""

from __future__ import annotations

from collections.abc import Mapping

import phonenumbers

from numsync.core.desired import DesiredState
from numsync.core.model import Field
from numsync.core.policy import GroupPolicy
from numsync.core.yamlsrc import Location, Problem

WARNING = "warning"


def check_desired(state: DesiredState, groups: Mapping[str, GroupPolicy] | None = None) -> list[Problem]:
    """Every cross-number finding about ``state``, in the order of the numbers; with the environment's
    ``groups``, also the values its policy ignores (the countries are checked on loading, see
    :func:`wrong_countries`)."""
    found = missing_providers(state) + sets_in_other_groups(state)
    if groups is not None:
        found += ignored_values(state, groups)
    return found


def ignored_values(state: DesiredState, groups: Mapping[str, GroupPolicy]) -> list[Problem]:
    """A warning at each desired value of an ignored field (once per place: a value in ``defaults`` once)."""
    problems = []
    reported: set[Location] = set()
    for number, record in state.records.items():
        policy = groups.get(record.group_id)
        if policy is None or not policy.ignore_fields:
            continue
        for f in sorted(policy.ignore_fields, key=lambda f: f.yaml_key):
            if record.get(f) is None:
                continue
            where = state.field_locations.get(number, {}).get(f.yaml_key, state.locations[number])
            if where in reported:
                continue
            reported.add(where)
            problems.append(
                Problem(
                    where,
                    f"{f.yaml_key} is in ignore_fields for group {record.group_id!r} (numsync.yaml), so this value is "
                    "neither compared nor written; remove it, or take the field out of ignore_fields",
                    "ignored-value",
                    WARNING,
                )
            )
    return problems


def wrong_countries(state: DesiredState, groups: Mapping[str, GroupPolicy]) -> list[Problem]:
    """An error at each number whose region is not among its group's ``countries:`` (groups without it: any)."""
    problems: list[Problem] = []
    if not any(policy.countries for policy in groups.values()):
        return problems  # most environments: no loop over every number
    for number, record in state.records.items():
        policy = groups.get(record.group_id)
        if policy is None or not policy.countries:
            continue
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
        if region in policy.countries:
            continue
        allowed = ", ".join(sorted(policy.countries))
        shown = f"a {region} number" if region and region != "ZZ" else "not a number of any one country"
        problems.append(
            Problem(
                state.locations[number],
                f"{number} is {shown}, but group {record.group_id!r} allows only {allowed} (countries: in numsync.yaml); "
                "move it to its own group's file, or add its country there",
                "country",
            )
        )
    return problems


def missing_providers(state: DesiredState) -> list[Problem]:
    """A warning for each number that could not be created for lack of a provider."""
    problems = []
    for number, record in state.records.items():
        if record.provider:
            continue
        problems.append(
            Problem(
                state.locations[number],
                f"{number} has no provider (not on the number, in defaults, or as default_provider in numsync.yaml); "
                "it can be created only with one — fine if it already exists in OCP",
                "provider-missing",
                WARNING,
            )
        )
    return problems


def sets_in_other_groups(state: DesiredState) -> list[Problem]:
    """An error wherever a group uses a phone number set that an earlier file's group already uses."""
    owners: dict[str, tuple[str, str]] = {}  # set → the group that uses it first, and its first number there
    reported: set[Location] = set()
    problems = []
    key = Field.PHONE_NUMBER_SET_ID.yaml_key

    def written(number: str) -> Location:  # looked up only for a finding: a warm load decodes no place for the rest
        where = state.field_locations.get(number, {}).get(key)
        return where if where is not None else state.locations[number]  # unknown: point at the number

    for number, record in state.records.items():
        set_id = record.get(Field.PHONE_NUMBER_SET_ID)
        if set_id is None:
            continue
        owner, first_number = owners.setdefault(set_id, (record.group_id, number))
        if owner == record.group_id:
            continue
        where = written(number)
        if where in reported:
            continue  # a set given in defaults is reported once, at the defaults line
        first = written(first_number)
        reported.add(where)
        problems.append(
            Problem(
                where,
                f"phone number set {set_id!r} belongs to group {owner!r} (used at {first}); "
                f"group {record.group_id!r} cannot use it — a phone number set belongs to one group",
                "set-other-group",
            )
        )
    return problems


def retire_marks_in_desired(state: DesiredState, groups: Mapping[str, GroupPolicy]) -> list[Problem]:
    """An error wherever a desired value of a retiring group reads as that group's retire mark."""
    problems: list[Problem] = []
    if not any(policy.prune and policy.retire_after is not None for policy in groups.values()):
        return problems  # no group retires (retirement_mark is None for every record): no loop over every number
    for number, record in state.records.items():
        policy = groups.get(record.group_id)
        if policy is None or policy.retirement_mark(record) is None:
            continue
        key = policy.retire_mark.field.yaml_key
        where = state.field_locations.get(number, {}).get(key) or state.locations[number]
        problems.append(
            Problem(
                where,
                f"{number}: {key} {record.get(policy.retire_mark.field)!r} reads as the retire mark of group "
                f"{record.group_id!r}; removed from desired, the number would count as retiring since that day and could be deleted "
                "without its grace period. Choose another value (putting a retiring number back: leave the mark out)",
                "retire-mark-desired",
            )
        )
    return problems
