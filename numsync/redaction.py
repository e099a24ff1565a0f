"""The one redactor: known secret values out of any text numsync shows, logs or stores.

It imports nothing from numsync, so every layer (the vendor client included) may use it.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Redactor:
    """Replaces each known secret value in a text by ``***``.

    Each secret counts raw and stripped: a value pasted with a trailing newline is sent
    stripped, and a server may echo either form. A value of whitespace only is no secret
    (an unset variable written as " "); masking it would mask every space.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        values = {form for secret in secrets if secret and secret.strip() for form in (secret, secret.strip())}
        # longest first, so a secret that contains another one is masked whole
        self.secrets: tuple[str, ...] = tuple(sorted(values, key=lambda s: (-len(s), s)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text
