"""Two-factor login as OCP's Keycloak does it: a TOTP code (RFC 6238) in form field ``otp``.

Keycloak's OTP policy: codes last ``period`` seconds (default 30), a code of up to
``look_around`` steps before or after now is accepted (default 1), and an accepted code is
never accepted again. Each user may have a secret of its own (``--user-totp``); the others use
the emulator's (``--totp-secret``, by default :data:`DEFAULT_TOTP_SECRET`, the seeded users'
documented one). Two-factor is on unless ``--no-otp``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

#: The seeded users' TOTP secret (base32), documented in docs/emulator.md; ``--totp-secret`` sets another.
DEFAULT_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

#: Keycloak's answers to a password grant without a code, and with a wrong or reused one.
MISSING_CODE = "Invalid user credentials"
INVALID_CODE = "Invalid totp"


@dataclass(slots=True)
class TwoFactor:
    """Checks one-time codes and remembers the time steps each user has spent."""

    secret: str
    period: int = 30
    look_around: int = 1
    used: dict[str, set[int]] = field(default_factory=dict)

    def check(self, username: str, code: str, now: float, secret: str | None = None) -> tuple[str | None, bool]:
        """``(refusal, reused)``: refusal is None when ``code`` is accepted (its step is then spent).

        ``secret``: the user's own TOTP secret; None for :attr:`secret`, the emulator's."""
        import pyotp

        if not code:
            return MISSING_CODE, False
        totp = pyotp.TOTP(secret or self.secret, interval=self.period)
        current = int(now // self.period)
        for step in range(current - self.look_around, current + self.look_around + 1):
            if hmac.compare_digest(totp.at(step * self.period), code):
                spent = self.used.setdefault(username, set())
                if step in spent:
                    return INVALID_CODE, True
                spent.add(step)
                # forget steps the window can no longer reach, so memory stays small
                spent.difference_update({s for s in spent if s < current - self.look_around})
                return None, False
        return INVALID_CODE, False
