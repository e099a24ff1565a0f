"""numsync: the phone numbers of an Omilia Cloud Platform tenant, kept in git.

Data flows one way — load → export → diff → plan → apply → verify — and each stage is a
plain function over plain data::

    from numsync import load_config, load_desired, parse_export, diff, make_plan
"""

__version__ = "0.1.0"

from .config import Config, ConfigError, Environment, GroupPolicy, load_config
from .csvio import ExportFormatError, parse_export, write_operations
from .desired import DesiredError, DesiredState, load_desired
from .diff import Change, ChangeKind, Diff, diff
from .model import NULL, Field, NumberRecord, Operation, OperationRow
from .plan import Plan, make_plan
from .planner import PlanningError, plan_phases

__all__ = [
    "NULL",
    "Change",
    "ChangeKind",
    "Config",
    "ConfigError",
    "DesiredError",
    "DesiredState",
    "Diff",
    "Environment",
    "ExportFormatError",
    "Field",
    "GroupPolicy",
    "NumberRecord",
    "Operation",
    "OperationRow",
    "Plan",
    "PlanningError",
    "__version__",
    "diff",
    "load_config",
    "load_desired",
    "make_plan",
    "parse_export",
    "plan_phases",
    "write_operations",
]
