"""Start the emulator as a loopback subprocess: the product's API for rehearsals, the demo and tests.

Example::

    with EmulatorProcess("--limit", "Delete=5") as emu:
        token = emu.token()                      # demo / demo-secret
        httpx.post(f"{emu.base_url}/api/numbers/csv", headers={"Authorization": f"Bearer {token}"})
        emu.stats()["export_requests"]           # -> 1
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from numsync.emulator.app import OTP_FIELD, TOKEN_PATH
from numsync.emulator.twofactor import DEFAULT_TOTP_SECRET
from numsync.errors import EmulatorStartError
from numsync.ocp.otp import OtpPolicy, StepLedger, TotpCodes

#: The TOTP secret of the seeded users (demo, viewer), for clients of an emulator started here.
SEEDED_TOTP_SECRET = DEFAULT_TOTP_SECRET

#: The folder holding the ``numsync`` package, put on the child's PYTHONPATH so it runs this code.
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    """``sys.executable -m numsync.emulator --port 0 --port-file <tmp> *extra_args`` as a context manager.

    ``extra_args`` are passed to the command (``--state``, ``--limit``, ``--user``...);
    ``env`` entries are added to the child's environment. Two-factor is on, as on OCP: the child
    gets ``totp_secret``, ``otp_period`` and ``otp_look_around``, and :meth:`login_form` and
    :meth:`token` send fresh codes; ``two_factor=False`` passes ``--no-otp``. Entering waits up to
    ``timeout`` seconds (default 20) for the port file and raises EmulatorStartError
    with the child's stderr if it dies first. Exiting terminates the child (SIGTERM,
    5 s grace, then kill) and removes the temporary folder.
    """

    def __init__(
        self,
        *extra_args: str,
        env: dict[str, str] | None = None,
        timeout: float = 20.0,
        two_factor: bool = True,
        totp_secret: str = DEFAULT_TOTP_SECRET,
        otp_period: int = 30,
        otp_look_around: int = 1,
    ) -> None:
        self.extra_args = extra_args
        self.two_factor = two_factor
        self.totp_secret = totp_secret
        self.otp = OtpPolicy(period=otp_period, look_around=otp_look_around)
        self.env = env
        self.timeout = timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the child and wait until it has written its port. Raises EmulatorStartError."""
        self._tmp = Path(tempfile.mkdtemp(prefix="numsync-emulator-"))
        port_file = self._tmp / "port"
        command = [
            sys.executable,
            "-m",
            "numsync.emulator",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            *self._otp_args(),
            *self.extra_args,
        ]
        self._stdout = open(self._tmp / "stdout", "wb")  # noqa: SIM115 - closed in stop()
        self._stderr = open(self._tmp / "stderr", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr, env=self._child_env()
        )
        try:
            self.port = self._wait_for_port(port_file)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> int | None:
        """Terminate the child (SIGTERM, wait 5 s, then kill); returns its exit status. Idempotent."""
        status = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            status = self.process.returncode
        for handle in (getattr(self, "_stdout", None), getattr(self, "_stderr", None)):
            if handle is not None and not handle.closed:
                handle.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        return status

    def _otp_args(self) -> list[str]:
        if not self.two_factor:
            return ["--no-otp"]
        return [
            f"--totp-secret={self.totp_secret}",
            f"--otp-period={self.otp.period}",
            f"--otp-look-around={self.otp.look_around}",
        ]

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env or {})
        paths = [str(_PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _wait_for_port(self, port_file: Path) -> int:
        assert self.process is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if port_file.exists():
                return int(port_file.read_text(encoding="ascii").strip())
            if self.process.poll() is not None:
                raise EmulatorStartError(
                    f"the emulator exited with status {self.process.returncode} before listening; stderr:\n{self.stderr_text()}"
                )
            time.sleep(0.02)
        raise EmulatorStartError(
            f"the emulator did not listen within {self.timeout:g} s; stderr:\n{self.stderr_text()}"
        )

    def stderr_text(self) -> str:
        """What the child wrote to stderr so far (``""`` once stopped)."""
        if self._tmp is None:
            return ""
        self._stderr.flush()
        return (self._tmp / "stderr").read_text(encoding="utf-8", errors="replace")

    # -- addresses -------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The Integrations API base, ``http://127.0.0.1:PORT/integrations`` (the ``{base}`` of the vendor doc)."""
        return f"{self.url}/integrations"

    @property
    def token_url(self) -> str:
        """The Keycloak token endpoint URL."""
        return f"{self.url}{TOKEN_PATH}"

    # -- helpers ---------------------------------------------------------

    def one_time_code(self, username: str = "demo") -> str:
        """A TOTP code for ``username`` not used before, through numsync's step ledger (so it never collides
        with a code numsync itself sent this emulator)."""
        codes = TotpCodes(self.totp_secret, self.otp, StepLedger())
        return codes.next_code(self.token_url, username)

    def login_form(self, username: str = "demo", password: str = "demo-secret") -> dict[str, str]:
        """The form of a password grant, with a fresh two-factor code while two-factor is on."""
        form = {"client_id": "ocp", "grant_type": "password", "username": username, "password": password}
        if self.two_factor:
            form[OTP_FIELD] = self.one_time_code(username)
        return form

    def token(self, username: str = "demo", password: str = "demo-secret") -> str:
        """An access token from the password grant. Raises httpx.HTTPStatusError on refusal."""
        answer = httpx.post(self.token_url, data=self.login_form(username, password))
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def state(self) -> dict[str, Any]:
        """``GET /_emulator/state``: groups, phone_number_sets, miniapps, numbers (12-column rows), users."""
        return dict(httpx.get(f"{self.url}/_emulator/state").raise_for_status().json())

    def stats(self) -> dict[str, int]:
        """``GET /_emulator/stats``: put_requests, export_requests, token_requests, rows_applied."""
        return dict(httpx.get(f"{self.url}/_emulator/stats").raise_for_status().json())

    def numbers(self) -> dict[str, dict[str, str]]:
        """NUMBER -> its 12-column row, from ``/_emulator/state``."""
        return {row["NUMBER"]: row for row in self.state()["numbers"]}

    def reset(self) -> None:
        """``POST /_emulator/reset``: back to the state the emulator started with."""
        httpx.post(f"{self.url}/_emulator/reset").raise_for_status()
