"""Keycloak token auth for OCP, as an ``httpx.Auth``.

Source: the vendor's auth doc — ``POST {host}/auth/realms/master/protocol/openid-connect/token``,
form-encoded ``client_id=ocp``, ``grant_type=password`` (``username``, ``password``, and the
one-time code in ``otp``: two-factor is mandatory on OCP) or ``grant_type=refresh_token``. Access tokens live
``expires_in`` seconds (300), refresh tokens ``refresh_expires_in`` (1800). Every API
call carries ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

import httpx

from numsync.errors import AuthError
from numsync.ocp.csvcodec import printable
from numsync.ocp.otp import DEFAULT_OTP_FIELD, OtpPolicy, StepLedger, TotpCodes, check_code, check_secret
from numsync.ocp.retry import READ, RESEND
from numsync.redaction import SECRETS, Redactor

#: Renew this many seconds before the access token expires, so a request never carries a dying token.
EXPIRY_LEEWAY = 30.0


#: Set on a 401 answer that came right after numsync renewed the token and replayed the request.
RENEWED = "numsync_renewed"
#: Set on a 401 answer to a request that carried a pre-issued token (one numsync cannot renew).
PRE_ISSUED = "numsync_pre_issued"
#: OCP's access-token lifetime when nothing says otherwise (``expires_in`` in the vendor's example answer).
DEFAULT_ACCESS_LIFETIME = 300.0


@dataclass(frozen=True, slots=True)
class CredentialVariables:
    """The names of the environment variables credentials are read from (``credentials:`` in numsync.yaml)."""

    username: str = "OCP_USERNAME"
    password: str = "OCP_PASSWORD"
    totp_secret: str = "OCP_TOTP_SECRET"
    otp: str = "OCP_OTP"
    token: str = "OCP_TOKEN"

    def secret_names(self) -> tuple[str, ...]:
        """The variables that hold secrets (everything but the username)."""
        return (self.password, self.token, self.otp, self.totp_secret)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who numsync acts as: a username and password, or a pre-issued bearer token.

    ``variables``: where they were read from, for messages (names, never values).
    ``repr`` hides the secrets so they cannot leak into logs or tracebacks.
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None
    otp: str | None = None
    totp_secret: str | None = None
    variables: CredentialVariables = CredentialVariables()

    def __repr__(self) -> str:
        kind = "token" if self.token else f"user={self.username!r}"
        return f"Credentials({kind}, secrets hidden)"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, variables: CredentialVariables | None = None
    ) -> Credentials:
        """Read the token variable (``OCP_TOKEN``), or username + password (``OCP_USERNAME``, ``OCP_PASSWORD``) with
        ``OCP_OTP`` or ``OCP_TOTP_SECRET`` — or the variables ``variables`` names instead. Raises AuthError if neither,
        or when the TOTP secret cannot be one (naming the variable, never its value)."""
        env = os.environ if environ is None else environ
        names = variables or CredentialVariables()
        # masked from here on, whatever the variables are called (the CLI knows only the default names)
        SECRETS.add(*(env.get(name) for name in names.secret_names()))
        SECRETS.add_basic(env.get(names.username), env.get(names.password))
        if env.get(names.token, "").strip():
            # a token never holds whitespace; a stray newline would leak it in an error
            return cls(token=env[names.token].strip(), variables=names)
        if env.get(names.username) and env.get(names.password):
            secret = env.get(names.totp_secret, "").strip()
            code = env.get(names.otp, "").strip()
            return cls(
                username=env[names.username],
                password=env[names.password],
                otp=check_code(code, names.otp) if code else None,
                totp_secret=check_secret(secret, names.totp_secret) if secret else None,
                variables=names,
            )
        raise AuthError(
            f"no OCP credentials: set {names.username} and {names.password} (plus {names.otp} or "
            f"{names.totp_secret} where two-factor is on), or {names.token} with a pre-issued access token."
        )

    def secrets(self) -> list[str]:
        """The secret values, for redaction."""
        return [s for s in (self.password, self.token, self.otp, self.totp_secret) if s]


def token_lifetime(token: str, now: float | None = None) -> float | None:
    """Seconds until a pre-issued access token expires, read from its JWT ``exp`` claim without verifying it
    (numsync only wants to warn in time; OCP checks the signature). None when the token is no readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        expires = float(payload["exp"])
    except (ValueError, TypeError, KeyError, binascii.Error):
        return None
    return expires - (time.time() if now is None else now)


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
        if response.status_code != 401:
            return
        if self.credentials.token:
            response.extensions[PRE_ISSUED] = True  # nothing to renew it with: the client says so
            return
        # A token OCP refuses before numsync thinks it expires (revoked, or the clocks differ): renew once
        # (refresh token, else a password login with a new code) and replay; the file was refused unprocessed.
        with self._lock:
            if self._access == token:  # not yet replaced by another thread's renewal
                self._access = None
                yield from self._renew()
        request.headers["Authorization"] = f"Bearer {self._access}"
        response = yield request
        if response.status_code == 401:
            response.extensions[RENEWED] = True  # a fresh token did not help: the client makes it a clear error

    def _stale(self) -> bool:
        return self._access is None or self.clock() >= self._access_expires - EXPIRY_LEEWAY

    def _renew(self) -> Generator[httpx.Request, httpx.Response, None]:
        if self._refresh and self.clock() < self._refresh_expires - EXPIRY_LEEWAY:
            response = yield self._token_request({"grant_type": "refresh_token", "refresh_token": self._refresh})
            response.read()
            if response.status_code == 200:
                self._store(response)
                return
        sent: list[str | None] = []
        response = yield self._password_request(sent)
        response.read()
        if response.status_code != 200:
            raise AuthError(_refusal(response, self.credentials, sent[-1], self.otp.field))
        self._store(response)

    def _password_request(self, sent: list[str | None]) -> httpx.Request:
        """A password-grant token request with a new one-time code, appended to ``sent``.

        The request carries :data:`RESEND`: if the transport must send it again after it may have reached
        OCP (a dropped connection, a 5xx), it sends a new request with a new code — OCP may have accepted
        the first one, and never accepts a code twice."""
        form = {
            "grant_type": "password",
            "username": self.credentials.username or "",
            "password": self.credentials.password or "",
        }
        code = self._one_time_code()
        sent.append(code)
        if code:
            form[self.otp.field] = code
        request = self._token_request(form)
        if code:
            request.extensions[RESEND] = lambda: self._password_request(sent)
        return request

    def _one_time_code(self) -> str | None:
        """The code for this password login; None without two-factor credentials."""
        if self._codes is not None:
            return self._codes.next_code(self.token_url, self.credentials.username or "")
        if self.credentials.otp:
            if self._given_code_used:
                names = self.credentials.variables
                raise AuthError(
                    f"numsync had to log in again (or resend a login whose answer was lost), but {names.otp} holds "
                    "one code and OCP accepts each code once; "
                    f"set {names.totp_secret} instead so numsync can make a fresh code"
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


def _refusal(
    response: httpx.Response, credentials: Credentials, code: str | None, field: str = DEFAULT_OTP_FIELD
) -> str:
    username = credentials.username
    names = credentials.variables
    reason = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            reason = str(body.get("error_description") or body.get("error") or "")
    except ValueError:
        pass
    # a server that echoes what it was sent must not leak it
    reason = printable(Redactor([*credentials.secrets(), code])(reason))
    detail = f" ({reason})" if reason else ""
    refused = (
        f"OCP refused to log in user {username!r}: HTTP {response.status_code} from {response.request.url}{detail}."
    )
    if code is None:
        return (
            f"{refused} numsync sent no two-factor code, and two-factor authentication is mandatory on OCP: "
            f"set {names.totp_secret} to the account's TOTP secret (or {names.otp} to a current code). "
            f"Otherwise check {names.username} and {names.password}, or the environment's token_url."
        )
    # a code in a field the tenant does not read looks to Keycloak like no code at all
    where = (
        ""
        if field == DEFAULT_OTP_FIELD
        else f" The code went in form field {field!r} (otp_field:); OCP documents {DEFAULT_OTP_FIELD!r}."
    )
    return (
        f"{refused} Check {names.username}, {names.password} and the two-factor code ({names.totp_secret} or "
        f"{names.otp}; the environment's otp: period must match the tenant's), or the environment's token_url."
        f"{where}"
    )
