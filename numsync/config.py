"""numsync.yaml: the environments numsync manages, their endpoints, limits and policy."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import yamlsrc
from .freeze import Freeze, FreezeError, parse_freeze
from .model import DEFAULT_LIMITS, Field, NumberFormatError, Operation, normalize_number
from .ocp.retry import RetryPolicy
from .schemacheck import schema_problems
from .yamlsrc import Location, Problem

#: Integrations API base URL per OCP region (vendor documentation).
REGIONS: dict[str, str] = {
    "EU1": "https://eu1-m.ocp.ai/integrations",
    "US1": "https://us1-m.ocp.ai/integrations",
    "US2": "https://us2-m.ocp.ai/integrations",
    "US1W": "https://us1-w-m.ocp.ai/integrations",
}

#: Path of the Keycloak token endpoint on the region's host (vendor documentation).
TOKEN_PATH = "/auth/realms/master/protocol/openid-connect/token"

DEFAULT_CONFIG = "numsync.yaml"


class ConfigError(ValueError):
    """numsync.yaml is missing or wrong; ``problems`` say where."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """Policy for one managed GROUP_ID.

    ``prune``: delete live numbers no desired file lists; ``ignore_fields``: fields neither
    diffed nor written (the environment's and the group's own); ``max_deletes`` and
    ``max_change_percent``: this group's thresholds, None to use the environment's.
    """

    group_id: str
    prune: bool = False
    ignore_fields: frozenset[Field] = frozenset()
    max_deletes: int | None = None
    max_change_percent: float | None = None


@dataclass(frozen=True, slots=True)
class Safety:
    """Thresholds that stop an apply; see the ``safety`` section of numsync.yaml.

    ``max_deletes``: numbers deleted per apply; ``max_change_percent``: percent of live
    numbers in scope changed or deleted, checked when at least ``min_size`` are in scope;
    ``max_shrink_percent``: how much smaller than desired the export may be before numsync
    distrusts it.
    """

    max_deletes: int = 25
    max_change_percent: float = 25.0
    min_size: int = 50
    max_shrink_percent: float = 50.0


@dataclass(frozen=True, slots=True)
class Suppression:
    """Drift of ``number`` (of ``kind``, or any kind when None) accepted for ``reason`` until the end of ``until`` (UTC)."""

    number: str
    reason: str
    until: dt.date
    kind: str | None = None

    def matches(self, number: str, kind: str) -> bool:
        """Whether this suppression covers drift ``kind`` of ``number``."""
        return number == self.number and (self.kind is None or self.kind == kind)

    def to_json(self) -> dict[str, str | None]:
        return {"number": self.number, "kind": self.kind, "reason": self.reason, "until": self.until.isoformat()}


@dataclass(frozen=True, slots=True)
class Environment:
    """One OCP tenant as configured.

    ``base_url``: Integrations API base (``…/integrations``); ``token_url``: Keycloak token
    endpoint; ``desired``: folder of desired YAML; ``groups``: managed GROUP_IDs and their
    policy; ``limits``: rows per file by operation; ``timeout``: seconds per API call;
    ``retry``: attempts, backoff and pace of every client for this environment (``retry:``).
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


@dataclass(frozen=True, slots=True)
class Config:
    """The loaded numsync.yaml: its path and environments by name."""

    path: Path
    environments: dict[str, Environment]

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


def _expand(text: str, location: Location, problems: list[Problem]) -> str:
    def replace(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = os.environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        problems.append(
            Problem(
                location,
                f"environment variable {name} is not set (used in {text!r}); set it or give a default with ${{{name}:-…}}",
                "config-var",
            )
        )
        return ""

    return _VAR.sub(replace, text)


def _url_problems(key: str, url: str, where: Location) -> list[Problem]:
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
    del port
    return []


def token_url_for(base_url: str) -> str:
    """The token endpoint on the host of ``base_url`` (``https://h/integrations`` → ``https://h/auth/…/token``)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{TOKEN_PATH}"


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Read and check numsync.yaml. Raises ConfigError listing every problem with file:line:col."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                Problem(
                    Location(str(path), 1, 1), f"not UTF-8 text (byte {exc.start}); save it as UTF-8", "config-encoding"
                )
            ]
        ) from None
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
    except yamlsrc.YamlSyntaxError as exc:
        raise ConfigError([exc.problem]) from None
    if data is None:
        raise ConfigError([Problem(Location(str(path), 1, 1), "the config file is empty", "config-empty")])
    problems += schema_problems("config", data, str(path))
    if problems:
        raise ConfigError(problems)
    environments = {name: _environment(name, spec, path, problems) for name, spec in data["environments"].items()}
    if problems:
        raise ConfigError(problems)
    return Config(path=path, environments=environments)


def _environment(name: str, spec: yamlsrc.YamlMap, path: Path, problems: list[Problem]) -> Environment:
    here = spec.location
    before = len(problems)
    if "base_url" in spec:
        base_url = _expand(spec["base_url"], spec.value_locations["base_url"], problems)
    elif "region" in spec:
        base_url = REGIONS[spec["region"]]
    else:
        problems.append(
            Problem(here, f"environment {name!r} needs a region (EU1, US1, US2, US1W) or a base_url", "config-endpoint")
        )
        base_url = ""
    base_url = base_url.rstrip("/")
    where = spec.value_locations.get("base_url", here)
    if base_url and len(problems) == before:  # an unset ${VAR} is reported once, not again as a bad URL
        problems += _url_problems("base_url", base_url, where)
    token_url = (
        _expand(spec["token_url"], spec.value_locations["token_url"], problems)
        if "token_url" in spec
        else token_url_for(base_url)
    )
    if "token_url" in spec and token_url:
        problems += _url_problems("token_url", token_url, spec.value_locations["token_url"])
    env_ignored = frozenset(Field(name.upper()) for name in spec.get("ignore_fields") or [])
    groups = {}
    for gid, g in spec["groups"].items():
        g = g or {}
        groups[gid] = GroupPolicy(
            gid,
            prune=bool(g.get("prune", False)),
            ignore_fields=env_ignored | frozenset(Field(name.upper()) for name in g.get("ignore_fields") or []),
            max_deletes=g.get("max_deletes"),
            max_change_percent=g.get("max_change_percent"),
        )
    protected = set()
    items = spec.get("protected") or []
    for i, raw in enumerate(items):
        try:
            protected.add(normalize_number(raw))
        except NumberFormatError as exc:
            problems.append(Problem(items.item_locations[i], f"protected: {exc}", "config-protected"))
    limits = dict(DEFAULT_LIMITS)
    limits.update({Operation(op): n for op, n in (spec.get("limits") or {}).items()})
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
    )


def _suppressions(spec: yamlsrc.YamlMap, problems: list[Problem]) -> tuple[Suppression, ...]:
    items = spec.get("suppressions") or []
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
