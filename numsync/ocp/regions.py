"""OCP regions and their endpoints (vendor documentation: "API Authentication").

Each region has an Integrations API base URL (None where the vendor documents none) and a
Keycloak token endpoint, given as a host and a realm: the "Swarm" regions use realm
``master``, the "K8s" regions (CA1, FRANKFURT) realm ``ocp``; US2's token endpoint is on its
own ``auth.`` host, not on the API host.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit

#: The realm a token endpoint uses when nothing says otherwise (the Swarm regions' realm).
DEFAULT_REALM = "master"


class Region(enum.StrEnum):
    """The OCP regions the vendor documents, by the name numsync.yaml uses."""

    EU1 = "EU1"
    US1 = "US1"
    US2 = "US2"
    US1W = "US1W"
    CA1 = "CA1"
    FRANKFURT = "FRANKFURT"


@dataclass(frozen=True, slots=True)
class RegionEndpoints:
    """Where one region's APIs are: ``base_url`` is None where the vendor documents no Integrations URL."""

    base_url: str | None
    token_host: str
    realm: str

    @property
    def token_url(self) -> str:
        return token_url_on(self.token_host, self.realm)


REGIONS: dict[Region, RegionEndpoints] = {
    Region.EU1: RegionEndpoints("https://eu1-m.ocp.ai/integrations", "https://eu1-m.ocp.ai", "master"),
    Region.US1: RegionEndpoints("https://us1-m.ocp.ai/integrations", "https://us1-m.ocp.ai", "master"),
    Region.US2: RegionEndpoints("https://us2-m.ocp.ai/integrations", "https://auth.us2-m.ocp.ai", "master"),
    Region.US1W: RegionEndpoints("https://us1-w-m.ocp.ai/integrations", "https://us1-w-m.ocp.ai", "master"),
    Region.CA1: RegionEndpoints(None, "https://pub.ca1.ocp.ai", "ocp"),
    Region.FRANKFURT: RegionEndpoints(None, "https://pub.frankfurt.ocp.ai", "ocp"),
}


def token_url_on(host: str, realm: str = DEFAULT_REALM) -> str:
    """The Keycloak token endpoint of ``realm`` on ``host`` (``scheme://netloc``, no path)."""
    return f"{host}/auth/realms/{realm}/protocol/openid-connect/token"


def host_of(url: str) -> str:
    """``scheme://netloc`` of ``url`` (``https://h/integrations`` → ``https://h``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def token_url_for(base_url: str, realm: str = DEFAULT_REALM) -> str:
    """The token endpoint on the host of ``base_url`` (``https://h/integrations`` → ``https://h/auth/…/token``)."""
    return token_url_on(host_of(base_url), realm)


def documented_token_host(api_host: str, token_host: str, region: Region | None = None) -> bool:
    """Whether the vendor documents logging in on ``token_host`` for the API on ``api_host`` (hostnames).

    The documented pairs: each region's API host with its token host (US2: ``auth.us2-m.ocp.ai``), and
    for a region with no documented API URL (CA1, FRANKFURT) its token host with any API host.
    """
    for name, endpoints in REGIONS.items():
        documented = urlsplit(endpoints.token_host).hostname
        if token_host != documented:
            continue
        if endpoints.base_url is None and region == name:
            return True
        if endpoints.base_url is not None and urlsplit(endpoints.base_url).hostname == api_host:
            return True
    return False
