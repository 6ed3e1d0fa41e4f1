"""Settings: read once from LLMGUARD_* or keywords, validated at construction, frozen."""

from __future__ import annotations

import dataclasses

import pytest

from asgi_llmguard import ConfigurationError, Guard, Settings, Upstream


def test_defaults_need_no_environment() -> None:
    s = Settings.from_env({})
    assert s.redis_url is None
    assert s.guarded_paths == ("/v1/chat/completions", "/v1/completions")
    assert s.cache_enabled is True and s.cache_scope == "identity"
    assert s.metrics_path == "/metrics" and s.cache_admin_path is None
    assert dict(s.router_aliases) == {} and s.upstreams == ()


def test_env_parses_every_field_type() -> None:
    env = {
        "LLMGUARD_REDIS_URL": "redis://cache:6379/2",                 # optional str
        "LLMGUARD_REDIS_PREFIX": " app: ",                            # str (stripped)
        "LLMGUARD_REDIS_TIMEOUT_MS": "25.5",                          # float
        "LLMGUARD_GUARDED_PATHS": "/llm/chat, /llm/complete ,",       # comma list
        "LLMGUARD_MAX_BODY_BYTES": "1024",                            # int
        "LLMGUARD_CACHE_ENABLED": "off",                              # bool
        "LLMGUARD_CACHE_VERIFY": "No",
        "LLMGUARD_CACHE_SEMANTIC": "0",
        "LLMGUARD_LOG_PROMPTS": "YES",
        "LLMGUARD_CACHE_THRESHOLD": "0.93",                           # optional float
        "LLMGUARD_CACHE_SCOPE": "global",                             # literal
        "LLMGUARD_RATE_LIMIT_RPM": "60",
        "LLMGUARD_METRICS_PATH": "off",                               # optional path, off
        "LLMGUARD_STATS_PATH": "/stats",
        "LLMGUARD_CACHE_ADMIN_PATH": "/admin/cache",
        "LLMGUARD_ADMIN_TOKEN": "secret",
        "LLMGUARD_ROUTER_ALIASES": '{"auto": ["small", "large"]}',     # JSON object
        "LLMGUARD_UPSTREAMS": '[{"url": "http://up:8000/", "models": ["m1"], "api_key_env": "KEY"}]',  # JSON list
        "UNRELATED": "ignored",
    }
    s = Settings.from_env(env)
    assert s.redis_url == "redis://cache:6379/2"
    assert s.redis_prefix == "app:"
    assert s.redis_timeout_ms == 25.5
    assert s.guarded_paths == ("/llm/chat", "/llm/complete")
    assert s.max_body_bytes == 1024
    assert (s.cache_enabled, s.cache_verify, s.cache_semantic, s.log_prompts) == (False, False, False, True)
    assert s.cache_threshold == 0.93
    assert s.cache_scope == "global"
    assert s.rate_limit_rpm == 60
    assert s.metrics_path is None
    assert s.stats_path == "/stats"
    assert s.cache_admin_path == "/admin/cache" and s.admin_token == "secret"
    assert dict(s.router_aliases) == {"auto": ("small", "large")}
    assert s.upstreams == (Upstream(url="http://up:8000", models=("m1",), api_key_env="KEY"),)


def test_environment_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGUARD_CACHE_TTL_SECONDS", "42")
    assert Settings.from_env().cache_ttl_seconds == 42
    assert Guard(cache_semantic=False).settings.cache_ttl_seconds == 42


def test_keyword_overrides_beat_the_environment() -> None:
    env = {"LLMGUARD_CACHE_TTL_SECONDS": "42", "LLMGUARD_CACHE_SCOPE": "global"}
    s = Settings.from_env(env, cache_ttl_seconds=7)
    assert s.cache_ttl_seconds == 7
    assert s.cache_scope == "global"


def test_keyword_overrides_beat_the_environment_through_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGUARD_MAX_BODY_BYTES", "10")
    guard = Guard(max_body_bytes=99, cache_semantic=False)
    assert guard.settings.max_body_bytes == 99


def test_unknown_keyword_is_a_configuration_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="cache_tll_seconds"):
        Settings.from_env({}, cache_tll_seconds=5)
    with pytest.raises(ConfigurationError, match="not_a_setting"):
        Guard(not_a_setting=1)


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("LLMGUARD_CACHE_THRESHOLD", "abc", "a number"),
        ("LLMGUARD_CACHE_THRESHOLD", "1.5", "a number in (0, 1]"),
        ("LLMGUARD_RATE_LIMIT_RPM", "-5", "an integer ≥ 0"),
        ("LLMGUARD_RATE_LIMIT_TPM", "ten", "an integer"),
        ("LLMGUARD_MAX_BODY_BYTES", "0", "a positive integer"),
        ("LLMGUARD_CACHE_TTL_SECONDS", "1.5", "an integer"),
        ("LLMGUARD_CACHE_ENABLED", "maybe", "a boolean"),
        ("LLMGUARD_CACHE_SCOPE", "tenant", "'identity' or 'global'"),
        ("LLMGUARD_REDIS_URL", "http://cache:6379", "redis://"),
        ("LLMGUARD_REDIS_TIMEOUT_MS", "0", "a positive number of milliseconds"),
        ("LLMGUARD_ROUTER_ALIASES", "{not json", "JSON"),
        ("LLMGUARD_ROUTER_ALIASES", '["auto"]', "a JSON object of alias to model list"),
        ("LLMGUARD_ROUTER_ALIASES", '{"auto": []}', "a JSON object of alias to model list"),
        ("LLMGUARD_UPSTREAMS", "[{", "JSON"),
        ("LLMGUARD_UPSTREAMS", '{"url": "http://x"}', "a JSON list"),
        ("LLMGUARD_UPSTREAMS", '[{"models": ["m"]}]', "a JSON list"),
        ("LLMGUARD_UPSTREAMS", '[{"url": "ftp://x"}]', "http:// or https://"),
        ("LLMGUARD_GUARDED_PATHS", "v1/chat", "paths starting with '/'"),
        ("LLMGUARD_METRICS_PATH", "metrics", "a path starting with '/'"),
    ],
)
def test_bad_env_value_names_the_variable_and_what_it_expected(variable: str, raw: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({variable: raw})
    message = str(info.value)
    assert variable in message
    assert expected in message


@pytest.mark.parametrize(
    ("keyword", "value", "variable"),
    [
        ("cache_threshold", "abc", "LLMGUARD_CACHE_THRESHOLD"),
        ("rate_limit_rpm", -1, "LLMGUARD_RATE_LIMIT_RPM"),
        ("rate_limit_local_share", 0, "LLMGUARD_RATE_LIMIT_LOCAL_SHARE"),
        ("rate_limit_local_share", 1.5, "LLMGUARD_RATE_LIMIT_LOCAL_SHARE"),
        ("max_body_bytes", True, "LLMGUARD_MAX_BODY_BYTES"),
        ("cache_scope", "everyone", "LLMGUARD_CACHE_SCOPE"),
        ("redis_url", "memcached://x", "LLMGUARD_REDIS_URL"),
        ("router_aliases", {"auto": "small"}, "LLMGUARD_ROUTER_ALIASES"),
        ("router_thresholds", [0.6, 0.3], "LLMGUARD_ROUTER_THRESHOLDS"),
        ("router_thresholds", [1.5], "LLMGUARD_ROUTER_THRESHOLDS"),
        ("upstream_max_attempts", 0, "LLMGUARD_UPSTREAM_MAX_ATTEMPTS"),
        ("breaker_open_seconds", -1, "LLMGUARD_BREAKER_OPEN_SECONDS"),
        ("upstream_retry_backoff_ms", -5, "LLMGUARD_UPSTREAM_RETRY_BACKOFF_MS"),
        ("upstreams", [{"url": 5}], "LLMGUARD_UPSTREAMS"),
        ("cache_enabled", "yes", "LLMGUARD_CACHE_ENABLED"),
    ],
)
def test_bad_keyword_value_names_the_variable(keyword: str, value: object, variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({}, **{keyword: value})


def test_admin_path_without_token_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"LLMGUARD_CACHE_ADMIN_PATH": "/admin/cache"})
    assert "LLMGUARD_ADMIN_TOKEN" in str(info.value)
    assert "LLMGUARD_CACHE_ADMIN_PATH" in str(info.value)
    with pytest.raises(ConfigurationError, match="LLMGUARD_ADMIN_TOKEN"):
        Settings(cache_admin_path="/admin/cache", admin_token="")


def test_admin_path_with_token_is_accepted() -> None:
    s = Settings(cache_admin_path="/admin/cache", admin_token="t")
    assert s.cache_admin_path == "/admin/cache"


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Settings(cache_scope="nobody")  # type: ignore[arg-type]


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.cache_ttl_seconds = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.router_aliases["x"] = ("y",)  # type: ignore[index]


def test_replace_returns_a_new_validated_settings() -> None:
    s = Settings()
    t = s.replace(cache_ttl_seconds=5)
    assert t.cache_ttl_seconds == 5 and s.cache_ttl_seconds == 3600
    with pytest.raises(ConfigurationError, match="LLMGUARD_CACHE_TTL_SECONDS"):
        s.replace(cache_ttl_seconds=0)


def test_guarded_paths_keyword_accepts_a_single_string_or_list() -> None:
    assert Settings(guarded_paths="/llm").guarded_paths == ("/llm",)  # type: ignore[arg-type]
    assert Settings(guarded_paths=["/a", "/b"]).guarded_paths == ("/a", "/b")  # type: ignore[arg-type]


def test_guard_accepts_settings_object_with_overrides() -> None:
    guard = Guard(Settings(cache_ttl_seconds=5), cache_semantic=False)
    assert guard.settings.cache_ttl_seconds == 5
    assert guard.settings.cache_semantic is False


def test_router_thresholds_must_match_every_alias() -> None:
    with pytest.raises(ConfigurationError, match=r"LLMGUARD_ROUTER_THRESHOLDS.*'auto'"):
        Settings(router_aliases={"auto": ["a", "b", "c"]}, router_thresholds=[0.5])
    ok = Settings.from_env({"LLMGUARD_ROUTER_ALIASES": '{"auto": ["a", "b", "c"], "one": ["x"]}',
                            "LLMGUARD_ROUTER_THRESHOLDS": "[0.3, 0.7]"})
    assert ok.router_thresholds == (0.3, 0.7)
