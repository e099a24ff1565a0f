"""numsync's public API: the names ``import numsync`` promises, pinned so a change to them is deliberate."""

from __future__ import annotations

import importlib

import pytest

import numsync

PUBLIC = [
    "NULL",
    "ApplyResult",
    "Change",
    "ChangeKind",
    "ChangeSummary",
    "Config",
    "ConfigError",
    "DesiredError",
    "DesiredState",
    "Diff",
    "Environment",
    "ExportFormatError",
    "Field",
    "GroupPolicy",
    "InputError",
    "NumberRecord",
    "NumsyncError",
    "Operation",
    "OperationRow",
    "Plan",
    "PlanningError",
    "RemoteError",
    "SafetyRefusal",
    "StalePlanError",
    "__version__",
    "apply_plan",
    "diff",
    "load_config",
    "load_desired",
    "make_plan",
    "parse_export",
    "plan_phases",
    "write_operations",
]


def test_all_is_exactly_the_public_api_and_sorted() -> None:
    assert numsync.__all__ == PUBLIC
    # isort's order, as ruff keeps it: CONSTANTS, then Classes, then functions
    assert numsync.__all__ == sorted(
        numsync.__all__, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_is_importable(name: str) -> None:
    module = importlib.import_module("numsync")
    assert getattr(module, name) is not None
    exec(f"from numsync import {name}", {})


def test_the_base_errors_are_the_hierarchy_of_numsync_errors() -> None:
    from numsync import errors

    for name in ("NumsyncError", "InputError", "RemoteError", "StalePlanError", "SafetyRefusal", "ConfigError"):
        assert getattr(numsync, name) is getattr(errors, name)
    assert issubclass(numsync.InputError, numsync.NumsyncError) and issubclass(
        numsync.RemoteError, numsync.NumsyncError
    )
