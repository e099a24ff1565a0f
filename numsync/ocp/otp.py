"""Two-factor codes as OCP's Keycloak checks them: TOTP (RFC 6238), each code accepted once.

Keycloak's OTP policy has a period (default 30 s) and a look-around window (default 1
step either side), and refuses a code it has already accepted. numsync therefore never sends
one code twice: within a process it logs in once and then refreshes; across processes (plan,
then apply, inside one CI step) it records the last time step it used per token endpoint and
username in a small ledger file — no secret, no code — and takes the next step the window
accepts, or waits for one.
"""

from __future__ import annotations

import binascii
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from numsync.errors import AuthError

#: Form field the vendor's token endpoint reads the one-time code from.
DEFAULT_OTP_FIELD = "otp"
#: Fewest base32 characters accepted in a TOTP secret (80 bits; Keycloak issues 32 characters, 160 bits).
MIN_SECRET_CHARS = 16
#: Where the ledger lives when ``NUMSYNC_STATE_DIR`` is not set: ``$XDG_CACHE_HOME/numsync`` or ``~/.cache/numsync``.
LEDGER_NAME = "otp-steps.json"


@dataclass(frozen=True, slots=True)
class OtpPolicy:
    """The tenant's OTP policy as numsync must match it: ``period`` seconds per code, ``look_around`` steps
    accepted either side of now, and the token-endpoint form ``field`` the code goes in."""

    period: int = 30
    look_around: int = 1
    field: str = DEFAULT_OTP_FIELD


def check_secret(secret: str, variable: str = "OCP_TOTP_SECRET") -> str:
    """``secret`` as base32 without spaces, upper case. Raises AuthError naming ``variable`` when it cannot be one."""
    import pyotp

    cleaned = "".join(secret.split()).upper().rstrip("=")
    hint = f"set {variable} to the base32 secret shown when two-factor was set up (the text under the QR code)."
    if len(cleaned) < MIN_SECRET_CHARS:
        raise AuthError(
            f"{variable} is too short to be a TOTP secret ({len(cleaned)} characters, at least {MIN_SECRET_CHARS}); {hint}"
        )
    try:
        pyotp.TOTP(cleaned).at(0)
    except (binascii.Error, ValueError):
        raise AuthError(f"{variable} is not base32 (letters A-Z and digits 2-7 only); {hint}") from None
    return cleaned


def check_code(code: str, variable: str = "OCP_OTP") -> str:
    """``code`` without surrounding spaces. Raises AuthError naming ``variable`` unless it is 6 to 10 digits
    (what authenticator apps show), so a wrong value is not sent to OCP as a login attempt."""
    cleaned = code.strip()
    if not (cleaned.isascii() and cleaned.isdigit() and 6 <= len(cleaned) <= 10):
        raise AuthError(
            f"{variable} is not a one-time code (6 to 10 digits, as the authenticator app shows); set it to the "
            "current code, or set the TOTP secret instead so numsync makes the codes itself"
        )
    return cleaned


def code_at(secret: str, step: int, period: int) -> str:
    """The six-digit TOTP code of time step ``step`` (``step * period`` seconds since the epoch)."""
    import pyotp

    return pyotp.TOTP(secret, interval=period).at(step * period)


def choose_step(now: float, policy: OtpPolicy, last_used: int | None) -> tuple[int, float]:
    """The time step to use and the seconds to wait before sending it.

    The current step, unless it was already used; then the next unused step within the look-around
    window; past the window, the step right after the last one, sent once the server's window reaches it.
    """
    current = int(now // policy.period)
    if last_used is None or last_used < current:
        return current, 0.0
    if last_used > current + policy.look_around:
        # recorded by a clock ahead of this one (or the clock moved back): no code of it can be live now
        return current, 0.0
    step = last_used + 1
    if step <= current + policy.look_around:
        return step, 0.0
    return step, max(0.0, (step - policy.look_around) * policy.period - now)


def state_dir() -> Path:
    """``NUMSYNC_STATE_DIR``, or numsync's folder in the user cache dir."""
    if os.environ.get("NUMSYNC_STATE_DIR"):
        return Path(os.environ["NUMSYNC_STATE_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "numsync"


class StepLedger:
    """The last TOTP time step used per (token URL, username), in a JSON file. Holds no secret and no code."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / LEDGER_NAME

    @staticmethod
    def key(token_url: str, username: str) -> str:
        return f"{username} {token_url}"

    def last(self, token_url: str, username: str) -> int | None:
        value = self._read().get(self.key(token_url, username))
        return value if isinstance(value, int) else None

    def record(self, token_url: str, username: str, step: int) -> None:
        """Remember ``step`` (atomically: temp file and rename, so a crashed writer leaves the old file)."""
        data = self._read()
        key = self.key(token_url, username)
        previous = data.get(key)
        data[key] = max(step, previous) if isinstance(previous, int) else step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}  # no ledger yet, or a damaged one: the server still refuses a reused code
        return data if isinstance(data, dict) else {}


@dataclass
class TotpCodes:
    """Hands out codes from a TOTP secret, never the same time step twice for one login target.

    ``on_wait(seconds)`` is told before numsync sleeps for the next step (the CLI says so).
    """

    secret: str
    policy: OtpPolicy
    ledger: StepLedger
    clock: Callable[[], float] = field(default=lambda: time.time())  # looked up per call: a frozen clock applies
    sleep: Callable[[float], None] = field(default=lambda seconds: time.sleep(seconds))
    on_wait: Callable[[float], None] | None = None

    def next_code(self, token_url: str, username: str) -> str:
        step, wait = choose_step(self.clock(), self.policy, self.ledger.last(token_url, username))
        if wait > 0:
            if self.on_wait is not None:
                self.on_wait(wait)
            self.sleep(wait)
        self.ledger.record(token_url, username, step)  # before sending: a code that was sent counts as used
        return code_at(self.secret, step, self.policy.period)
