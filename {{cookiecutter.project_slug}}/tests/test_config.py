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
