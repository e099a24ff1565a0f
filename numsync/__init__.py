"""numsync: the phone numbers of an Omilia Cloud Platform tenant, kept in git.

Data flows one way — load → export → diff → plan → apply → verify — and each stage is a
plain function over plain data::

    from numsync import load_config, load_desired, parse_export, diff, make_plan
"""

__version__ = "0.1.0"

from numsync.config import Config, ConfigError, Environment, load_config
from numsync.core.desired import DesiredError, DesiredState, load_desired
from numsync.core.diff import Change, ChangeKind, Diff, diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.ocp.compile import PlanningError, plan_phases
from numsync.ocp.csvcodec import ExportFormatError, parse_export, write_operations
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import NULL, Operation
from numsync.workflow.plan import Plan, make_plan

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
