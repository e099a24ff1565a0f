"""Which way each request to OCP leaves: directly, or through an HTTP(S) proxy.

An environment's ``proxy:`` (numsync.yaml) carries every request. Without one, the process
environment decides as curl and Python's urllib do: ``HTTPS_PROXY`` for https:// URLs,
``HTTP_PROXY`` for http://, ``ALL_PROXY`` for either (the lower-case names win over the
upper-case ones), and ``NO_PROXY`` lists what is reached directly: ``*``, hosts (each covers
its subdomains; a leading ``.`` or ``*.`` is the same), ``host:port``, IP addresses and
networks (``10.0.0.0/8``). The configured ``proxy:`` carries every request, NO_PROXY or not. httpx reads these itself only for its own default transport; numsync
wraps the transport in its retry layer, so the choice is made here, per request.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import httpx

from numsync.errors import InputError
from numsync.redaction import SECRETS


def environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``{scheme: proxy URL}`` and ``"no"``: the ``*_PROXY`` variables of ``environ``, lower-case names winning."""
    proxies: dict[str, str] = {}
    for upper_first in (True, False):
        for name, value in environ.items():
            if value.strip() and name.lower().endswith("_proxy") and (name.isupper() == upper_first):
                proxies[name[:-6].lower()] = value.strip()
    return proxies


def checked_proxy(name: str, url: str) -> str:
    """``url`` as a proxy httpx can use: ``host:port`` means ``http://host:port`` (as curl reads it).

    Raises InputError (naming the variable, never the password) for another scheme: SOCKS needs a
    package numsync does not install.
    """
    if "://" not in url:
        url = "http://" + url
    scheme = url.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        shown = url.partition("://")[0] + "://" + url.partition("://")[2].rpartition("@")[2]
        variable = f"{name.upper()}_PROXY"
        raise InputError(
            f"{variable} ({shown}) is not an http:// or https:// proxy; numsync speaks HTTP to proxies (no SOCKS): "
            f"set {variable} to an HTTP proxy, list the OCP hosts in NO_PROXY, or give the environment a proxy: "
            "in numsync.yaml (which wins)"
        )
    return url


def register_proxy_secret(url: str) -> None:
    """Mask the password of a proxy URL (``user:password@``) in every output of this process."""
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return
    if password:
        SECRETS.add(password)
        SECRETS.add_basic(unquote(username or ""), unquote(password))


def bypassed(host: str, port: int, no_proxy: str | None) -> bool:
    """Whether ``NO_PROXY`` sends ``host:port`` directly: ``*``; a host or domain (``example.com`` and
    ``.example.com`` both cover its subdomains), optionally with ``:port``; an IP address or network (``10.0.0.0/8``)."""
    if not no_proxy:
        return False
    host = host.strip("[]").lower().rstrip(".")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):  # host:port, [v6]:port
            name, _, given = entry.rpartition(":")
            entry_port = int(given) if given.isdigit() else None
        name = name.strip("[]").lstrip("*").lstrip(".").rstrip(".")
        if not name or (entry_port is not None and entry_port != port):
            continue
        if host == name or host.endswith("." + name) or _in_network(host, name):
            return True
    return False


def _in_network(host: str, entry: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


class ProxyRouting(httpx.BaseTransport):
    """Sends each request through the configured proxy, else the environment's for its scheme, else directly.

    ``proxy``: numsync.yaml's ``proxy:`` (wins over the environment); ``environ``: the process
    environment, read once here (None: ``os.environ``); ``trust_env`` False: only ``proxy`` counts.
    """

    def __init__(
        self,
        *,
        verify: bool | str = True,
        proxy: str | None = None,
        environ: Mapping[str, str] | None = None,
        trust_env: bool = True,
    ) -> None:
        self._verify = verify
        self._direct = httpx.HTTPTransport(verify=verify)
        self._through: dict[str, httpx.HTTPTransport] = {}
        if proxy:
            self._proxies = {"all": proxy}
        elif trust_env:
            self._proxies = environment_proxies(os.environ if environ is None else environ)
        else:
            self._proxies = {}
        for name, url in list(self._proxies.items()):
            if name == "no":
                continue
            register_proxy_secret(url)
            self._proxies[name] = checked_proxy(name, url)

    def proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy URL a request to ``url`` goes through, or None (directly)."""
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy or bypassed(url.host, url.port or (443 if url.scheme == "https" else 80), self._proxies.get("no")):
            return None
        return proxy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.proxy_for(request.url)
        if proxy is None:
            return self._direct.handle_request(request)
        transport = self._through.get(proxy)
        if transport is None:
            transport = self._through[proxy] = httpx.HTTPTransport(verify=self._verify, proxy=proxy)
        try:
            return transport.handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # the same kind of error (the retry layer still sees "nothing was sent"), naming the proxy it went to:
            # "connection refused" alone reads as OCP being down
            raise type(exc)(f"through proxy {_without_userinfo(proxy)}: {exc}", request=request) from exc

    def close(self) -> None:
        self._direct.close()
        for transport in self._through.values():
            transport.close()


def _without_userinfo(proxy: str) -> str:
    """``proxy`` as it may be shown: without its ``user:password@`` part, nor a lone ``token@`` (a user name
    that is a secret, which no redactor knows of)."""
    url = httpx.URL(proxy)
    return str(url.copy_with(userinfo=b"")) if url.userinfo else proxy
