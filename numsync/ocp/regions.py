"""OCP regions and their endpoints (vendor documentation: "API Authentication")."""

from __future__ import annotations

from urllib.parse import urlsplit

#: Integrations API base URL per OCP region (vendor documentation).
REGIONS: dict[str, str] = {
    "EU1": "https://eu1-m.ocp.ai/integrations",
    "US1": "https://us1-m.ocp.ai/integrations",
    "US2": "https://us2-m.ocp.ai/integrations",
    "US1W": "https://us1-w-m.ocp.ai/integrations",
}

#: Path of the Keycloak token endpoint on the region's host (vendor documentation).
TOKEN_PATH = "/auth/realms/master/protocol/openid-connect/token"


def token_url_for(base_url: str) -> str:
    """The token endpoint on the host of ``base_url`` (``https://h/integrations`` → ``https://h/auth/…/token``)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{TOKEN_PATH}"
