"""What ``numsync environments`` shows: each configured environment's resolved endpoints.

Read from numsync.yaml alone: no credentials, no network, so it answers "where would numsync
log in and upload?" before any secret is set.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from numsync.config import Config


@dataclass(frozen=True, slots=True)
class EnvironmentEndpoints:
    """One environment's name, the region it names (None without one) and the endpoints numsync uses.

    ``warnings``: ``path:line:col: message`` for each ``${VAR}`` in an endpoint that has no value here;
    the endpoint then shows the variable as written, and commands that reach OCP refuse to run."""

    name: str
    region: str | None
    base_url: str
    token_url: str
    warnings: tuple[str, ...] = field(default=())


def environment_endpoints(config: Config, name: str | None = None) -> list[EnvironmentEndpoints]:
    """Every environment of ``config`` in numsync.yaml order, or only ``name`` (ConfigError when there is none)."""
    if name is not None and name != "all":
        config = Config(config.path, {name: config.environment(name)})
    return [
        EnvironmentEndpoints(
            name=env.name,
            region=env.region.value if env.region is not None else None,
            base_url=env.base_url,
            token_url=env.token_url,
            warnings=tuple(str(problem) for problem in env.unresolved),
        )
        for env in config.environments.values()
    ]


def render_json(endpoints: list[EnvironmentEndpoints]) -> str:
    """A JSON list of ``{name, region, base_url, token_url, warnings}`` objects (numsync/schema/environments.schema.json)."""
    return json.dumps([asdict(e) | {"warnings": list(e.warnings)} for e in endpoints], indent=2)


def render_text(endpoints: list[EnvironmentEndpoints]) -> str:
    """One block per environment, aligned for a terminal."""
    blocks = []
    for e in endpoints:
        blocks.append(
            "\n".join(
                [
                    f"{e.name}" + (f" (region {e.region})" if e.region else " (no region)"),
                    f"  base_url:  {e.base_url}",
                    f"  token_url: {e.token_url}",
                    *(f"  warning: {w}" for w in e.warnings),
                ]
            )
        )
    return "\n\n".join(blocks)
