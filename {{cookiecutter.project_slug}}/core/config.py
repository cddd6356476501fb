"""Settings from the environment (12-factor), read and validated once at start-up.

Every knob the app has is an environment variable, so the same image runs on a laptop, in CI and on
ECS; the task definition in infra/app.yaml sets them there. Defaults come from the answers given
when the project was generated. A bad value fails fast with a message that names the variable, what
it got and what it expects, instead of surfacing later as a confusing Bedrock or file error.
README.md, section "Configuration", lists every variable.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# The answers given when the project was generated live in project.json, as data: a project name
# may contain quotes, backslashes or any length of text, which is safe in JSON and would make
# generated Python fragile. Edit that file to rename the app or change the defaults.
_PROJECT = json.loads(Path(__file__).with_name("project.json").read_text(encoding="utf-8"))
PROJECT_NAME: str = _PROJECT["project_name"]
DEFAULT_AWS_REGION: str = _PROJECT["aws_region"]
DEFAULT_MODEL_IDS: str = _PROJECT["bedrock_model_id"]
DEFAULT_SYSTEM_PROMPT = (
    f"You are {PROJECT_NAME}, a helpful assistant. Answer clearly and concisely, "
    "and say so when you do not know."
)
# Twenty messages (ten exchanges) keep the context small and the cost per turn predictable; the
# whole conversation is still stored and shown, only the model sees a window of it.
DEFAULT_HISTORY_MAX_MESSAGES = 20
# The project folder, so a local run keeps conversations next to the code (and .gitignore hides it).
DEFAULT_SESSIONS_DIR = Path(__file__).resolve().parent.parent / ".sessions"

ProviderName = Literal["bedrock", "echo"]

# The variables this module reads, in the order README.md documents them.
ENVIRONMENT_VARIABLES = (
    "SESSIONS_DIR",
    "LLM_PROVIDER",
    "BEDROCK_MODEL_IDS",
    "AWS_REGION",
    "SYSTEM_PROMPT",
    "HISTORY_MAX_MESSAGES",
    "ECHO_WORDS_PER_SECOND",
)

# Model ids are inference profile ids (us.amazon.nova-lite-v1:0), foundation model ids, or ARNs of
# application inference profiles. The check catches typos like spaces or an empty item; Bedrock
# itself decides whether the model exists.
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{2,255}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class ConfigError(ValueError):
    """A setting has a value the app cannot use; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to know about its environment, already validated."""

    project_name: str
    sessions_dir: Path
    provider: ProviderName
    # Why this provider was chosen, shown on the page when it is not the obvious one.
    provider_notice: str | None
    model_ids: tuple[str, ...]
    aws_region: str
    system_prompt: str
    history_max_messages: int
    # 0 = the echo model answers at once; a rate makes it stream like a real model (benchmarks).
    echo_words_per_second: float = 0.0

    @property
    def default_model_id(self) -> str:
        return self.model_ids[0]


def aws_credentials_available() -> bool:
    """True when boto3 finds credentials (env, profile, SSO, ECS task role, instance role).

    Only called when LLM_PROVIDER is unset, so tests and explicit configurations never pay for the
    credential chain's lookups.
    """
    import boto3  # imported here: config must stay cheap to import for tests

    return boto3.Session().get_credentials() is not None


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    credentials_available: Callable[[], bool] = aws_credentials_available,
) -> Settings:
    """Read and validate every setting; raise ``ConfigError`` listing all problems at once."""
    env = os.environ if env is None else env
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    sessions_dir = Path(get("SESSIONS_DIR") or DEFAULT_SESSIONS_DIR).expanduser()

    raw_models = get("BEDROCK_MODEL_IDS") or DEFAULT_MODEL_IDS
    model_ids = tuple(dict.fromkeys(p.strip() for p in raw_models.split(",") if p.strip()))
    bad_models = [m for m in model_ids if not _MODEL_ID.match(m)]
    if bad_models or not model_ids:
        problems.append(
            f"BEDROCK_MODEL_IDS={raw_models!r}: expected comma-separated model or inference "
            f"profile ids such as {DEFAULT_MODEL_IDS!r}; invalid: {bad_models}"
        )

    aws_region = get("AWS_REGION") or get("AWS_DEFAULT_REGION") or DEFAULT_AWS_REGION
    if not _REGION.match(aws_region):
        problems.append(f"AWS_REGION={aws_region!r}: expected a region name such as 'us-east-1'")

    raw_history = get("HISTORY_MAX_MESSAGES")
    history_max_messages = DEFAULT_HISTORY_MAX_MESSAGES
    if raw_history is not None:
        try:
            history_max_messages = int(raw_history)
        except ValueError:
            history_max_messages = 0
        if not 1 <= history_max_messages <= 1000:
            problems.append(
                f"HISTORY_MAX_MESSAGES={raw_history!r}: expected a whole number from 1 to 1000 "
                "(how many recent messages the model sees)"
            )

    raw_rate = get("ECHO_WORDS_PER_SECOND")
    echo_words_per_second = 0.0
    if raw_rate is not None:
        try:
            echo_words_per_second = float(raw_rate)
        except ValueError:
            echo_words_per_second = -1.0
        if not 0 <= echo_words_per_second <= 10_000:
            problems.append(
                f"ECHO_WORDS_PER_SECOND={raw_rate!r}: expected a number from 0 (no delay) to "
                "10000 (how fast the echo model streams its words)"
            )

    provider, provider_notice = _choose_provider(get("LLM_PROVIDER"), credentials_available)
    if provider is None:
        problems.append(
            f"LLM_PROVIDER={get('LLM_PROVIDER')!r}: expected 'bedrock' or 'echo', or leave it "
            "unset to use Bedrock when AWS credentials exist and the offline echo model otherwise"
        )

    if problems or provider is None:
        raise ConfigError("Invalid configuration:\n- " + "\n- ".join(problems))
    return Settings(
        project_name=PROJECT_NAME,
        sessions_dir=sessions_dir,
        provider=provider,
        provider_notice=provider_notice,
        model_ids=model_ids,
        aws_region=aws_region,
        system_prompt=get("SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
        history_max_messages=history_max_messages,
        echo_words_per_second=echo_words_per_second,
    )


def _choose_provider(
    raw: str | None, credentials_available: Callable[[], bool]
) -> tuple[ProviderName | None, str | None]:
    """An explicit LLM_PROVIDER wins; unset means Bedrock if there are credentials, else echo.

    The fallback keeps `uv run streamlit run app.py` working on a laptop with no AWS account, and
    the notice makes sure nobody mistakes the echo model for a real one.
    """
    if raw is None:
        if credentials_available():
            return "bedrock", None
        return "echo", (
            "No AWS credentials were found, so this page runs on the offline echo model: it "
            "repeats your message instead of asking Amazon Bedrock. Configure AWS credentials "
            "(for example `aws sso login` or AWS_PROFILE) and restart to talk to Bedrock."
        )
    name = raw.lower()
    if name == "bedrock":
        return "bedrock", None
    if name == "echo":
        return "echo", (
            "LLM_PROVIDER=echo: this page runs on the offline echo model, which repeats your "
            "message instead of asking Amazon Bedrock."
        )
    return None, None
