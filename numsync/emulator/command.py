"""``numsync emulator``: run the OCP emulator on a loopback address.

The command binds the socket itself (so ``--port 0`` yields the real port before
serving), writes ``--port-file`` atomically once the socket listens, prints
``numsync emulator listening on http://HOST:PORT`` and serves with uvicorn until
SIGTERM or SIGINT, then exits with status 0.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click
import uvicorn
import yaml
from starlette.applications import Starlette

from numsync.emulator.app import CountPutsInFlight, DateHeader, create_app, merge_limits
from numsync.emulator.faults import FaultInjector, load_rules
from numsync.emulator.state import (
    SEEDS,
    StateFileError,
    TenantState,
    load_state,
    save_state,
    seed_tenant,
    state_from_export_csv,
    users_from_specs,
)
from numsync.emulator.twofactor import DEFAULT_TOTP_SECRET, TwoFactor


def loopback_address(host: str) -> str:
    """The IP to bind for ``host``: ``localhost`` -> ``127.0.0.1``; any loopback IP as is.

    Raises click.BadParameter for anything else: the emulator has fixed demo passwords
    and unauthenticated admin endpoints, so it must never listen on a network.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise click.BadParameter(f"{host!r} is not an IP address; use 127.0.0.1, ::1 or localhost") from None
    if not address.is_loopback:
        raise click.BadParameter(
            f"{host} is not a loopback address; the emulator only listens on loopback (127.0.0.1, ::1)"
        )
    return str(address)


def parse_limits(values: tuple[str, ...]) -> dict[str, int]:
    """``("Delete=5", ...)`` -> ``{"Delete": 5}``. Raises click.BadParameter."""
    limits: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not number.strip().isdigit():
            raise click.BadParameter(f"{value!r}: expected OPERATION=N, e.g. Delete=5", param_hint="--limit")
        limits[name.strip()] = int(number)
    try:
        merge_limits(limits)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--limit") from None
    return limits


def build_state(state_path: Path | None, seed: str, from_csv: Path | None, user_specs: tuple[str, ...]) -> TenantState:
    """The starting state: the ``--state`` file if it exists, else ``--from-csv``, else ``--seed``;
    ``--user`` values then replace the users. Saved to ``--state`` when that is given.
    Raises click.ClickException on an unreadable file or bad ``--user``.
    """
    try:
        users = users_from_specs(user_specs)
        if state_path is not None and state_path.exists():
            if from_csv is not None:
                click.echo(f"numsync emulator: {state_path} exists; --from-csv is ignored", err=True)
            state = load_state(state_path)
        elif from_csv is not None:
            state = state_from_export_csv(from_csv.read_text(encoding="utf-8-sig"))
        else:
            state = seed_tenant(seed)
    except (StateFileError, ValueError, OSError) as exc:
        source = f"{from_csv}: " if from_csv is not None and not isinstance(exc, StateFileError) else ""
        raise click.ClickException(f"{source}{exc}") from None
    if users:
        state.users = users
    if state_path is not None:
        save_state(state, state_path)
    return state


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 = a free one). Raises click.ClickException."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def write_port_file(path: Path, port: int) -> None:
    """Write ``port`` and a newline to ``path`` atomically (temp file + os.replace)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="ascii")
    os.replace(tmp, path)


def set_user_secrets(state: TenantState, specs: tuple[str, ...]) -> None:
    """Give users their own TOTP secrets from ``USER=BASE32`` values (``--user-totp``). Raises click.BadParameter."""
    for spec in specs:
        username, sep, secret = spec.partition("=")
        if not sep or username not in state.users:
            known = ", ".join(sorted(state.users))
            raise click.BadParameter(
                f"expected USER=BASE32 with USER one of {known}, not {username!r}", param_hint="--user-totp"
            )
        state.users[username].totp_secret = _totp_secret(secret, "--user-totp")


def _totp_secret(text: str, option: str = "--totp-secret") -> str:
    import binascii

    import pyotp

    secret = "".join(text.split()).upper()
    if not secret:
        raise click.BadParameter("the secret is empty", param_hint=option)
    try:
        pyotp.TOTP(secret).at(0)
    except (binascii.Error, ValueError):
        raise click.BadParameter("not a base32 secret (letters A-Z, digits 2-7)", param_hint=option) from None
    return secret


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="TCP port; 0 picks a free one."
)
@click.option(
    "--port-file", type=click.Path(dir_okay=False, path_type=Path), help="Write the bound port here once listening."
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="State file: loaded if it exists, else seeded and created; every successful write is saved there.",
)
@click.option(
    "--seed", type=click.Choice(SEEDS), default="demo", show_default=True, help="Seed when there is no state file."
)
@click.option(
    "--from-csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Seed numbers from an export CSV (groups, sets and miniapps derived from its rows).",
)
@click.option(
    "--limit",
    "limit_values",
    multiple=True,
    metavar="OP=N",
    help="Rows per file for an operation, e.g. Delete=5 (repeatable).",
)
@click.option(
    "--access-ttl", type=click.IntRange(min=1), default=300, show_default=True, help="Access token lifetime, seconds."
)
@click.option(
    "--refresh-ttl",
    type=click.IntRange(min=1),
    default=1800,
    show_default=True,
    help="Refresh token lifetime, seconds.",
)
@click.option(
    "--user",
    "user_specs",
    multiple=True,
    metavar="USER:PASSWORD:ROLE[:GROUP,...]",
    help="A login (repeatable); replaces the seeded users. ROLE is OWNER or VIEWER; groups default to *.",
)
@click.option(
    "--faults",
    "faults_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML fault spec: inject latency, 429/5xx, resets, cut bodies, HTML pages (see numsync.emulator.faults).",
)
@click.option(
    "--fault-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for the fault coin tosses (runs are deterministic).",
)
@click.option(
    "--totp-secret",
    default=DEFAULT_TOTP_SECRET,
    show_default=True,
    metavar="BASE32",
    help="TOTP secret of every user (two-factor is on by default, as on OCP).",
)
@click.option(
    "--user-totp",
    "user_totp",
    multiple=True,
    metavar="USER=BASE32",
    help="A user's own TOTP secret (repeatable); users without one have --totp-secret's.",
)
@click.option(
    "--no-otp",
    "otp_off",
    is_flag=True,
    help="Turn two-factor off for a quick local try: a password alone logs in (OCP always asks for a code).",
)
@click.option(
    "--otp-period", type=click.IntRange(min=1), default=30, show_default=True, help="Seconds each TOTP code lasts."
)
@click.option(
    "--otp-look-around",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Time steps accepted before and after now.",
)
@click.option(
    "--clock-offset",
    type=float,
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Run the clock of every answer's Date header this far ahead of the machine's (negative: behind).",
)
def emulator_command(
    host: str,
    port: int,
    port_file: Path | None,
    state_path: Path | None,
    seed: str,
    from_csv: Path | None,
    limit_values: tuple[str, ...],
    access_ttl: int,
    refresh_ttl: int,
    user_specs: tuple[str, ...],
    faults_path: Path | None,
    fault_seed: int,
    totp_secret: str,
    user_totp: tuple[str, ...],
    otp_off: bool,
    otp_period: int,
    otp_look_around: int,
    clock_offset: float,
) -> None:
    """Run a local emulator of the OCP numbers CSV API (for tests, demos and rehearsals)."""
    address = loopback_address(host)
    limits = parse_limits(limit_values)
    state = build_state(state_path, seed, from_csv, user_specs)
    set_user_secrets(state, user_totp)
    if user_totp and state_path is not None:
        save_state(state, state_path)
    two_factor = None if otp_off else TwoFactor(_totp_secret(totp_secret), otp_period, otp_look_around)
    starlette = create_app(
        state,
        limits=limits,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        persist_path=state_path,
        two_factor=two_factor,
    )
    app: Starlette | FaultInjector = starlette
    if faults_path is not None:
        try:
            rules = load_rules(yaml.safe_load(faults_path.read_text("utf-8")))
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise click.ClickException(f"{faults_path}: {exc}") from None
        app = FaultInjector(app, rules, fault_seed)
    counted = CountPutsInFlight(app, starlette.state.emulator.stats)
    served = DateHeader(counted, clock_offset)  # outermost: a fault's answer carries the emulator's Date too
    sock = bind_socket(address, port)
    bound = sock.getsockname()[1]
    url_host = f"[{address}]" if ":" in address else address

    def announce() -> None:
        if port_file is not None:
            write_port_file(port_file, bound)
        click.echo(f"numsync emulator listening on http://{url_host}:{bound}")
        sys.stdout.flush()

    server = _AnnouncingServer(
        uvicorn.Config(served, log_level="warning", access_log=False, lifespan="off", date_header=False), announce
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, server.stop_before_serving)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, announcing the port only once its own signal handlers are in place.

    A SIGTERM at any moment is honoured: before uvicorn listens for signals it is recorded by
    :meth:`stop_before_serving` (the server then exits instead of serving); from the port file's
    appearance on, uvicorn's handler has it. (Announcing earlier, with a handler that ignored the
    signal, lost a SIGTERM sent right after the port file appeared.) uvicorn re-raises the signal
    that stopped it once its handlers are restored; :meth:`stop_before_serving` receives it then,
    which keeps the exit status 0.
    """

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    def stop_before_serving(self, signum: int, frame: FrameType | None) -> None:
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._announce()
