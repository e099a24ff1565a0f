"""numsync: the phone numbers of an Omilia Cloud Platform tenant, kept in git.

Data flows one way — load → export → diff → plan → apply → verify — and each stage is a
plain function over plain data::

    from numsync import load_config, load_desired, parse_export, diff, make_plan

The names below are the public API; everything else may move between releases.
"""

__version__ = "0.1.0"

from numsync.config import Config, Environment, load_config
from numsync.core.desired import DesiredState, load_desired
from numsync.core.diff import Change, ChangeKind, ChangeSummary, Diff, diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.errors import (
    ConfigError,
    DesiredError,
    ExportFormatError,
    InputError,
    NumsyncError,
    PlanningError,
    RemoteError,
    SafetyRefusal,
    StalePlanError,
)
from numsync.ocp.compile import plan_phases
from numsync.ocp.csvcodec import parse_export, write_operations
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import NULL, Operation
from numsync.workflow.apply import ApplyResult, apply_plan
from numsync.workflow.plan import Plan, make_plan

__all__ = [
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
