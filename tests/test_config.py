"""numsync.yaml: regions and endpoints, ${VAR} expansion, limits, and every problem at file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from numsync.config import Config, ConfigError, Environment, load_config
from numsync.core import yamlsrc
from numsync.core.policy import GroupPolicy
from numsync.ocp.regions import Region
from numsync.ocp.vocabulary import Operation

TOKEN_PATH = "/auth/realms/master/protocol/openid-connect/token"

# The vendor's table ("API Authentication": hosts and authentication endpoints), spelled out so a typo in
# numsync.ocp.regions fails here. None: the vendor documents no Integrations URL for the region.
REGION_URLS: dict[str, str | None] = {
    "EU1": "https://eu1-m.ocp.ai/integrations",
    "US1": "https://us1-m.ocp.ai/integrations",
    "US2": "https://us2-m.ocp.ai/integrations",
    "US1W": "https://us1-w-m.ocp.ai/integrations",
    "CA1": None,
    "FRANKFURT": None,
}
REGION_TOKEN_URLS = {
    "EU1": "https://eu1-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "US1": "https://us1-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "US2": "https://auth.us2-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "US1W": "https://us1-w-m.ocp.ai/auth/realms/master/protocol/openid-connect/token",
    "CA1": "https://pub.ca1.ocp.ai/auth/realms/ocp/protocol/openid-connect/token",
    "FRANKFURT": "https://pub.frankfurt.ocp.ai/auth/realms/ocp/protocol/openid-connect/token",
}
VENDOR_LIMITS = {
    Operation.UPDATE: 800,
    Operation.ATTACH: 800,
    Operation.DETACH: 100,
    Operation.DELETE: 10,
    Operation.CREATE: 100,
}


def write(tmp_path: Path, text: str, name: str = "numsync.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[yamlsrc.Problem]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert problems
    for p in problems:
        assert str(p) in str(info.value)  # the exception text lists every problem with file:line:col
    return problems


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NS_HOST", "NS_BASE", "NS_MISSING", "NS_TOKEN_HOST"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- valid configs


@pytest.mark.parametrize("region", sorted(r for r, url in REGION_URLS.items() if url))
def test_region_gives_documented_base_url_and_token_url(tmp_path: Path, region: str) -> None:
    # Behaviour change (issue #12): the token URL is the region's documented endpoint, which for US2 is on
    # auth.us2-m.ocp.ai, no longer derived from the API host.
    path = write(
        tmp_path,
        f"""
        environments:
          prod:
            region: {region}
            desired: desired/prod
            groups:
              ocp-qa:
        """,
    )
    env = load_config(path).environment("prod")
    assert env.base_url == REGION_URLS[region]
    assert env.token_url == REGION_TOKEN_URLS[region]
    assert env.region == region


@pytest.mark.parametrize("region", sorted(r for r, url in REGION_URLS.items() if url is None))
def test_region_without_a_documented_base_url_asks_for_one(tmp_path: Path, region: str) -> None:
    path = write(
        tmp_path,
        f"""
        environments:
          prod:
            desired: desired/prod
            region: {region}
            groups:
              ocp-qa:
        """,
    )
    [problem] = problems_of(path)
    assert "base_url" in problem.message and region in problem.message
    assert (problem.location.line, problem.location.column) == (4, 13)  # at the region's value


@pytest.mark.parametrize("region", sorted(r for r, url in REGION_URLS.items() if url is None))
def test_region_with_base_url_uses_the_regions_token_endpoint(tmp_path: Path, region: str) -> None:
    path = write(
        tmp_path,
        f"""
        environments:
          prod:
            region: {region}
            base_url: https://tenant.example.test/integrations
            desired: d
            groups: {{g: }}
        """,
    )
    env = load_config(path).environment("prod")
    assert env.base_url == "https://tenant.example.test/integrations"
    assert env.token_url == REGION_TOKEN_URLS[region]


def test_realm_overrides_the_regions_realm(tmp_path: Path) -> None:
    path = write(tmp_path, "environments: {prod: {region: US2, realm: tenant-a, desired: d, groups: {g: }}}\n")
    env = load_config(path).environment("prod")
    assert env.token_url == "https://auth.us2-m.ocp.ai/auth/realms/tenant-a/protocol/openid-connect/token"


def test_realm_without_region_goes_on_the_base_url_host(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "environments: {prod: {base_url: 'https://h.example.test/integrations', realm: ocp, desired: d, groups: {g: }}}\n",
    )
    env = load_config(path).environment("prod")
    assert env.token_url == "https://h.example.test/auth/realms/ocp/protocol/openid-connect/token"
    assert env.region is None


def test_realm_and_token_url_together_are_refused_at_the_realm(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            token_url: https://sso.example.test/token
            realm: ocp
            desired: d
            groups: {g: }
        """,
    )
    [problem] = problems_of(path)
    assert "realm" in problem.message and "token_url" in problem.message
    assert problem.location.line == 5


def test_a_realm_that_is_not_a_path_segment_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "environments: {prod: {region: EU1, realm: 'a/b', desired: d, groups: {g: }}}\n")
    [problem] = problems_of(path)
    assert "realm" in problem.message or "a/b" in problem.message


def test_full_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            desired: desired/prod
            groups:
              ocp-qa: {prune: true}
              uk-care: {}
              sales:
            default_provider: twilio
            timeout: 15
        """,
    )
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.path == path
    env = config.environment(None)
    assert env == Environment(
        name="prod",
        base_url="https://eu1-m.ocp.ai/integrations",
        token_url="https://eu1-m.ocp.ai" + TOKEN_PATH,
        desired=(tmp_path / "desired" / "prod").resolve(),
        groups={
            "ocp-qa": GroupPolicy("ocp-qa", True),
            "uk-care": GroupPolicy("uk-care", False),
            "sales": GroupPolicy("sales", False),
        },
        limits=VENDOR_LIMITS,
        default_provider="twilio",
        timeout=15.0,
        region=Region.EU1,
    )


def test_defaults_without_optional_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: US1
            desired: d
            groups: {g: null}
        """,
    )
    env = load_config(path).environment("prod")
    assert env.limits == VENDOR_LIMITS
    assert env.default_provider is None
    assert env.timeout == 60.0
    assert env.groups == {"g": GroupPolicy("g", prune=False)}
    assert env.desired == (tmp_path / "d").resolve()


def test_desired_is_relative_to_the_config_file_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    path = write(
        tmp_path, "environments: {prod: {region: EU1, desired: ../desired, groups: {g: }}}\n", name="conf/numsync.yaml"
    )
    monkeypatch.chdir(tmp_path / "conf")
    assert load_config(path).environment("prod").desired == (tmp_path / "desired").resolve()


def test_limits_override_merges_with_the_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            desired: d
            groups: {g: }
            limits:
              Delete: 5
              Update: 200
        """,
    )
    env = load_config(path).environment("prod")
    assert env.limits == {**VENDOR_LIMITS, Operation.DELETE: 5, Operation.UPDATE: 200}
    # the module-level defaults are not mutated by one environment's override
    other = write(tmp_path, "environments: {x: {region: EU1, desired: d, groups: {g: }}}\n", name="other.yaml")
    assert load_config(other).environment("x").limits == VENDOR_LIMITS


def test_limits_below_one_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            desired: d
            groups: {g: }
            limits:
              Delete: 0
        """,
    )
    [problem] = problems_of(path)
    assert "Delete" in problem.message
    assert problem.location.line == 7


# --------------------------------------------------------------------------- ${VAR} expansion


def test_base_url_expands_a_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NS_HOST", "ocp.example.test:8443")
    path = write(
        tmp_path,
        """
        environments:
          staging:
            base_url: "https://${NS_HOST}/integrations/"
            desired: d
            groups: {g: }
        """,
    )
    env = load_config(path).environment("staging")
    assert env.base_url == "https://ocp.example.test:8443/integrations"  # trailing / dropped
    assert env.token_url == "https://ocp.example.test:8443" + TOKEN_PATH


def test_base_url_default_when_the_variable_is_unset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          local:
            base_url: "${NS_BASE:-http://127.0.0.1:8080/integrations}"
            desired: d
            groups: {g: }
        """,
    )
    env = load_config(path).environment("local")
    assert env.base_url == "http://127.0.0.1:8080/integrations"
    assert env.token_url == "http://127.0.0.1:8080" + TOKEN_PATH


def test_variable_wins_over_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NS_BASE", "https://emu.test/integrations")
    path = write(
        tmp_path,
        """
        environments:
          local:
            base_url: "${NS_BASE:-http://127.0.0.1:8080/integrations}"
            desired: d
            groups: {g: }
        """,
    )
    assert load_config(path).environment("local").base_url == "https://emu.test/integrations"


def test_explicit_token_url_is_expanded_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NS_TOKEN_HOST", "sso.example.test")
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: US2
            token_url: "https://${NS_TOKEN_HOST}/auth/token"
            desired: d
            groups: {g: }
        """,
    )
    env = load_config(path).environment("prod")
    assert env.base_url == REGION_URLS["US2"]
    assert env.token_url == "https://sso.example.test/auth/token"


def test_missing_variable_is_a_warning_until_the_endpoint_is_needed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            desired: d
            groups: {g: }
          staging:
            desired: d
            base_url: "https://${NS_MISSING}/integrations"
            groups: {g: }
        """,
    )
    config = load_config(path)  # offline commands (validate, fmt, environments) go on
    assert config.environment("prod").unresolved == ()
    config.environment("prod").require_endpoints()
    staging = config.environment("staging")
    [warning] = staging.unresolved
    assert (warning.check, warning.severity) == ("config-var", "warning")
    assert "NS_MISSING" in warning.message and "not set" in warning.message
    assert (warning.location.path, warning.location.line, warning.location.column) == (str(path), 8, 15)
    assert staging.base_url == "https://${NS_MISSING}/integrations"  # shown as written, never a guessed host
    assert staging.token_url == "https://${NS_MISSING}/auth/realms/master/protocol/openid-connect/token"
    with pytest.raises(ConfigError) as info:
        staging.require_endpoints()
    [error] = info.value.problems
    assert (error.location, error.message, error.severity) == (warning.location, warning.message, "error")
    assert "numsync.yaml:8:15" in str(info.value)


def test_missing_variable_in_token_url_is_not_also_a_bad_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            base_url: "${NS_BASE:-http://127.0.0.1:8080}/integrations"
            token_url: "${NS_MISSING_TOKEN}"
            desired: d
            groups: {g: }
        """,
    )
    env = load_config(path).environment("prod")
    assert env.base_url == "http://127.0.0.1:8080/integrations"
    [warning] = env.unresolved
    assert "NS_MISSING_TOKEN" in warning.message and warning.location.line == 4


# --------------------------------------------------------------------------- problems


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            regoin: EU1
            desired: d
            groups: {g: }
        """,
    )
    [problem] = problems_of(path)
    assert "unknown key 'regoin'; did you mean 'region'?" in problem.message
    assert (problem.location.line, problem.location.column) == (3, 5)


def test_unknown_group_option_with_did_you_mean(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            desired: d
            groups:
              ocp-qa: {prnue: true}
        """,
    )
    [problem] = problems_of(path)
    assert "did you mean 'prune'?" in problem.message
    assert problem.location.line == 6


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "numsync.yaml"
    [problem] = problems_of(path)
    assert problem.check == "config-missing"
    assert str(path) in problem.message
    assert problem.location.line == 1


@pytest.mark.parametrize("text", ["", "\n", "# TODO\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "numsync.yaml"
    path.write_text(text)
    [problem] = problems_of(path)
    assert problem.check == "config-empty"
    assert "empty" in problem.message


def test_syntax_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
           desired: d
        """,
    )
    [problem] = problems_of(path)
    assert problem.check == "yaml-syntax"
    assert problem.location.line == 4


def test_neither_region_nor_base_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            desired: d
            groups: {g: }
        """,
    )
    [problem] = problems_of(path)
    assert problem.check == "config-endpoint"
    assert "'prod'" in problem.message
    assert "region" in problem.message and "base_url" in problem.message
    assert problem.location.line == 3


def test_unknown_region(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU2
            desired: d
            groups: {g: }
        """,
    )
    [problem] = problems_of(path)
    assert "EU2" in problem.message
    assert (problem.location.line, problem.location.column) == (3, 13)


def test_base_url_that_is_not_http(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            base_url: "ftp://files.example.test/integrations"
            desired: d
            groups: {g: }
        """,
    )
    [problem] = problems_of(path)
    assert "not an http(s) URL" in problem.message
    assert problem.location.line == 3


def test_missing_required_keys_and_no_environments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
        """,
    )
    problems = problems_of(path)
    messages = " ".join(p.message for p in problems)
    assert "'desired' is a required property" in messages
    assert "'groups' is a required property" in messages
    path = write(tmp_path, "environments: {}\n", name="none.yaml")
    [problem] = problems_of(path)
    assert problem.check == "schema-minProperties"


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            regoin: EU1
            desired: d
            groups: {g: {prune: "yes"}}
            timeout: 0
        """,
    )
    problems = problems_of(path)
    assert [p.location.line for p in problems] == sorted(p.location.line for p in problems)
    assert [(p.location.line, p.check) for p in problems] == [
        (3, "schema-additionalProperties"),
        (5, "schema-type"),
        (6, "schema-exclusiveMinimum"),
    ]


@pytest.mark.parametrize(
    "loader",
    [
        pytest.param(yaml.SafeLoader, id="python-loader"),
        pytest.param(getattr(yaml, "CSafeLoader", yaml.SafeLoader), id="libyaml-loader"),
    ],
)
def test_retyped_string_gets_a_quote_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: type) -> None:
    monkeypatch.setattr(yamlsrc, "_Loader", loader)
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            desired: d
            groups: {g: }
            default_provider: no
        """,
    )
    [problem] = problems_of(path)
    assert "quote this value" in problem.message
    assert (problem.location.line, problem.location.column) == (6, 23)


# --------------------------------------------------------------------------- choosing an environment


def _two_envs(tmp_path: Path) -> Config:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            region: EU1
            desired: desired/prod
            groups: {g: }
          staging:
            region: US1
            desired: desired/staging
            groups: {g: }
        """,
    )
    return load_config(path)


def test_environment_none_with_several_raises(tmp_path: Path) -> None:
    config = _two_envs(tmp_path)
    with pytest.raises(ConfigError) as info:
        config.environment(None)
    [problem] = info.value.problems
    assert problem.check == "config-env"
    assert "prod" in problem.message and "staging" in problem.message
    assert "--env" in problem.message


def test_environment_by_name(tmp_path: Path) -> None:
    config = _two_envs(tmp_path)
    assert config.environment("staging").base_url == REGION_URLS["US1"]
    assert config.environment("prod").base_url == REGION_URLS["EU1"]
    assert config.environment("staging").name == "staging"


def test_unknown_environment_name_raises(tmp_path: Path) -> None:
    config = _two_envs(tmp_path)
    with pytest.raises(ConfigError) as info:
        config.environment("qa")
    [problem] = info.value.problems
    assert "'qa'" in problem.message
    assert "prod, staging" in problem.message


@pytest.mark.parametrize(
    ("line", "value", "key"),
    [
        ("    safety: {max_change_percent: VALUE}", ".nan", "environments.prod.safety.max_change_percent"),
        ("    safety: {max_shrink_percent: VALUE}", ".NaN", "environments.prod.safety.max_shrink_percent"),
        ("    timeout: VALUE", ".inf", "environments.prod.timeout"),
        ("    retry: {max_delay: VALUE}", "-.inf", "environments.prod.retry.max_delay"),
    ],
)
def test_non_finite_numbers_are_refused_at_their_value(tmp_path: Path, line: str, value: str, key: str) -> None:
    """YAML's .nan compares false with every limit: accepted, it would silently switch a safety check off."""
    (tmp_path / "desired").mkdir()
    path = write(
        tmp_path,
        f"environments:\n  prod:\n    region: EU1\n    desired: desired\n    groups: {{ocp-qa: {{}}}}\n{line.replace('VALUE', value)}\n",
    )
    [problem] = problems_of(path)
    shown = {".nan": ".nan", ".NaN": ".nan", ".inf": ".inf", "-.inf": "-.inf"}[value]
    assert problem.message == f"{key}: {shown} is not a finite number; write a plain value such as 10"
    assert (problem.location.line, problem.location.column) == (6, line.index("VALUE") + 1)


def test_a_pace_over_a_minute_is_refused(tmp_path: Path) -> None:
    (tmp_path / "desired").mkdir()
    path = write(
        tmp_path,
        "environments:\n  prod:\n    region: EU1\n    desired: desired\n    groups: {ocp-qa: {}}\n    retry: {min_interval: 3600}\n",
    )
    [problem] = problems_of(path)
    assert "min_interval: 3600 is greater than the maximum of 60" in problem.message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "    timeout: 1e6",
            'environments.prod.timeout: "1e6" is not a number; YAML reads 1e6 as text, write it out in plain digits (e.g. 1000000 for 1e6)',
        ),
        ("    retry: {attempts: true}", "environments.prod.retry.attempts: true is not a whole number"),
        ("    protected: [+12015550123, {a: 1}]", 'environments.prod.protected.1: {"a": 1} is not text'),
    ],
)
def test_type_errors_read_as_yaml_not_python(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "desired").mkdir()
    path = write(
        tmp_path,
        f"environments:\n  prod:\n    region: EU1\n    desired: desired\n    groups: {{ocp-qa: {{}}}}\n{line}\n",
    )
    assert message in [p.message for p in problems_of(path)]


def test_a_base_url_with_a_colon_but_no_port_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            base_url: http://127.0.0.1:/integrations
            desired: d
            groups: {g: }
        """,
    )
    [problem] = problems_of(path)
    assert problem.check == "config-endpoint" and "no port after it" in problem.message
    assert (problem.location.line, problem.location.column) == (3, 15)  # the value


def test_a_base_url_on_port_0_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environments:
          prod:
            base_url: http://127.0.0.1:0/integrations
            desired: d
            groups: {g: }
        """,
    )
    [problem] = problems_of(path)
    assert problem.check == "config-endpoint" and "port 0" in problem.message
