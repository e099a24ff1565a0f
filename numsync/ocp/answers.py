"""What an error answer of the Integrations API means, in the vendor's words ("HTTP Code Responses").

The vendor's page lists 400 (bad request), 401 (no valid token), 402 (valid parameters, but the
request failed), 403 (most often "No available licenses"), 404 (no such resource), 409 (conflict),
429 (too many requests) and 5xx; "How to manage batch numbers through CSV" adds that writing needs
the OWNER role and permission on every touched number's group. From the status and the vendor's
text this module tells apply two things: whether the file was refused before anything in it was
processed, and whether every later file would be refused for the same reason (then apply stops
sending). The vendor's text itself is always passed through to the user.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

#: Statuses that say the file was refused before anything in it was processed: the vendor's 400, 401, 403, 404
#: and 429, and the standard refusals 413 (too large), 415 (unsupported type) and 422 (unprocessable). Any other
#: status (402, 409, 5xx, or one not listed) leaves the outcome unknown: numsync re-reads live before going on.
REFUSED_BEFORE_PROCESSING = frozenset({400, 401, 403, 404, 413, 415, 422, 429})


class Refusal(enum.Enum):
    """Why OCP refused a request, as far as its status and text tell."""

    LICENCES = "licences"  # 403 "No available licenses": the tenant, not the file
    ROLE = "role"  # 403 naming a role: the user cannot write at all (OWNER is needed)
    GROUP = "group"  # 403 naming a group: this file touches a group the user has no permission on
    FORBIDDEN = "forbidden"  # 403 with another text: about who is asking, so taken as for every file
    TOKEN = "token"  # 401 that a fresh token did not cure (or a pre-issued token, which cannot be renewed)
    NOT_FOUND = "not found"  # 404: the endpoint is not there (base_url)
    LIMIT = "limit exceeded"  # 400 limit_exceeded: the tenant's rows-per-file limit is below numsync's
    OTHER = "other"


#: Refusals that every later file would meet too: apply stops sending after the first.
EVERY_FILE = frozenset({Refusal.LICENCES, Refusal.ROLE, Refusal.FORBIDDEN, Refusal.TOKEN, Refusal.NOT_FOUND})

_LIMIT = re.compile(r"\b(Create|Update|Attach|Detach|Delete)\b[^;]{0,60}?\blimit of (\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Answer:
    """An error answer read: its ``refusal`` and the hint numsync adds to the vendor's text ("" for none)."""

    refusal: Refusal
    hint: str

    @property
    def every_file(self) -> bool:
        """Whether every later file would be refused for the same reason."""
        return self.refusal in EVERY_FILE


def read_answer(status: int, error: str, message: str, *, renewed: bool = False, pre_issued: bool = False) -> Answer:
    """The meaning of an error answer: ``error`` is the JSON ``error`` code, ``message`` the vendor's text.

    ``renewed``: a 401 that came after numsync had just renewed the token; ``pre_issued``: the token was
    given in the environment and cannot be renewed.
    """
    text = f"{error} {message}".lower()
    if status == 403:
        if "licen" in text:  # the vendor's "No available licenses" (and the British spelling)
            return Answer(Refusal.LICENCES, "the tenant has no licence left for this; every file would be refused")
        if "group" in text:
            return Answer(Refusal.GROUP, "the user lacks permission on a group this file touches")
        if "role" in text:
            return Answer(Refusal.ROLE, "the user's role cannot write numbers; writing needs the OWNER role")
        return Answer(Refusal.FORBIDDEN, "the user may not do this; every file would be refused")
    if status == 401:
        if pre_issued:
            return Answer(
                Refusal.TOKEN,
                "the token was refused: it was pre-issued (expired or revoked?) and numsync cannot renew it; "
                "give a fresh one, or log in with a username, password and two-factor secret",
            )
        if renewed:
            return Answer(
                Refusal.TOKEN,
                "the token was refused again right after numsync renewed it: the account may not use the Integrations "
                "API, or the token endpoint belongs to another tenant (check token_url / realm)",
            )
        return Answer(Refusal.TOKEN, "the token was refused")
    if status == 404:
        return Answer(Refusal.NOT_FOUND, "no such endpoint: check the environment's base_url")
    if status == 400 and ("limit_exceeded" in text or _LIMIT.search(message)):
        return Answer(Refusal.LIMIT, _limit_hint(message))
    return Answer(Refusal.OTHER, "")


def _limit_hint(message: str) -> str:
    found = {m.group(1).capitalize(): int(m.group(2)) for m in _LIMIT.finditer(message)}
    example = ", ".join(f"{op}: {n}" for op, n in found.items()) or "Delete: 5"
    return (
        "the tenant's rows-per-file limit is below the one numsync planned with; "
        f"set it in numsync.yaml for this environment, e.g. limits: {{{example}}}, and plan again"
    )
