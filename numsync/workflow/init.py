"""``numsync init``: a first numsync.yaml for a tenant, its groups read from the live export.

The file names one environment with its region (or base URL), the desired folder and the
groups, each ``{}``: numbers no desired file lists are only reported, never deleted, until
someone sets ``prune: true`` after review. ``numsync import`` then writes the desired files.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml

from numsync.config import Environment, is_loopback
from numsync.core import yamlsrc
from numsync.core.model import NumberRecord
from numsync.core.paths import write_no_follow
from numsync.core.schema import schema_problems
from numsync.errors import ConfigError, InputError, OverwriteRefused
from numsync.ocp.regions import REGIONS, Region, host_of, token_url_on
from numsync.workflow.importer import file_name

DEFAULT_ENVIRONMENT = "prod"


def region_name(region: str) -> str:
    """``region`` as numsync.yaml spells it (``eu1`` → ``EU1``); raises InputError for a region OCP does not have."""
    name = region.strip().upper()
    if name not in REGIONS:
        raise InputError(f"--region {region!r} is not an OCP region; use one of {', '.join(REGIONS)}")
    return name


def check_base_url(url: str) -> None:
    """Raise InputError unless ``url`` is an http(s) URL with a host and no credentials (they would be written down)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"--base-url {url!r} is not an http(s) URL with a host, e.g. https://eu1-m.ocp.ai/integrations"
        )
    if parts.username or parts.password:
        raise InputError("--base-url must not hold credentials; give them in OCP_USERNAME and OCP_PASSWORD")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(
            f"--base-url {url!r} uses http:// to {parts.hostname}, which is not this machine: the password and tokens "
            "would cross the network in cleartext; use https:// (for a trusted lab network, write numsync.yaml by "
            "hand with allow_insecure_http: true)"
        )


def discovery_environment(name: str, region: str, base_url: str | None, config_path: Path) -> Environment:
    """The environment to export from before numsync.yaml exists: ``region``'s endpoints, or ``base_url``'s."""
    if base_url:
        check_base_url(base_url)
    endpoints = REGIONS[Region(region)]
    url = (base_url or endpoints.base_url or "").rstrip("/")
    if not url:
        raise InputError(f"the vendor documents no Integrations API URL for region {region}: pass --base-url")
    token = token_url_on(endpoints.token_host if not base_url else host_of(url), endpoints.realm)
    return Environment(name=name, base_url=url, token_url=token, desired=config_path.parent / "desired", groups={})


def group_counts(live: Iterable[NumberRecord]) -> dict[str, int]:
    """GROUP_ID → how many live numbers it holds, by GROUP_ID."""
    return dict(sorted(Counter(r.group_id for r in live).items()))


def render_config(
    name: str,
    region: str,
    groups: Mapping[str, int | None],
    *,
    base_url: str | None = None,
    desired: str = "desired",
) -> str:
    """numsync.yaml text for one environment; ``groups``: GROUP_ID → its live count (None when not looked up).

    Raises InputError without groups: an environment manages at least one.
    """
    if base_url:
        check_base_url(base_url)
    if not groups:
        raise InputError("no groups to manage: the live export holds no numbers; name the groups with --group GROUP_ID")
    lines = [
        '# Written by numsync init. See the README, "Configuration", for every setting.\n',
        "environments:\n",
        f"  {_scalar(name)}:\n",
        f"    region: {_scalar(region)}\n",
    ]
    if base_url:
        lines.append(f"    base_url: {_scalar(base_url)}\n")
    lines += [
        f"    desired: {_scalar(desired)}\n",
        "    # default_provider: twilio   # PROVIDER for numbers created without one\n",
        "    groups:                      # {}: unlisted numbers are reported; prune: true deletes them\n",
    ]
    for group_id, count in groups.items():
        lines.append(
            f"      {_scalar(group_id)}: {{}}" + (f"  # {count} number(s) at init\n" if count is not None else "\n")
        )
    return "".join(lines)


_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_RESOLVER = yaml.resolver.Resolver()


def _scalar(value: str) -> str:
    """``value`` as YAML text: plain when YAML reads it back as that string (``ocp-qa``), else double-quoted (``"no"``, ``"1.0"``)."""
    if not _PLAIN.fullmatch(value):
        return yamlsrc.double_quoted(value)  # an invisible character as an escape: raw, numsync.yaml refuses it
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return value if tag == "tag:yaml.org,2002:str" else json.dumps(value)


def check_config_text(text: str, shown: str) -> None:
    """Raise ConfigError unless ``text`` is a numsync.yaml the schema accepts (what :func:`render_config` writes is)."""
    data, problems = yamlsrc.load(text, shown)
    problems += schema_problems("config", data, shown)
    if problems:
        raise ConfigError(problems)


def refuse_existing(path: Path, *, force: bool = False) -> None:
    """Raise OverwriteRefused when ``path`` exists (a link counts) and ``force`` is not given."""
    if (path.exists() or path.is_symlink()) and not force:
        raise OverwriteRefused(f"{path} exists; pass --force to replace it (or --config to write another file)")


def write_config(path: Path, text: str, *, force: bool = False) -> None:
    """Write numsync.yaml; refuses (OverwriteRefused) to replace one without ``force``, and never through a link."""
    refuse_existing(path, force=force)
    check_config_text(text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_no_follow(path, text.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class InitRequest:
    """``numsync init``: where to write, the region, the groups (empty: discover them from a live export)."""

    config_path: Path
    region: str
    group_ids: Sequence[str] = ()
    base_url: str | None = None
    desired: str = "desired"
    force: bool = False
    environment: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InitOutcome:
    """The file written, its environment, and its groups with their live counts (None: not looked up)."""

    path: Path
    environment: str
    groups: dict[str, int | None]
    discovered_from: str | None = None


def run_init(
    request: InitRequest,
    on_retry: Callable[[httpx.Request, str, float], None] | None = None,
    on_otp_wait: Callable[[float], None] | None = None,
) -> InitOutcome:
    """Write a first numsync.yaml; without groups, discover them (read-only) from the live export.

    ``on_retry`` and ``on_otp_wait`` are told about retries and waits for a two-factor time step."""
    from numsync.ocp import Credentials
    from numsync.workflow.pipeline import connect_readonly, export_live

    region = region_name(request.region)
    if REGIONS[Region(region)].base_url is None and not request.base_url:
        raise InputError(f"the vendor documents no Integrations API URL for region {region}: pass --base-url")
    for group_id in request.group_ids:
        file_name(group_id)  # raises UnsafePathError for a GROUP_ID no file can be named after
    refuse_existing(request.config_path, force=request.force)  # before the export: its answer would be thrown away
    name = request.environment or DEFAULT_ENVIRONMENT
    groups: dict[str, int | None] = dict.fromkeys(request.group_ids)
    discovered_from = None
    if not request.group_ids:
        env = discovery_environment(name, region, request.base_url, request.config_path)
        credentials = Credentials.from_env(request.environ)
        with connect_readonly(env, credentials, on_retry=on_retry, on_otp_wait=on_otp_wait) as reader:
            groups = dict(group_counts(export_live(reader)))
        for group_id in groups:  # a live GROUP_ID becomes a file name at import: refuse it here already
            file_name(group_id)  # raises UnsafePathError for a GROUP_ID no file can be named after
        discovered_from = env.base_url
    text = render_config(name, region, groups, base_url=request.base_url, desired=request.desired)
    write_config(request.config_path, text, force=request.force)
    return InitOutcome(request.config_path, name, groups, discovered_from)
