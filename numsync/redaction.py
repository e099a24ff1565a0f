"""The one redactor: known secret values out of any text numsync shows, logs or stores.

It imports nothing from numsync, so every layer (the vendor client included) may use it.
:data:`SECRETS` is the process-wide registry of what is secret in this run: the configured
credentials, and every token obtained while running (``OCPAuth`` adds them as it gets
them). Every byte numsync prints or writes passes through :func:`redact` — the CLI's one
echo function, the report and export files it writes, the journal.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterable

MASK = "***"
#: Shorter tokens obtained at run time are not masked (see SecretRegistry.add_token).
MIN_TOKEN_LENGTH = 8


def forms(secret: str) -> set[str]:
    """The spellings of ``secret`` a server may echo or a log may hold.

    Raw and stripped (a value pasted with a trailing newline is sent stripped),
    URL-encoded (a form field, a query string), JSON-escaped, and base64.
    """
    found = set()
    for value in {secret, secret.strip()}:
        found |= {
            value,
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value),
            json.dumps(value, ensure_ascii=False)[1:-1],
            json.dumps(value)[1:-1],
            base64.b64encode(value.encode()).decode(),
        }
    return found


class Redactor:
    """Replaces each known secret value in a text by ``***``.

    Each secret counts in all its :func:`forms`. A value of whitespace only is no secret
    (an unset variable written as " "); masking it would mask every space.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        values = {form for secret in secrets if secret and secret.strip() for form in forms(secret)}
        # longest first, so a secret that contains another one is masked whole
        self.secrets: tuple[str, ...] = tuple(sorted((v for v in values if v.strip()), key=lambda s: (-len(s), s)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class SecretRegistry:
    """The secrets of this process, growing as tokens are issued; thread-safe."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._redactor = Redactor(())

    def add(self, *secrets: str | None) -> None:
        """Register values (None, blank and one-time codes are ignored).

        A one-time code (a two-factor code: at most 8 digits) is not masked process-wide: it
        would mask those digits inside every phone number shown, and it is worthless once
        used. Error messages still mask ``OCP_OTP`` (the CLI does).
        """
        new = {s for s in secrets if s and s.strip() and not _one_time_code(s)} - self._values
        if new:
            with self._lock:
                self._values |= new
                self._redactor = Redactor(self._values)

    def add_token(self, *tokens: str | None) -> None:
        """Register tokens issued at run time, those of at least :data:`MIN_TOKEN_LENGTH` characters.

        Real access and refresh tokens are long random strings; a token of a few characters
        (a test double's ``"t"``) would mask that letter in every line shown.
        """
        self.add(*(t for t in tokens if t and len(t.strip()) >= MIN_TOKEN_LENGTH))

    def add_basic(self, user: str | None, password: str | None) -> None:
        """Register ``user:password`` as HTTP Basic sends it (base64), besides the password itself."""
        if password and password.strip():
            self.add(password, f"{user or ''}:{password}")

    def redact(self, text: str) -> str:
        """``text`` with every registered secret masked, in each of its forms."""
        return self._redactor(text)

    def redact_bytes(self, data: bytes) -> bytes:
        """``data`` (UTF-8, or anything: undecodable bytes are kept) with every secret masked."""
        if not self._values:
            return data
        return self.redact(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def clear(self) -> None:
        """Forget every secret (tests; a long-lived process between unrelated runs)."""
        with self._lock:
            self._values = set()
            self._redactor = Redactor(())


def _one_time_code(value: str) -> bool:
    text = value.strip()
    return text.isdigit() and len(text) <= 8


#: The process-wide registry.
SECRETS = SecretRegistry()


def redact(text: str) -> str:
    """``text`` with every secret of this process masked (see :data:`SECRETS`)."""
    return SECRETS.redact(text)
