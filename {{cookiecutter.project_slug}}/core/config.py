"""Settings from the environment (12-factor), read and validated once at start-up.

Every knob the app has is an environment variable, so the same image runs on a laptop, in CI and on
ECS; the task definition in infra/app.yaml sets them there. Defaults come from the answers given
when the project was generated. A bad value fails fast with a message that names the variable, what
it got and what it expects, instead of surfacing later as a confusing Bedrock or file error.
README.md, section "Configuration", lists every variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

# The answers given when the project was generated live in project.json, as data: a project name
# may contain quotes, backslashes or any length of text, which is safe in JSON and would make
# generated Python fragile. Edit that file to rename the app or change the defaults.
_PROJECT = json.loads(Path(__file__).with_name("project.json").read_text(encoding="utf-8"))
PROJECT_NAME: str = _PROJECT["project_name"]
# Names the CloudWatch metric namespace (core/telemetry.py) that infra/app.yaml's alarms read.
PROJECT_SLUG: str = _PROJECT["project_slug"]
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
# A setting parsed as a whole number or as a decimal one (_number_in_range).
Number = TypeVar("Number", int, float)

# Sign-in settings (load_auth_settings), read apart from the rest: a mistake in them must show the
# "Sign-in is misconfigured" page and never let anyone past it, whatever the other settings say.
AUTH_ENVIRONMENT_VARIABLES = (
    "AUTH_MODE",
    "OIDC_SERVER_METADATA_URL",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_REDIRECT_URI",
    "OIDC_LOGOUT_URL",
    "ALLOWED_EMAIL_DOMAINS",
    "STREAMLIT_SERVER_COOKIE_SECRET",
)
# Streamlit signs the identity cookie with this secret: anyone who knows it can forge any person.
MIN_COOKIE_SECRET_LENGTH = 32
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LOOPBACK_NAMES = ("localhost",)

AuthMode = Literal["none", "oidc"]

# The variables this module reads, in the order README.md documents them.
ENVIRONMENT_VARIABLES = (
    "SESSIONS_DIR",
    "LLM_PROVIDER",
    "BEDROCK_MODEL_IDS",
    "AWS_REGION",
    "SYSTEM_PROMPT",
    "HISTORY_MAX_MESSAGES",
    *AUTH_ENVIRONMENT_VARIABLES,
    "DAILY_TOKEN_LIMIT",
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
    # Tokens (input + output) one person may use per UTC day; 0 means no limit.
    daily_token_limit: int = 0
    # 0 = the echo model answers at once; a rate makes it stream like a real model (benchmarks).
    echo_words_per_second: float = 0.0

    @property
    def default_model_id(self) -> str:
        return self.model_ids[0]


@dataclass(frozen=True)
class AuthSettings:
    """How people sign in. ``mode="none"``: anonymous, every other field empty.

    The two secrets are left out of ``repr`` so that no log line or traceback ever prints them.
    """

    mode: AuthMode
    server_metadata_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    redirect_uri: str = ""
    logout_url: str | None = None
    cookie_secret: str = field(default="", repr=False)
    allowed_email_domains: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.mode == "oidc"


def load_auth_settings(env: Mapping[str, str] | None = None) -> AuthSettings:
    """Read and validate the sign-in settings; raise ``ConfigError`` listing every problem.

    Unset (or empty) ``AUTH_MODE`` is ``none``: anonymous, exactly as before sign-in existed.
    Messages name the variable and what it expects; they never contain a secret's value.
    """
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    raw_mode = get("AUTH_MODE")
    mode = (raw_mode or "none").lower()
    if mode == "none":
        return AuthSettings(mode="none")
    if mode != "oidc":
        raise ConfigError(
            f"Invalid configuration:\n- AUTH_MODE={raw_mode!r}: expected 'oidc' (people sign in "
            "with an OpenID Connect provider) or 'none' (anonymous; the same as leaving it unset)"
        )

    problems: list[str] = []
    metadata_url = get("OIDC_SERVER_METADATA_URL") or ""
    if problem := _url_problem(metadata_url):
        problems.append(
            f"OIDC_SERVER_METADATA_URL={metadata_url!r}: {problem}; expected the provider's "
            "discovery document, e.g. 'https://login.example.com/.well-known/openid-configuration'"
        )
    redirect_uri = get("OIDC_REDIRECT_URI") or ""
    problem = _url_problem(redirect_uri)
    if problem is None and (
        urlsplit(redirect_uri).path != "/oauth2callback" or urlsplit(redirect_uri).query
    ):
        problem = "the path must be exactly /oauth2callback, with no query"
    if problem:
        problems.append(
            f"OIDC_REDIRECT_URI={redirect_uri!r}: {problem}; expected the app's own address "
            "followed by /oauth2callback, e.g. 'https://chat.example.com/oauth2callback' (the "
            "same value must be registered with the identity provider)"
        )
    logout_url = get("OIDC_LOGOUT_URL")
    if logout_url is not None and (problem := _url_problem(logout_url)):
        problems.append(
            f"OIDC_LOGOUT_URL={logout_url!r}: {problem}; expected the provider's sign-out "
            "address, or leave it unset to use the provider's end_session_endpoint"
        )
    client_id = get("OIDC_CLIENT_ID") or ""
    if not client_id:
        problems.append("OIDC_CLIENT_ID is not set: expected the app's client id at the provider")
    client_secret = get("OIDC_CLIENT_SECRET") or ""
    if not client_secret:
        problems.append(
            "OIDC_CLIENT_SECRET is not set: expected the app's client secret at the provider "
            "(on AWS it comes from Secrets Manager)"
        )
    cookie_secret = get("STREAMLIT_SERVER_COOKIE_SECRET") or ""
    if len(cookie_secret) < MIN_COOKIE_SECRET_LENGTH:
        # The length of a secret is not echoed either: the page shows this message to anyone.
        state = "is not set" if not cookie_secret else "is too short"
        problems.append(
            f"STREAMLIT_SERVER_COOKIE_SECRET {state}: sign-in needs a random secret of at least "
            f"{MIN_COOKIE_SECRET_LENGTH} characters, the same on every server (it signs the "
            "identity cookie; on AWS it comes from Secrets Manager)"
        )
    raw_domains = get("ALLOWED_EMAIL_DOMAINS") or ""
    domains = tuple(
        dict.fromkeys(d.strip().lower().removeprefix("@") for d in raw_domains.split(","))
    )
    domains = tuple(d for d in domains if d)
    bad_domains = [d for d in domains if not _DOMAIN.match(d)]
    if bad_domains:
        problems.append(
            f"ALLOWED_EMAIL_DOMAINS={raw_domains!r}: expected comma-separated domain names such "
            f"as 'example.com,example.org'; invalid: {bad_domains}"
        )
    if problems:
        raise ConfigError("Invalid sign-in configuration:\n- " + "\n- ".join(problems))
    return AuthSettings(
        mode="oidc",
        server_metadata_url=metadata_url,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        logout_url=logout_url,
        cookie_secret=cookie_secret,
        allowed_email_domains=domains,
    )


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a sign-in address, or None.

    https only: these addresses carry codes, tokens and the identity cookie. Plain http is
    accepted for loopback hosts alone, so a local provider can run in tests and on a laptop.
    """
    if not url:
        return "not set"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "not a valid URL"
    if not host or parts.scheme not in ("https", "http") or parts.username or parts.password:
        return "not an absolute http(s) URL without user name or password"
    if parts.scheme == "http" and not _is_loopback(host):
        return "plain http is allowed only for 127.0.0.1, ::1 or localhost; use https"
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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

    history_max_messages = _number_in_range(
        "HISTORY_MAX_MESSAGES",
        get("HISTORY_MAX_MESSAGES"),
        int,
        (1, 1000),
        DEFAULT_HISTORY_MAX_MESSAGES,
        "a whole number from 1 to 1000 (how many recent messages the model sees)",
        problems,
    )
    daily_token_limit = _number_in_range(
        "DAILY_TOKEN_LIMIT",
        get("DAILY_TOKEN_LIMIT"),
        int,
        (0, 1_000_000_000),
        0,
        "a whole number of tokens per person and UTC day, from 0 (no limit) to 1000000000",
        problems,
    )
    echo_words_per_second = _number_in_range(
        "ECHO_WORDS_PER_SECOND",
        get("ECHO_WORDS_PER_SECOND"),
        float,
        (0.0, 10_000.0),
        0.0,
        "a number from 0 (no delay) to 10000 (how fast the echo model streams its words)",
        problems,
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
        daily_token_limit=daily_token_limit,
        echo_words_per_second=echo_words_per_second,
    )


def _number_in_range(
    name: str,
    raw: str | None,
    parse: Callable[[str], Number],
    bounds: tuple[Number, Number],
    default: Number,
    expected: str,
    problems: list[str],
) -> Number:
    """``raw`` parsed with ``parse`` when it lies within ``bounds``; unset gives ``default``.

    Anything else (not a number, out of range, NaN) adds a problem naming the variable and what it
    expects, and the default stands in so that every other setting is still checked.
    """
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    low, high = bounds
    if value is None or not low <= value <= high:
        problems.append(f"{name}={raw!r}: expected {expected}")
        return default
    return value


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
