"""Keycloak token auth for OCP, as an ``httpx.Auth``.

Source: the vendor's auth doc — ``POST {host}/auth/realms/master/protocol/openid-connect/token``,
form-encoded ``client_id=ocp``, ``grant_type=password`` (``username``, ``password``, and the
one-time code in ``otp``: two-factor is mandatory on OCP) or ``grant_type=refresh_token``. Access tokens live
``expires_in`` seconds (300), refresh tokens ``refresh_expires_in`` (1800). Every API
call carries ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

import httpx

from numsync.errors import AuthError
from numsync.ocp.otp import OtpPolicy, StepLedger, TotpCodes, check_secret
from numsync.ocp.retry import READ
from numsync.redaction import SECRETS, Redactor

#: Renew this many seconds before the access token expires, so a request never carries a dying token.
EXPIRY_LEEWAY = 30.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who numsync acts as: a username and password, or a pre-issued bearer token.

    ``repr`` hides the secrets so they cannot leak into logs or tracebacks.
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None
    otp: str | None = None
    totp_secret: str | None = None

    def __repr__(self) -> str:
        kind = "token" if self.token else f"user={self.username!r}"
        return f"Credentials({kind}, secrets hidden)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read ``OCP_TOKEN``, or ``OCP_USERNAME`` + ``OCP_PASSWORD`` (+ ``OCP_OTP`` or ``OCP_TOTP_SECRET``). Raises AuthError if neither."""
        env = os.environ if environ is None else environ
        if env.get("OCP_TOKEN", "").strip():
            return cls(
                token=env["OCP_TOKEN"].strip()
            )  # a token never holds whitespace; a stray newline would leak it in an error
        if env.get("OCP_USERNAME") and env.get("OCP_PASSWORD"):
            secret = env.get("OCP_TOTP_SECRET", "").strip()
            return cls(
                username=env["OCP_USERNAME"],
                password=env["OCP_PASSWORD"],
                otp=env.get("OCP_OTP", "").strip() or None,
                totp_secret=check_secret(secret) if secret else None,
            )
        raise AuthError(
            "no OCP credentials: set OCP_USERNAME and OCP_PASSWORD (plus OCP_OTP or OCP_TOTP_SECRET where two-factor is on), or OCP_TOKEN with a pre-issued access token."
        )

    def secrets(self) -> list[str]:
        """The secret values, for redaction."""
        return [s for s in (self.password, self.token, self.otp, self.totp_secret) if s]


class OCPAuth(httpx.Auth):
    """Obtains, renews and attaches OCP access tokens.

    Before a request: reuse the access token unless it expires within
    :data:`EXPIRY_LEEWAY` seconds; else renew with the refresh token, else log in with the
    password and a one-time code (``otp.field``): ``OCP_OTP`` as given, once, or the next
    unused code of ``OCP_TOTP_SECRET`` (see numsync.ocp.otp). On a 401 answer: renew once and
    replay the request. A pre-issued token is sent as is (it cannot be renewed). Raises
    AuthError when the token endpoint refuses.

    Thread-safe: requests sent side by side (apply's concurrent files) renew once, under a
    lock, and the others then use the token it got: a second login would need another
    one-time code, and OCP accepts each code once.
    """

    # Only the token endpoint's answers are read here (``response.read()``, a sync client's stream); an API
    # answer is left unread, so the export can be parsed as it arrives instead of being held whole first.
    requires_response_body = False

    def __init__(
        self,
        token_url: str,
        credentials: Credentials,
        *,
        client_id: str = "ocp",
        clock: Callable[[], float] = time.monotonic,
        otp: OtpPolicy | None = None,
        ledger: StepLedger | None = None,
        on_otp_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.token_url = token_url
        self.credentials = credentials
        self.client_id = client_id
        self.clock = clock
        self.otp = otp or OtpPolicy()
        self._codes = (
            TotpCodes(credentials.totp_secret, self.otp, ledger or StepLedger(), on_wait=on_otp_wait)
            if credentials.totp_secret and not credentials.otp
            else None
        )
        self._given_code_used = False
        self._access: str | None = credentials.token
        self._access_expires = float("inf") if credentials.token else 0.0
        self._refresh: str | None = None
        self._refresh_expires = 0.0
        self.token_requests = 0
        self._lock = threading.Lock()  # held across the token request; httpx runs the flow on the caller's thread
        SECRETS.add(*credentials.secrets())  # every output of this process masks them (numsync.redaction)
        SECRETS.add_basic(credentials.username, credentials.password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._stale():
            with self._lock:
                if self._stale():  # another thread may have renewed while this one waited
                    yield from self._renew()
        token = self._access
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and not self.credentials.token:
            with self._lock:
                if self._access == token:  # not yet replaced by another thread's renewal
                    self._access = None
                    yield from self._renew()
            request.headers["Authorization"] = f"Bearer {self._access}"
            yield request

    def _stale(self) -> bool:
        return self._access is None or self.clock() >= self._access_expires - EXPIRY_LEEWAY

    def _renew(self) -> Generator[httpx.Request, httpx.Response, None]:
        if self._refresh and self.clock() < self._refresh_expires - EXPIRY_LEEWAY:
            response = yield self._token_request({"grant_type": "refresh_token", "refresh_token": self._refresh})
            response.read()
            if response.status_code == 200:
                self._store(response)
                return
        form = {
            "grant_type": "password",
            "username": self.credentials.username or "",
            "password": self.credentials.password or "",
        }
        code = self._one_time_code()
        if code:
            form[self.otp.field] = code
        response = yield self._token_request(form)
        response.read()
        if response.status_code != 200:
            raise AuthError(_refusal(response, self.credentials, code))
        self._store(response)

    def _one_time_code(self) -> str | None:
        """The code for this password login; None without two-factor credentials."""
        if self._codes is not None:
            return self._codes.next_code(self.token_url, self.credentials.username or "")
        if self.credentials.otp:
            if self._given_code_used:
                raise AuthError(
                    "numsync had to log in again, but OCP_OTP holds one code and OCP accepts each code once; "
                    "set OCP_TOTP_SECRET instead so numsync can make a fresh code"
                )
            self._given_code_used = True
            return self.credentials.otp
        return None

    def _token_request(self, form: dict[str, str]) -> httpx.Request:
        self.token_requests += 1
        return httpx.Request(
            "POST",
            self.token_url,
            data={"client_id": self.client_id, **form},
            headers={"Accept": "application/json"},
            extensions={READ: True},
        )

    def _store(self, response: httpx.Response) -> None:
        try:
            body = response.json()
            self._access = str(body["access_token"])
            SECRETS.add_token(self._access, str(body.get("refresh_token") or ""))  # masked from the moment they exist
            now = self.clock()
            self._access_expires = now + float(body.get("expires_in", 300))
            self._refresh = body.get("refresh_token")
            self._refresh_expires = now + float(body.get("refresh_expires_in", 1800))
        except (ValueError, KeyError, TypeError):
            raise AuthError(
                f"the token endpoint {response.request.url} answered HTTP {response.status_code} without an access_token"
            ) from None


def _refusal(response: httpx.Response, credentials: Credentials, code: str | None) -> str:
    username = credentials.username
    reason = ""
    try:
        body = response.json()
        reason = str(body.get("error_description") or body.get("error") or "")
    except ValueError:
        pass
    # a server that echoes what it was sent must not leak it
    reason = Redactor([*credentials.secrets(), code])(reason)
    detail = f" ({reason})" if reason else ""
    refused = (
        f"OCP refused to log in user {username!r}: HTTP {response.status_code} from {response.request.url}{detail}."
    )
    if code is None:
        return (
            f"{refused} numsync sent no two-factor code, and two-factor authentication is mandatory on OCP: "
            "set OCP_TOTP_SECRET to the account's TOTP secret (or OCP_OTP to a current code). "
            "Otherwise check OCP_USERNAME and OCP_PASSWORD, or the environment's token_url."
        )
    return (
        f"{refused} Check OCP_USERNAME, OCP_PASSWORD and the two-factor code (OCP_TOTP_SECRET or OCP_OTP; the "
        "environment's otp: period must match the tenant's), or the environment's token_url."
    )
