"""Transport: http:// only to loopback unless allowed, token hosts the vendor does not pair, and proxies
(numsync.yaml's proxy:, HTTPS_PROXY/HTTP_PROXY/NO_PROXY) over real HTTP through a forwarding proxy."""

from __future__ import annotations

import http.server
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_workspace import CREDENTIALS, live_records, run, workspace, write_desired

from numsync.config import ConfigError, load_config
from numsync.emulator.process import EmulatorProcess
from numsync.errors import InputError
from numsync.ocp.transport import ProxyRouting, bypassed, environment_proxies
from numsync.redaction import SECRETS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "numsync.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    (tmp_path / "d").mkdir(exist_ok=True)
    return path


def env_lines(*lines: str) -> str:
    return "environments:\n  prod:\n    desired: d\n    groups: {g: {}}\n" + "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize("key", ["base_url", "token_url"])
def test_a_remote_http_endpoint_is_refused_where_it_is_written(tmp_path: Path, key: str) -> None:
    url = "http://ocp.example.com/integrations" if key == "base_url" else "http://sso.example.com/token"
    lines = [f"{key}: {url}"] + ([] if key == "base_url" else ["base_url: https://ocp.example.com/integrations"])
    path = write(tmp_path, env_lines(*lines))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert problem.check == "config-insecure-http"
    assert (problem.location.line, problem.location.column) == (5, 4 + len(key) + 2 + 1)  # 1-based, after "    key: "
    assert f"{key} {url!r} uses http://" in problem.message
    assert "use https://, or set allow_insecure_http: true" in problem.message


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8080", "127.3.4.5", "localhost:9", "LOCALHOST", "[::1]:8080"], ids=lambda h: h
)
def test_http_to_loopback_needs_no_permission(tmp_path: Path, host: str) -> None:
    env = load_config(write(tmp_path, env_lines(f"base_url: http://{host}/integrations"))).environment("prod")
    assert env.base_url == f"http://{host}/integrations" and env.token_url.startswith(f"http://{host}/auth/")


def test_allow_insecure_http_lets_a_remote_http_endpoint_through(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        env_lines(
            "base_url: http://ocp.lab.internal/integrations",
            "token_url: http://ocp.lab.internal/auth/realms/master/protocol/openid-connect/token",
            "allow_insecure_http: true",
        ),
    )
    env = load_config(path).environment("prod")
    assert env.allow_insecure_http and env.base_url == "http://ocp.lab.internal/integrations"
    # "127.0.0.1.example.com" is a name, not the loopback address
    with pytest.raises(ConfigError, match="uses http://"):
        load_config(write(tmp_path, env_lines("base_url: http://127.0.0.1.example.com/integrations")))


def test_a_token_host_the_vendor_does_not_pair_with_the_api_host_is_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        env_lines(
            "base_url: https://eu1-m.ocp.ai/integrations",
            "token_url: https://sso.elsewhere.example/auth/realms/master/protocol/openid-connect/token",
        ),
    )
    (tmp_path / "d" / "g.yaml").write_text('group_id: g\nnumbers:\n  "+12015550123": {}\n')
    config = load_config(path)
    [warning] = config.warnings
    assert warning.severity == "warning" and warning.check == "config-token-host"
    assert (warning.location.line, warning.location.column) == (6, 16)
    assert "logs in on sso.elsewhere.example but calls the API on eu1-m.ocp.ai" in warning.message
    # validate reports it, and passes: it is a warning
    result = run(path, "validate", env={})
    assert result.exit_code == 0, result.output
    assert "numsync.yaml:6:16: warning: environment 'prod' logs in on sso.elsewhere.example" in result.output
    # every command that reads the config says it (here one that needs no network)
    shown = run(path, "environments", env={})
    assert "warning: environment 'prod' logs in on sso.elsewhere.example" in shown.stderr


@pytest.mark.parametrize(
    "lines",
    [
        # US2: the vendor's token endpoint is on auth.us2-m.ocp.ai
        ["base_url: https://us2-m.ocp.ai/integrations", "token_url: https://auth.us2-m.ocp.ai/auth/realms/master/t"],
        # CA1 documents no API URL, only the token host: any API host pairs with it
        ["region: CA1", "base_url: https://ca1.example/integrations", "token_url: https://pub.ca1.ocp.ai/auth/x"],
        # the same host
        ["base_url: https://ocp.example/integrations", "token_url: https://ocp.example/auth/x"],
        # derived, never written out: on the region's own token host
        ["region: US2"],
    ],
    ids=["us2-pair", "ca1-token-host", "same-host", "derived"],
)
def test_documented_token_hosts_give_no_warning(tmp_path: Path, lines: list[str]) -> None:
    assert load_config(write(tmp_path, env_lines(*lines))).warnings == ()


def test_the_documented_pair_is_only_the_region_s_own(tmp_path: Path) -> None:
    # pub.ca1.ocp.ai is CA1's token host; for an environment that names no region (or another) it is not documented
    path = write(
        tmp_path, env_lines("base_url: https://ocp.example/integrations", "token_url: https://pub.ca1.ocp.ai/x")
    )
    assert [w.check for w in load_config(path).warnings] == ["config-token-host"]


def test_a_bad_proxy_is_refused_without_showing_its_password(tmp_path: Path) -> None:
    path = write(tmp_path, env_lines("base_url: https://ocp.example/integrations", "proxy: ftp://u:s3cr3t-pw@proxy:21"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert problem.check == "config-proxy" and problem.location.line == 6
    assert "s3cr3t-pw" not in str(info.value)
    assert "ftp://proxy:21" in problem.message


def test_a_proxy_password_is_a_secret_of_the_run(tmp_path: Path) -> None:
    path = write(
        tmp_path, env_lines("base_url: https://ocp.example/integrations", "proxy: http://me:p%40ss-w0rd@proxy:3128")
    )
    env = load_config(path).environment("prod")
    assert env.proxy == "http://me:p%40ss-w0rd@proxy:3128"
    assert "p%40ss-w0rd" not in repr(env)
    assert "p%40ss-w0rd" not in SECRETS.redact("via http://me:p%40ss-w0rd@proxy:3128")
    assert "p@ss-w0rd" not in SECRETS.redact("decoded p@ss-w0rd")


# -- routing (no network) ------------------------------------------------------------------------------------


def test_the_environment_chooses_a_proxy_per_scheme_and_no_proxy_bypasses() -> None:
    environ = {
        "HTTPS_PROXY": "http://upper:1",
        "https_proxy": "http://lower:2",  # the lower-case name wins, as in curl and urllib
        "HTTP_PROXY": "http://plain:3",
        "NO_PROXY": "internal.example, .corp.example,10.0.0.0/8,[::1],only-port.example:8443",
    }
    assert environment_proxies(environ) == {
        "https": "http://lower:2",
        "http": "http://plain:3",
        "no": environ["NO_PROXY"],
    }
    routing = ProxyRouting(environ=environ)
    assert routing.proxy_for(httpx.URL("https://eu1-m.ocp.ai/x")) == "http://lower:2"
    assert routing.proxy_for(httpx.URL("http://eu1-m.ocp.ai/x")) == "http://plain:3"
    for direct in (
        "https://internal.example/x",
        "https://api.internal.example/x",
        "https://a.corp.example/x",
        "https://10.1.2.3/x",
        "http://[::1]:8080/x",
        "https://only-port.example:8443/x",
    ):
        assert routing.proxy_for(httpx.URL(direct)) is None, direct
    assert routing.proxy_for(httpx.URL("https://only-port.example/x")) == "http://lower:2"
    assert routing.proxy_for(httpx.URL("https://notinternal.example/x")) == "http://lower:2"
    assert bypassed("anything", 443, "*")
    assert not bypassed("anything", 443, "")


def test_the_configured_proxy_wins_over_the_environment() -> None:
    routing = ProxyRouting(proxy="http://configured:1", environ={"HTTPS_PROXY": "http://env:2", "NO_PROXY": "*"})
    assert routing.proxy_for(httpx.URL("https://eu1-m.ocp.ai/x")) == "http://configured:1"
    assert (
        ProxyRouting(trust_env=False, environ={"HTTPS_PROXY": "http://env:2"}).proxy_for(httpx.URL("https://h/"))
        is None
    )


# -- over real HTTP: a forwarding proxy in front of the emulator -----------------------------------------------


class ForwardingProxy:
    """A plain HTTP forward proxy on 127.0.0.1 (absolute-URI requests), forwarding only to loopback; counts what it carries."""

    HOP_BY_HOP = frozenset(
        {"proxy-authorization", "proxy-connection", "connection", "keep-alive", "transfer-encoding", "te"}
    )

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.proxy_authorization: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                target = httpx.URL(self.path)
                if target.host != "127.0.0.1":
                    self.send_error(403)
                    return
                owner.requests.append(f"{self.command} {target.path}")
                owner.proxy_authorization.append(self.headers.get("Proxy-Authorization", ""))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in owner.HOP_BY_HOP}
                with httpx.Client(trust_env=False) as client:
                    answer = client.request(self.command, target, headers=headers, content=body)
                self.send_response(answer.status_code)
                for k, v in answer.headers.items():
                    if k.lower() not in owner.HOP_BY_HOP | {"content-length", "content-encoding"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ForwardingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy() -> Iterator[ForwardingProxy]:
    with ForwardingProxy() as p:
        yield p


def _no_ambient_proxy() -> dict[str, str | None]:
    """The CLI's environment without the machine's own proxy settings (CliRunner: None removes a variable)."""
    names = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"]
    return {**{n: None for n in names}, **{n.lower(): None for n in names}}


def _planned(tmp_path: Path, emulator: EmulatorProcess, *extra: str) -> Path:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False}, *extra)
    write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "uk-care"], ["uk-care"])
    return config


def test_a_request_goes_through_the_proxy_set_in_the_environment(
    tmp_path: Path, emulator: EmulatorProcess, proxy: ForwardingProxy
) -> None:
    config = _planned(tmp_path, emulator)
    environ = {**CREDENTIALS, **_no_ambient_proxy(), "HTTP_PROXY": proxy.url}

    result = run(config, "plan", "--detailed-exitcode", env=environ)  # type: ignore[arg-type]

    assert result.exit_code == 0 and "No changes" in result.output, result.output
    assert "POST /integrations/api/numbers/csv" in proxy.requests  # the export
    assert any(r.startswith("POST /auth/realms/") for r in proxy.requests)  # and the login


def test_no_proxy_sends_the_request_directly(tmp_path: Path, emulator: EmulatorProcess, proxy: ForwardingProxy) -> None:
    config = _planned(tmp_path, emulator)
    environ = {**CREDENTIALS, **_no_ambient_proxy(), "HTTP_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"}

    result = run(config, "plan", "--detailed-exitcode", env=environ)  # type: ignore[arg-type]

    assert result.exit_code == 0 and "No changes" in result.output, result.output
    assert proxy.requests == []


def test_the_proxy_setting_wins_and_its_password_is_never_printed(
    tmp_path: Path, emulator: EmulatorProcess, proxy: ForwardingProxy
) -> None:
    with_login = proxy.url.replace("http://", "http://ops:Pr0xy-Pa55@")
    config = _planned(tmp_path, emulator, f"proxy: {with_login}")
    # the environment says "direct" and names a dead proxy: the setting wins over both
    environ = {**CREDENTIALS, **_no_ambient_proxy(), "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}

    result = run(config, "plan", "--detailed-exitcode", env=environ)  # type: ignore[arg-type]

    assert result.exit_code == 0, result.output
    assert "POST /integrations/api/numbers/csv" in proxy.requests
    assert set(proxy.proxy_authorization) == {"Basic b3BzOlByMHh5LVBhNTU="}  # ops:Pr0xy-Pa55, as Basic sends it

    # a proxy that cannot be reached: the error names it without the password
    dead = workspace(tmp_path, emulator.base_url, {"uk-care": False}, "proxy: http://ops:Pr0xy-Pa55@127.0.0.1:9")
    failed = run(dead, "plan", env={**CREDENTIALS, **_no_ambient_proxy()})  # type: ignore[arg-type]
    assert failed.exit_code == 1
    assert "Pr0xy-Pa55" not in failed.output and "b3BzOlByMHh5LVBhNTU=" not in failed.output
    assert "through proxy http://127.0.0.1:9" in failed.output  # not "connection refused" as if OCP were down
    # a proxy whose login is a token alone (token@host): the token is no password, and is never shown either
    token_only = workspace(tmp_path, emulator.base_url, {"uk-care": False}, "proxy: http://S3cr3t-T0ken@127.0.0.1:9")
    failed = run(token_only, "plan", env={**CREDENTIALS, **_no_ambient_proxy()})  # type: ignore[arg-type]
    assert failed.exit_code == 1 and "through proxy http://127.0.0.1:9" in failed.output
    assert "S3cr3t-T0ken" not in failed.output


def test_init_refuses_a_remote_http_base_url_before_any_login(tmp_path: Path) -> None:
    config = tmp_path / "numsync.yaml"
    result = run(
        config, "init", "--region", "EU1", "--base-url", "http://ocp.example.com/integrations", env=CREDENTIALS
    )
    assert result.exit_code == 1
    assert "uses http:// to ocp.example.com, which is not this machine" in result.output
    assert not config.exists()


def test_a_proxy_without_a_scheme_is_http_and_socks_is_refused_in_words() -> None:
    assert ProxyRouting(environ={"HTTPS_PROXY": "proxy.corp:3128"}).proxy_for(httpx.URL("https://h/")) == (
        "http://proxy.corp:3128"
    )
    with pytest.raises(InputError) as info:
        ProxyRouting(environ={"ALL_PROXY": "socks5://me:s3cret@proxy:1080"})
    assert "ALL_PROXY (socks5://proxy:1080) is not an http:// or https:// proxy" in str(info.value)
    assert "s3cret" not in str(info.value)
