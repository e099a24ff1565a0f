"""The OCP Integrations API client: the only part of numsync that does network I/O."""

from numsync.ocp.auth import AuthError, Credentials, OCPAuth
from numsync.ocp.client import ApiError, ExecuteResult, OCPClient, OCPReader, ReadOnlyViolation, RowResult

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
