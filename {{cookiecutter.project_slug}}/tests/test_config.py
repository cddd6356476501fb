"""Settings: defaults from the generated answers, explicit values, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import config
from core.config import ConfigError, load_settings


def no_credentials() -> bool:
    return False


def with_credentials() -> bool:
    return True


def test_defaults_come_from_the_generated_answers() -> None:
    settings = load_settings({}, credentials_available=with_credentials)
    assert settings.provider == "bedrock"
    assert settings.provider_notice is None
    assert settings.model_ids == (config.DEFAULT_MODEL_IDS,)
    assert settings.default_model_id == config.DEFAULT_MODEL_IDS
    assert settings.aws_region == config.DEFAULT_AWS_REGION
    assert settings.history_max_messages == config.DEFAULT_HISTORY_MAX_MESSAGES
    assert settings.sessions_dir == Path(__file__).resolve().parent.parent / ".sessions"
    assert settings.project_name == config.PROJECT_NAME
    assert config.PROJECT_NAME in settings.system_prompt


def test_without_credentials_the_echo_model_runs_and_says_so() -> None:
    settings = load_settings({}, credentials_available=no_credentials)
    assert settings.provider == "echo"
    assert settings.provider_notice is not None
    assert "No AWS credentials" in settings.provider_notice


def test_explicit_values_win(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SESSIONS_DIR": str(tmp_path),
            "LLM_PROVIDER": "Echo",
            "BEDROCK_MODEL_IDS": " eu.amazon.nova-pro-v1:0 , eu.amazon.nova-lite-v1:0,",
            "AWS_REGION": "eu-west-1",
            "SYSTEM_PROMPT": "Answer in French.",
            "HISTORY_MAX_MESSAGES": "6",
        },
        credentials_available=with_credentials,
    )
    assert settings.sessions_dir == tmp_path
    assert settings.provider == "echo"
    assert settings.model_ids == ("eu.amazon.nova-pro-v1:0", "eu.amazon.nova-lite-v1:0")
    assert settings.default_model_id == "eu.amazon.nova-pro-v1:0"
    assert settings.aws_region == "eu-west-1"
    assert settings.system_prompt == "Answer in French."
    assert settings.history_max_messages == 6


def test_explicit_bedrock_never_looks_for_credentials() -> None:
    def fail() -> bool:
        raise AssertionError("the credential chain must not run when LLM_PROVIDER is set")

    assert load_settings({"LLM_PROVIDER": "bedrock"}, credentials_available=fail).provider == (
        "bedrock"
    )


def test_aws_default_region_is_the_fallback() -> None:
    settings = load_settings(
        {"AWS_DEFAULT_REGION": "ap-southeast-2"}, credentials_available=no_credentials
    )
    assert settings.aws_region == "ap-southeast-2"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LLM_PROVIDER", "openai"),
        ("BEDROCK_MODEL_IDS", "us.amazon.nova-lite-v1:0, has space"),
        ("AWS_REGION", "Mars"),
        ("HISTORY_MAX_MESSAGES", "lots"),
        ("HISTORY_MAX_MESSAGES", "0"),
        ("ECHO_WORDS_PER_SECOND", "fast"),
        ("ECHO_WORDS_PER_SECOND", "-1"),
        ("ECHO_WORDS_PER_SECOND", "nan"),
    ],
)
def test_bad_values_are_named_in_the_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value}, credentials_available=no_credentials)
    assert f"{name}={value!r}" in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {"LLM_PROVIDER": "x", "AWS_REGION": "y", "HISTORY_MAX_MESSAGES": "z"},
            credentials_available=no_credentials,
        )
    message = str(caught.value)
    assert "LLM_PROVIDER=" in message
    assert "AWS_REGION=" in message
    assert "HISTORY_MAX_MESSAGES=" in message


# --- sign-in settings ----------------------------------------------------------------------------

COOKIE_SECRET = "c" * config.MIN_COOKIE_SECRET_LENGTH
OIDC = {
    "AUTH_MODE": "oidc",
    "OIDC_SERVER_METADATA_URL": "https://login.example.com/.well-known/openid-configuration",
    "OIDC_CLIENT_ID": "chat-client",
    "OIDC_CLIENT_SECRET": 'a "secret" with \\ and \n',
    "OIDC_REDIRECT_URI": "https://chat.example.com/oauth2callback",
    "STREAMLIT_SERVER_COOKIE_SECRET": COOKIE_SECRET,
}


@pytest.mark.parametrize(
    "env", [{}, {"AUTH_MODE": ""}, {"AUTH_MODE": "none"}, {"AUTH_MODE": "None"}]
)
def test_unset_auth_mode_is_anonymous(env: dict[str, str]) -> None:
    auth = config.load_auth_settings({**env, "OIDC_CLIENT_ID": "ignored when anonymous"})
    assert auth == config.AuthSettings(mode="none")
    assert not auth.required


def test_oidc_settings_are_read_and_normalised() -> None:
    auth = config.load_auth_settings(
        {
            **OIDC,
            "AUTH_MODE": "OIDC",
            "OIDC_LOGOUT_URL": "https://login.example.com/logout?client_id=chat-client",
            "ALLOWED_EMAIL_DOMAINS": " Example.com, @example.org ,,example.com",
        }
    )
    assert auth.required
    assert auth.client_secret == OIDC["OIDC_CLIENT_SECRET"].strip()
    assert auth.cookie_secret == COOKIE_SECRET
    assert auth.logout_url == "https://login.example.com/logout?client_id=chat-client"
    assert auth.allowed_email_domains == ("example.com", "example.org")


def test_secrets_never_appear_in_repr() -> None:
    auth = config.load_auth_settings({**OIDC, "OIDC_CLIENT_SECRET": "client-secret-value"})
    assert "client-secret-value" not in repr(auth)
    assert COOKIE_SECRET not in repr(auth)
    assert "chat-client" in repr(auth)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AUTH_MODE", "saml", "AUTH_MODE='saml'"),
        ("OIDC_SERVER_METADATA_URL", "", "OIDC_SERVER_METADATA_URL='': not set"),
        ("OIDC_SERVER_METADATA_URL", "http://login.example.com/x", "plain http is allowed only"),
        ("OIDC_SERVER_METADATA_URL", "login.example.com", "not an absolute http(s) URL"),
        ("OIDC_SERVER_METADATA_URL", "https://user:pw@login.example.com/", "without user name"),
        ("OIDC_SERVER_METADATA_URL", "https://login.example.com:99999/", "not a valid URL"),
        ("OIDC_REDIRECT_URI", "https://chat.example.com/", "exactly /oauth2callback"),
        ("OIDC_REDIRECT_URI", "https://chat.example.com/oauth2callback?x=1", "with no query"),
        ("OIDC_REDIRECT_URI", "http://chat.example.com/oauth2callback", "plain http"),
        ("OIDC_LOGOUT_URL", "ftp://login.example.com/logout", "OIDC_LOGOUT_URL='ftp:"),
        ("OIDC_CLIENT_ID", "", "OIDC_CLIENT_ID is not set"),
        ("OIDC_CLIENT_SECRET", " ", "OIDC_CLIENT_SECRET is not set"),
        ("STREAMLIT_SERVER_COOKIE_SECRET", "", "STREAMLIT_SERVER_COOKIE_SECRET is not set"),
        ("STREAMLIT_SERVER_COOKIE_SECRET", "short", "STREAMLIT_SERVER_COOKIE_SECRET is too short"),
        ("ALLOWED_EMAIL_DOMAINS", "example.com,exa mple.org", "invalid: ['exa mple.org']"),
        ("ALLOWED_EMAIL_DOMAINS", "*.example.com", "invalid: ['*.example.com']"),
    ],
)
def test_a_bad_sign_in_setting_names_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load_auth_settings({**OIDC, name: value})
    assert expected in str(caught.value)


def test_every_sign_in_problem_is_listed_at_once_without_a_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        config.load_auth_settings(
            {"AUTH_MODE": "oidc", "STREAMLIT_SERVER_COOKIE_SECRET": "tiny-secret-value"}
        )
    message = str(caught.value)
    for name in (
        "OIDC_SERVER_METADATA_URL",
        "OIDC_REDIRECT_URI",
        "OIDC_CLIENT_ID",
        "OIDC_CLIENT_SECRET",
        "STREAMLIT_SERVER_COOKIE_SECRET",
    ):
        assert name in message
    assert "tiny-secret-value" not in message
    assert "17" not in message  # not even the secret's length


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9400/.well-known/openid-configuration",
        "http://localhost:9400/.well-known/openid-configuration",
        "http://[::1]:9400/.well-known/openid-configuration",
        "http://127.8.9.10/.well-known/openid-configuration",
    ],
)
def test_plain_http_is_accepted_for_loopback_providers_only(url: str) -> None:
    auth = config.load_auth_settings(
        {
            **OIDC,
            "OIDC_SERVER_METADATA_URL": url,
            "OIDC_REDIRECT_URI": "http://127.0.0.1:8501/oauth2callback",
        }
    )
    assert auth.server_metadata_url == url


def test_the_daily_token_limit_is_off_unless_set() -> None:
    assert load_settings({}, credentials_available=no_credentials).daily_token_limit == 0
    settings = load_settings({"DAILY_TOKEN_LIMIT": "200000"}, credentials_available=no_credentials)
    assert settings.daily_token_limit == 200_000


@pytest.mark.parametrize("value", ["-1", "lots", "1.5", "1000000001"])
def test_a_bad_daily_token_limit_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match="DAILY_TOKEN_LIMIT"):
        load_settings({"DAILY_TOKEN_LIMIT": value}, credentials_available=no_credentials)
