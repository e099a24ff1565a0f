"""The OCP Integrations API client: the only part of numsync that does network I/O."""

from numsync.errors import ApiError, AuthError, ReadOnlyViolation
from numsync.ocp.auth import Credentials, OCPAuth
from numsync.ocp.client import ExecuteResult, OCPClient, OCPReader, RowResult

__all__ = [
    "ApiError",
    "AuthError",
    "Credentials",
    "ExecuteResult",
    "OCPAuth",
    "OCPClient",
    "OCPReader",
    "ReadOnlyViolation",
    "RowResult",
]
