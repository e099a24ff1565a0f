"""numsync.yaml: the environments numsync manages, their endpoints, limits and policy."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import phonenumbers

from numsync.core import yamlsrc
from numsync.core.desiredcache import DEFAULT_FOLDER_NAME as DEFAULT_CACHE_FOLDER
from numsync.core.desiredcache import ENV_VAR as CACHE_ENV_VAR
from numsync.core.files import encoding_problem
from numsync.core.freeze import Freeze, parse_freeze
from numsync.core.model import Field, normalize_number, normalize_value
from numsync.core.paths import escapes, repository_root
from numsync.core.policy import DriftPolicy, GroupPolicy, RetireMark, Safety, StaleReview, Suppression
from numsync.core.schema import schema_problems
from numsync.core.yamlsrc import Location, Problem
from numsync.errors import ConfigError, FreezeError, NumberFormatError, YamlSyntaxError
from numsync.ocp.auth import CredentialVariables
from numsync.ocp.otp import OtpPolicy
from numsync.ocp.regions import DEFAULT_REALM, REGIONS, Region, documented_token_host, host_of, token_url_on
from numsync.ocp.retry import RetryPolicy
from numsync.ocp.vocabulary import DEFAULT_LIMITS, Operation
from numsync.redaction import SECRETS

DEFAULT_CONFIG = "numsync.yaml"
#: Upload files of one phase in flight at once unless ``apply_concurrency:`` says otherwise (docs/reliability.md
#: "Concurrent files" gives the measurements behind it).
DEFAULT_APPLY_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Settle:
    """How long to wait for live to settle after an unknown outcome (``settle:`` in numsync.yaml).

    Live counts as settled when two exports ``interval`` seconds apart agree; after ``timeout``
    seconds without that, apply stops. ``interval`` should exceed both how far the export may
    lag its writes and how long OCP may go on processing a file after its answer was lost.
    """

    interval: float = 2.0
    timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class Environment:
    """One OCP tenant as configured.

    ``base_url``: Integrations API base (``…/integrations``); ``token_url``: Keycloak token
    endpoint; ``desired``: folder of desired YAML; ``groups``: managed GROUP_IDs and their
    policy; ``limits``: rows per file by operation; ``timeout``: seconds per API call;
    ``retry``: attempts, backoff and pace of every client for this environment (``retry:``);
    ``region``: the vendor region the endpoints came from, when numsync.yaml names one;
    ``otp``: the tenant's two-factor policy (``otp:`` period and look-around, ``otp_field:``).
    ``settle``: how long to wait for live to stop moving after an unknown outcome (``settle:``).
    ``credentials``: the names of the variables its credentials are read from (``credentials:``).
    ``on_stale_review``: on merge, what apply does when the reviewed plan is stale and a plan made
    now differs; ``drift``: the scheduled drift run's warnings and GitLab issue (``drift:``).
    ``apply_concurrency``: files of one phase apply keeps in flight at once (``apply_concurrency:``).
    ``allow_insecure_http``: http:// endpoints on a host that is not loopback were allowed
    (``allow_insecure_http: true``); ``proxy``: the proxy every request goes through (``proxy:``;
    None: HTTPS_PROXY, HTTP_PROXY and NO_PROXY decide). It may hold a password: never shown.
    """

    name: str
    base_url: str
    token_url: str
    desired: Path
    groups: dict[str, GroupPolicy]
    limits: dict[Operation, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    default_provider: str | None = None
    timeout: float = 60.0
    protected: frozenset[str] = frozenset()
    safety: Safety = field(default_factory=Safety)
    suppressions: tuple[Suppression, ...] = ()
    ca_bundle: str | None = None
    freeze: Freeze = field(default_factory=Freeze)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    settle: Settle = field(default_factory=Settle)
    on_stale_review: StaleReview = StaleReview.REFUSE
    drift: DriftPolicy = field(default_factory=DriftPolicy)
    apply_concurrency: int = DEFAULT_APPLY_CONCURRENCY
    #: Where desired files must resolve (the git top level, else the folder of numsync.yaml); None: the
    #: desired loader's own default. Not compared: it says where the config was read, not what it says.
    repository: Path | None = field(default=None, compare=False)
    region: Region | None = None
    otp: OtpPolicy = field(default_factory=OtpPolicy)
    #: The cache of parsed desired files (see numsync.core.desiredcache); None: no cache. Not compared,
    #: like ``repository``: it changes how fast the desired files load, never what they hold.
    cache_dir: Path | None = field(default=None, compare=False)
    credentials: CredentialVariables = field(default_factory=CredentialVariables)
    #: Warnings about ``${VAR}``s in its endpoints that have no value here: offline commands (validate,
    #: fmt, environments) report them and go on; reaching OCP refuses (:meth:`require_endpoints`).
    unresolved: tuple[Problem, ...] = ()

    def require_endpoints(self) -> None:
        """Raise ConfigError when an endpoint holds a ``${VAR}`` with no value: numsync cannot reach OCP then."""
        if self.unresolved:
            raise ConfigError([replace(p, severity="error") for p in self.unresolved])

    allow_insecure_http: bool = False
    proxy: str | None = field(default=None, repr=False)  # repr=False: user:password@ must not reach a traceback


@dataclass(frozen=True, slots=True)
class Config:
    """The loaded numsync.yaml: its path, environments by name, and ``warnings`` (located, severity warning)."""

    path: Path
    environments: dict[str, Environment]
    warnings: tuple[Problem, ...] = ()

    def environment(self, name: str | None) -> Environment:
        """The environment ``name``; with None, the only one. Raises ConfigError otherwise."""
        location = Location(str(self.path), 1, 1)
        if name is None:
            if len(self.environments) == 1:
                return next(iter(self.environments.values()))
            names = ", ".join(self.environments)
            raise ConfigError(
                [
                    Problem(
                        location, f"several environments are configured ({names}); choose one with --env", "config-env"
                    )
                ]
            )
        if name not in self.environments:
            names = ", ".join(self.environments)
            raise ConfigError(
                [Problem(location, f"no environment {name!r} in {self.path} (configured: {names})", "config-env")]
            )
        return self.environments[name]


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(text: str, location: Location, unresolved: list[Problem]) -> str:
    """``text`` with each ``${VAR}`` / ``${VAR:-default}`` replaced; a variable without a value stays as written
    and is added to ``unresolved`` as a warning (an error only where OCP must be reached)."""

    def substitute(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = os.environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        unresolved.append(
            Problem(
                location,
                f"environment variable {name} is not set (used in {text!r}); commands that reach OCP need it: "
                f"set it or give a default with ${{{name}:-…}}",
                "config-var",
                "warning",
            )
        )
        return m.group(0)

    return _VAR.sub(substitute, text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's hostname) is this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problems(key: str, url: str, where: Location, *, insecure_ok: bool = True) -> list[Problem]:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        return [Problem(where, f"{key} {url!r} is not a valid URL ({exc})", "config-endpoint")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Problem(
                where,
                f"{key} {url!r} is not an http(s) URL with a host, e.g. https://eu1-m.ocp.ai/integrations",
                "config-endpoint",
            )
        ]
    if parts.username or parts.password:
        return [
            Problem(
                where, f"{key} must not hold credentials; give them in OCP_USERNAME and OCP_PASSWORD", "config-endpoint"
            )
        ]
    if port == 0:
        return [
            Problem(
                where, f"{key} {url!r} has port 0, which no server listens on; give the real port", "config-endpoint"
            )
        ]
    if port is None and parts.netloc.endswith(":"):  # "host:" - urlsplit takes it as no port, httpx refuses it
        return [
            Problem(
                where,
                f"{key} {url!r} has a ':' but no port after it; give the port, or drop the ':'",
                "config-endpoint",
            )
        ]
    if parts.scheme == "http" and not insecure_ok and not is_loopback(parts.hostname):
        return [
            Problem(
                where,
                f"{key} {url!r} uses http:// to {parts.hostname}, which is not this machine: the password and tokens "
                "would cross the network in cleartext; use https://, or set allow_insecure_http: true in this "
                "environment if that network is trusted",
                "config-insecure-http",
            )
        ]
    return []


def _proxy(spec: yamlsrc.YamlMap, problems: list[Problem]) -> str | None:
    """``proxy:`` expanded and checked; its password (if any) is never echoed in a message."""
    if "proxy" not in spec:
        return None
    where = spec.value_locations["proxy"]
    before = len(problems)
    url = _expand(spec["proxy"], where, problems).strip()
    if len(problems) > before or not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if parts else "the value"
        problems.append(
            Problem(
                where,
                f"proxy {shown!r} is not an http(s) URL with a host, e.g. http://proxy.example:3128",
                "config-proxy",
            )
        )
        return None
    if parts.password:  # masked in every output like the OCP credentials: as written, decoded, and as Basic sends it
        SECRETS.add(parts.password)
        SECRETS.add_basic(unquote(parts.username or ""), unquote(parts.password))
    return url


def load_config(path: str | Path = DEFAULT_CONFIG, *, cache: bool = True) -> Config:
    """Read and check numsync.yaml. Raises ConfigError listing every problem with file:line:col.

    ``cache``: give the environments a cache of parsed desired files — ``$NUMSYNC_CACHE_DIR``
    when set, else ``.numsync-cache/`` beside numsync.yaml; False: none (``--no-cache``).
    """
    path = Path(path)
    repository = repository_root(path.parent)
    target = escapes(path, repository)
    if target is not None:
        message = (
            f"{path} is a symbolic link to {target}, outside the repository {repository}, and was not read; "
            "numsync.yaml must be inside the repository: copy it in, or point the link inside it"
        )
        raise ConfigError([Problem(Location(str(path), 1, 1), message, "config-outside")])
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([encoding_problem(str(path), exc, "config-encoding")]) from None
    except IsADirectoryError:
        raise ConfigError(
            [
                Problem(
                    Location(str(path), 1, 1),
                    f"{path} is a folder; --config takes the numsync.yaml file",
                    "config-missing",
                )
            ]
        ) from None
    except FileNotFoundError:
        raise ConfigError(
            [
                Problem(
                    Location(str(path), 1, 1),
                    f"no config file {path}; create it (see README, 'Configuration') or pass --config",
                    "config-missing",
                )
            ]
        ) from None
    try:
        data, problems = yamlsrc.load(text, str(path))
    except YamlSyntaxError as exc:
        raise ConfigError([exc.problem]) from None
    if data is None:
        raise ConfigError([Problem(Location(str(path), 1, 1), "the config file is empty", "config-empty")])
    problems += schema_problems("config", data, str(path))
    if problems:
        raise ConfigError(problems)
    warnings: list[Problem] = []
    environments = {
        name: _environment(name, spec, path, problems, repository, warnings)
        for name, spec in data["environments"].items()
    }
    if problems:
        raise ConfigError(problems)  # the warnings come back once the errors are fixed
    if cache:
        folder = cache_folder(path)
        environments = {name: replace(env, cache_dir=folder) for name, env in environments.items()}
    return Config(path=path, environments=environments, warnings=tuple(warnings))


def cache_folder(config_path: Path) -> Path:
    """Where the cache of parsed desired files lives for ``config_path``: ``$NUMSYNC_CACHE_DIR``, else beside it."""
    given = os.environ.get(CACHE_ENV_VAR, "").strip()
    return Path(given).resolve() if given else config_path.resolve().parent / DEFAULT_CACHE_FOLDER


def _environment(
    name: str, spec: yamlsrc.YamlMap, path: Path, problems: list[Problem], repository: Path, warnings: list[Problem]
) -> Environment:
    region = Region(spec["region"]) if "region" in spec else None
    unresolved: list[Problem] = []
    insecure_ok = bool(spec.get("allow_insecure_http", False))
    base_url = _base_url(name, spec, region, problems, unresolved, insecure_ok)
    token_url = _token_url(spec, region, base_url, problems, unresolved, insecure_ok)
    warnings += _token_host_warnings(name, spec, region, base_url, token_url)
    env_ignored = frozenset(Field(name) for name in spec.get("ignore_fields") or [])
    groups = {}
    for gid, g in spec["groups"].items():
        g = g or {}
        ignored = env_ignored | frozenset(Field(name) for name in g.get("ignore_fields") or [])
        groups[gid] = GroupPolicy(
            gid,
            prune=bool(g.get("prune", False)),
            ignore_fields=ignored,
            max_deletes=g.get("max_deletes"),
            max_change_percent=g.get("max_change_percent"),
            **_retirement(gid, g, ignored, problems),
            countries=_countries(g, problems),
        )
    protected = set()
    items = spec.get("protected") or yamlsrc.YamlList()
    for i, raw in enumerate(items):
        try:
            protected.add(normalize_number(raw))
        except NumberFormatError as exc:
            problems.append(Problem(items.item_locations[i], f"protected: {exc}", "config-protected"))
    limits = dict(DEFAULT_LIMITS)
    limits.update({Operation(op): n for op, n in (spec.get("limits") or {}).items()})
    problems += _desired_link_problems(path.parent / spec["desired"], spec.value_locations["desired"], repository)
    return Environment(
        name=name,
        base_url=base_url,
        token_url=token_url,
        desired=(path.parent / spec["desired"]).resolve(),
        groups=groups,
        limits=limits,
        default_provider=spec.get("default_provider"),
        timeout=float(spec.get("timeout", 60.0)),
        protected=frozenset(protected),
        suppressions=_suppressions(spec, problems),
        freeze=_freeze(spec, problems),
        ca_bundle=str((path.parent / spec["ca_bundle"]).resolve()) if spec.get("ca_bundle") else None,
        safety=Safety(**(spec.get("safety") or {})),
        retry=RetryPolicy(**(spec.get("retry") or {})),
        settle=Settle(**(spec.get("settle") or {})),
        on_stale_review=StaleReview(spec.get("on_stale_review", StaleReview.REFUSE.value)),
        drift=DriftPolicy(**(spec.get("drift") or {})),
        apply_concurrency=int(spec.get("apply_concurrency", DEFAULT_APPLY_CONCURRENCY)),
        repository=repository,
        region=region,
        otp=OtpPolicy(**(spec.get("otp") or {}), **({"field": spec["otp_field"]} if "otp_field" in spec else {})),
        unresolved=tuple(unresolved),
        credentials=_credentials(spec, problems),
        allow_insecure_http=insecure_ok,
        proxy=_proxy(spec, problems),
    )


def _retirement(
    gid: str, g: yamlsrc.YamlMap | dict[str, Any], ignored: frozenset[Field], problems: list[Problem]
) -> dict[str, Any]:
    """``retire_after`` (days) and ``retire_mark`` of one group, checked against the rest of its policy."""
    if not isinstance(g, yamlsrc.YamlMap):  # an empty group ({} or null): nothing to retire
        return {}
    if "retire_after" not in g:
        if "retire_mark" in g:
            problems.append(
                Problem(
                    g.value_locations["retire_mark"],
                    f"group {gid!r}: retire_mark is only used with retire_after (e.g. retire_after: 14d)",
                    "config-retire",
                )
            )
        return {}
    where = g.value_locations["retire_after"]
    if not g.get("prune"):
        problems.append(
            Problem(
                where,
                f"group {gid!r}: retire_after retires numbers removed from desired before deleting them, "
                "so it needs prune: true on the group",
                "config-retire",
            )
        )
    found: dict[str, Any] = {"retire_after": int(str(g["retire_after"]).removesuffix("d"))}
    if "retire_mark" in g:
        raw = g["retire_mark"]
        field = Field(raw["field"])
        # as live values are read (line ends, whitespace): else the mark written never matches the mark read back,
        # and the number is marked afresh every day instead of being deleted
        found["retire_mark"] = RetireMark(field, normalize_value(field, raw["value"]) or raw["value"].strip())
    mark: RetireMark = found.get("retire_mark", RetireMark())
    if mark.field in ignored:
        problems.append(
            Problem(
                g.value_locations.get("retire_mark", where),
                f"group {gid!r}: the retire mark's field {mark.field.yaml_key} is in ignore_fields, so numsync could "
                "neither write the mark nor clear it when a number is restored; choose another field",
                "config-retire",
            )
        )
    return found


def _credentials(spec: yamlsrc.YamlMap, problems: list[Problem]) -> CredentialVariables:
    """``credentials:``: which variables hold this environment's credentials; one variable may not hold two of them."""
    given = spec.get("credentials")
    if not given:
        return CredentialVariables()
    variables = CredentialVariables(**given)
    names = [
        variables.username,
        variables.password,
        variables.totp_secret,
        variables.otp,
        variables.token,
    ]
    for key, name in given.items():
        if names.count(name) > 1:
            problems.append(
                Problem(
                    given.value_locations[key],
                    f"credentials: {key} reads {name}, which another credential reads too; give each its own variable",
                    "config-credentials",
                )
            )
    return variables


def _desired_link_problems(folder: Path, where: Location, repository: Path) -> list[Problem]:
    """A desired folder written inside the repository but linking out of it (a path written outside is the user's choice)."""
    written = Path(os.path.normpath(folder.parent.resolve() / folder.name))
    if not written.is_relative_to(repository) or escapes(written, repository) is None:
        return []
    return [
        Problem(
            where,
            f"desired: {written} is a symbolic link to {written.resolve()}, outside the repository {repository}; "
            "keep the desired files inside the repository, or write the folder's real path here",
            "config-outside",
        )
    ]


def _base_url(
    name: str,
    spec: yamlsrc.YamlMap,
    region: Region | None,
    problems: list[Problem],
    unresolved: list[Problem],
    insecure_ok: bool,
) -> str:
    """``base_url:`` when given, else the region's documented Integrations URL; "" after a problem.

    A ``${VAR}`` without a value stays in it as written (and is added to ``unresolved``)."""
    here = spec.location
    before = len(unresolved)
    if "base_url" in spec:
        base_url = _expand(spec["base_url"], spec.value_locations["base_url"], unresolved)
    elif region is not None and REGIONS[region].base_url is not None:
        base_url = REGIONS[region].base_url or ""
    elif region is not None:
        problems.append(
            Problem(
                spec.value_locations["region"],
                f"the vendor documents no Integrations API URL for region {region}; "
                f"add base_url: (e.g. https://<your {region} host>/integrations) to environment {name!r}",
                "config-endpoint",
            )
        )
        return ""
    else:
        regions = ", ".join(Region)
        problems.append(
            Problem(here, f"environment {name!r} needs a region ({regions}) or a base_url", "config-endpoint")
        )
        return ""
    base_url = base_url.rstrip("/")
    where = spec.value_locations.get("base_url", here)
    if base_url and len(unresolved) == before:  # an unset ${VAR} is reported once, not again as a bad URL
        problems += _url_problems("base_url", base_url, where, insecure_ok=insecure_ok)
    return base_url


def _token_url(
    spec: yamlsrc.YamlMap,
    region: Region | None,
    base_url: str,
    problems: list[Problem],
    unresolved: list[Problem],
    insecure_ok: bool,
) -> str:
    """``token_url:`` when given; else the realm (``realm:``, the region's, or master) on the region's token
    host, or on the host of ``base_url`` when no region is named. A ``${VAR}`` without a value stays as written."""
    if "token_url" in spec:
        where = spec.value_locations["token_url"]
        if "realm" in spec:
            problems.append(
                Problem(
                    spec.value_locations["realm"],
                    "realm: is ignored when token_url: is given; remove one of them",
                    "config-endpoint",
                )
            )
        before = len(unresolved)
        token_url = _expand(spec["token_url"], where, unresolved)
        if token_url and len(unresolved) == before:
            problems += _url_problems("token_url", token_url, where, insecure_ok=insecure_ok)
        return token_url
    if region is not None:
        endpoints = REGIONS[region]
        realm = spec.get("realm", endpoints.realm)
        # The region's token host is used for its own API host (or where the vendor documents none);
        # a base_url elsewhere (a proxy, the local emulator) logs in on that host.
        if "base_url" not in spec or endpoints.base_url is None or _host(base_url) == host_of(endpoints.base_url):
            return token_url_on(endpoints.token_host, realm)
        return token_url_on(_host(base_url), realm)
    if not base_url:
        return ""
    return token_url_on(_host(base_url), spec.get("realm", DEFAULT_REALM))


_HOST_TEXT = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?[^/]*")


def _host(url: str) -> str:
    """``scheme://netloc`` of ``url``; of a URL that still holds a ``${VAR}``, the text that stands for it
    (``${OCP_EMULATOR_URL}/integrations`` → ``${OCP_EMULATOR_URL}``), so the token endpoint shows the same variable."""
    if _VAR.search(url):
        match = _HOST_TEXT.match(url)
        return match.group(0) if match else url
    return host_of(url)


def _countries(group: Mapping[str, Any], problems: list[Problem]) -> frozenset[str]:
    """A group's ``countries:``; a code phonenumbers does not know as a region is a problem at its place."""
    items = group.get("countries") or yamlsrc.YamlList()
    for i, code in enumerate(items):
        if code not in phonenumbers.SUPPORTED_REGIONS:
            hint = " (the United Kingdom is GB)" if code == "UK" else ""
            problems.append(
                Problem(
                    items.item_locations[i],
                    f"countries: {code!r} is not a region code phonenumbers knows{hint}; use ISO 3166 codes like GB, IE, US",
                    "config-countries",
                )
            )
    return frozenset(items)


def _token_host_warnings(
    name: str, spec: yamlsrc.YamlMap, region: Region | None, base_url: str, token_url: str
) -> list[Problem]:
    """A token endpoint on another host than the API, unless the vendor documents that pair (US2, CA1, FRANKFURT).

    Only a ``token_url:`` written out can do that (a derived one is on the API host or the region's own).
    """
    if "token_url" not in spec or not base_url or not token_url:
        return []
    api_host, token_host = urlsplit(base_url).hostname or "", urlsplit(token_url).hostname or ""
    if api_host == token_host or documented_token_host(api_host, token_host, region):
        return []
    return [
        Problem(
            spec.value_locations["token_url"],
            f"environment {name!r} logs in on {token_host} but calls the API on {api_host}: the password and "
            "two-factor code go to that host; the vendor documents no such pair. Check token_url is meant",
            "config-token-host",
            severity="warning",
        )
    ]


def _suppressions(spec: yamlsrc.YamlMap, problems: list[Problem]) -> tuple[Suppression, ...]:
    items = spec.get("suppressions") or yamlsrc.YamlList()
    result = []
    for i, raw in enumerate(items):
        try:
            result.append(
                Suppression(
                    normalize_number(raw["number"]), raw["reason"], dt.date.fromisoformat(raw["until"]), raw.get("kind")
                )
            )
        except (NumberFormatError, ValueError) as exc:
            problems.append(Problem(items.item_locations[i], f"suppression: {exc}", "config-suppression"))
    return tuple(result)


def _freeze(spec: yamlsrc.YamlMap, problems: list[Problem]) -> Freeze:
    if "freeze" not in spec:
        return Freeze()
    try:
        return parse_freeze(spec["freeze"])
    except FreezeError as exc:
        block = spec.value_locations["freeze"]
        problems.extend(
            Problem(yamlsrc.locate(spec["freeze"], path, block), f"freeze: {message}", "config-freeze")
            for path, message in exc.problems
        )
        return Freeze()
