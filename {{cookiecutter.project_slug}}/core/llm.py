"""Model providers: Amazon Bedrock (ConverseStream) and an offline echo model.

Both implement ``Provider``: take the stored conversation, yield the reply as text chunks, and
report the tokens the call consumed through a callback (Bedrock's ``metadata`` event, or the echo
model's marked estimate). Every
failure comes out as a ``ProviderError`` whose ``user_message`` is written for the person in front
of the page (what happened, what to do), so the UI shows it as is and core/chat.py can keep a
partial reply. Nothing here imports Streamlit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from core.config import Settings
from core.messages import Message, Usage

# Called at most once per reply with what the call consumed (see ``Provider.stream_reply``).
UsageCallback = Callable[[Usage], None]

# botocore retries throttling and transient errors before the stream starts. "adaptive" adds a
# client-side rate limiter on top of exponential backoff, which suits many users sharing one task.
# Four attempts in all (botocore's `max_attempts` would count retries only) keep the wait before
# the page explains a throttle to some seconds, not a minute.
MAX_ATTEMPTS = 4
# Read timeout is the longest silence between two chunks; long prompts can take a while to start.
READ_TIMEOUT_SECONDS = 120
MAX_REPLY_TOKENS = 2048


class ProviderError(Exception):
    """A model call failed; ``user_message`` explains it to the user, ``code`` is for logs."""

    def __init__(self, user_message: str, *, code: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code


class AccessDeniedError(ProviderError):
    """The model is not enabled for the account or the IAM role may not invoke it."""


class ThrottledError(ProviderError):
    """Bedrock kept throttling after botocore's retries, or throttled in the middle of a stream."""


class ReplyCutShortError(ProviderError):
    """The model stopped at the reply length limit (``stopReason`` ``max_tokens``)."""


class Provider(Protocol):
    """Anything that turns a conversation into a streamed reply."""

    name: str

    def stream_reply(
        self,
        history: Sequence[Message],
        model_id: str,
        on_usage: UsageCallback | None = None,
    ) -> Iterator[str]:
        """Yield the reply to ``history`` (which ends with the new user message) chunk by chunk.

        Raises ``ProviderError`` before or between chunks; chunks already yielded stay valid.
        ``on_usage`` is called once when the provider learns what the call consumed (for Bedrock,
        at the end of the stream; a stream that breaks early reports nothing).
        """
        ...


# --- Echo -------------------------------------------------------------------------------------


class EchoProvider:
    """An offline stand-in for Bedrock: no account, no network, the same reply every time.

    It streams word by word so the UI, the store and the tests exercise the real streaming path.
    Its usage is an honest estimate, marked ``source="estimate"``: about four characters a token
    for the history it was shown and the reply it wrote. No price applies (nothing is billed), but
    the tokens count towards the daily allowance, so the budget can be tried without an account.
    With ``words_per_second`` (ECHO_WORDS_PER_SECOND) it paces the words like a real model, so a
    load test holds each turn open as long as Bedrock would.
    """

    name = "echo"

    def __init__(self, words_per_second: float = 0.0) -> None:
        self._pause = 1 / words_per_second if words_per_second > 0 else 0.0

    def stream_reply(
        self,
        history: Sequence[Message],
        model_id: str,
        on_usage: UsageCallback | None = None,
    ) -> Iterator[str]:
        last_user = next((m.content for m in reversed(history) if m.role == "user"), "")
        reply = f"Echo from {model_id}: {last_user}"
        words = reply.split(" ")
        for index, word in enumerate(words):
            if self._pause and index:
                time.sleep(self._pause)
            yield word if index == len(words) - 1 else word + " "
        if on_usage is not None:
            shown = sum(estimate_tokens(m.content) for m in history)
            on_usage(Usage(shown, estimate_tokens(reply), latency_ms=None, source="estimate"))


def estimate_tokens(text: str) -> int:
    """A rough token count (four characters a token, the usual rule of thumb for English)."""
    return math.ceil(len(text) / 4)


# --- Bedrock ----------------------------------------------------------------------------------


def to_bedrock_messages(history: Sequence[Message], max_messages: int) -> list[dict[str, Any]]:
    """Turn stored messages into a valid ``messages`` list for the Converse API.

    Bedrock requires the list to start with a user turn and roles to alternate, and rejects empty
    text. Stored history does not always look like that: a failed call leaves two user messages in
    a row, and an incomplete reply must never be presented to the model as a finished answer. So:
    drop incomplete or empty replies, keep the last ``max_messages`` (the context window is finite
    and every token is paid for), drop leading assistant turns, and merge consecutive same-role
    messages into one turn.
    """
    usable = [
        m for m in history if m.content.strip() and not (m.role == "assistant" and m.incomplete)
    ]
    window = usable[-max_messages:]
    while window and window[0].role != "user":
        window = window[1:]
    turns: list[dict[str, Any]] = []
    for message in window:
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"][0]["text"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": [{"text": message.content}]})
    return turns


def make_bedrock_client(region: str) -> Any:
    """A bedrock-runtime client with adaptive retries; honours AWS_ENDPOINT_URL_BEDROCK_RUNTIME."""
    import boto3  # imported lazily: the echo path and the tests need no AWS SDK start-up
    from botocore.config import Config

    config = Config(
        retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=10,
        read_timeout=READ_TIMEOUT_SECONDS,
    )
    return boto3.client("bedrock-runtime", region_name=region, config=config)


class BedrockProvider:
    """Streams replies from Amazon Bedrock with ``converse_stream``.

    The client is injected so tests can pass a fake that yields ConverseStream events; production
    code gets one from ``make_bedrock_client``.
    """

    name = "bedrock"

    def __init__(
        self, client: Any, *, region: str, system_prompt: str, history_max_messages: int
    ) -> None:
        self._client = client
        self._region = region
        self._system_prompt = system_prompt
        self._history_max_messages = history_max_messages

    def stream_reply(
        self,
        history: Sequence[Message],
        model_id: str,
        on_usage: UsageCallback | None = None,
    ) -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError, EventStreamError

        messages = to_bedrock_messages(history, self._history_max_messages)
        if not messages:
            raise ProviderError("There is no message to answer yet: type one and send it.")
        try:
            response = self._client.converse_stream(
                modelId=model_id,
                messages=messages,
                system=[{"text": self._system_prompt}],
                inferenceConfig={"maxTokens": MAX_REPLY_TOKENS},
            )
            cut_short = False
            for event in response["stream"]:
                text = _text_of(event)
                if text:
                    yield text
                stop = event.get("messageStop")
                if stop and stop.get("stopReason") == "max_tokens":
                    cut_short = True  # raised after the stream: the metadata event comes last
                usage = _usage_of(event)
                if usage is not None and on_usage is not None:
                    on_usage(usage)
            if cut_short:
                # Raised, not appended to the text: the reply is kept and marked incomplete,
                # so a truncated answer is never sent back to the model as a finished one.
                raise ReplyCutShortError(
                    f"The reply reached the length limit ({MAX_REPLY_TOKENS} tokens) and "
                    "was cut short. Ask for a shorter answer, or to continue from there.",
                    code="max_tokens",
                )
        # EventStreamError is a ClientError raised while reading the stream: catch it first.
        except EventStreamError as error:
            raise self._translate(error, model_id) from error
        except ClientError as error:
            raise self._translate(error, model_id) from error
        except BotoCoreError as error:
            raise ProviderError(
                f"Could not reach Amazon Bedrock in {self._region} ({type(error).__name__}). "
                "Check the network path to the bedrock-runtime endpoint and try again.",
                code=type(error).__name__,
            ) from error

    def _translate(self, error: Any, model_id: str) -> ProviderError:
        """Map a Bedrock error code (``AccessDeniedException``, ``throttlingException``...) to
        a typed error with advice. Codes are compared case-insensitively: the stream reports
        them in camelCase, the HTTP API in PascalCase."""
        details = error.response.get("Error", {})
        code = str(details.get("Code") or "Unknown")
        aws_message = str(details.get("Message") or error)
        kind = code.lower().removesuffix("exception")
        if kind == "accessdenied":
            return AccessDeniedError(
                f"Amazon Bedrock denied access to the model {model_id} in {self._region}: "
                f"{aws_message}\n\nTo enable it, open the Amazon Bedrock console in "
                f"{self._region}, find the model in the Model catalog and open it in the "
                "playground once (for Anthropic models, submit the first-time use case form; "
                "third-party models also need AWS Marketplace subscribe permissions). If the "
                "model is enabled, the IAM role running this app needs bedrock:InvokeModel and "
                "bedrock:InvokeModelWithResponseStream on the inference profile and on the "
                "foundation models it routes to.",
                code=code,
            )
        if kind in ("throttling", "servicequotaexceeded", "toomanyrequests"):
            return ThrottledError(
                f"Amazon Bedrock is throttling requests for {model_id}. The app already "
                f"retried with backoff ({MAX_ATTEMPTS} attempts in all) without success. Wait "
                "a few seconds and send your message again, or pick another model. If this "
                "happens often, ask for a higher quota in Service Quotas.",
                code=code,
            )
        if kind in ("validation", "resourcenotfound"):
            return ProviderError(
                f"Amazon Bedrock rejected the request to {model_id}: {aws_message}. Check that "
                f"the model id is right and offered in {self._region} (BEDROCK_MODEL_IDS); a "
                "very long conversation may also exceed the model's context: start a new one.",
                code=code,
            )
        if kind in ("unrecognizedclient", "expiredtoken", "invalidsignature"):
            return ProviderError(
                f"The AWS credentials were rejected ({code}): {aws_message}. Refresh them (for "
                "example `aws sso login`) and restart the app.",
                code=code,
            )
        return ProviderError(
            f"Amazon Bedrock failed while answering ({code}): {aws_message}. This is usually "
            "temporary: send your message again in a moment.",
            code=code,
        )


def _text_of(event: dict[str, Any]) -> str:
    """The text of a ``contentBlockDelta`` event, or "" for anything else.

    Tool-use and reasoning deltas, message start/stop and usage metadata carry no text for the
    user and are skipped rather than rendered as raw dictionaries.
    """
    delta = event.get("contentBlockDelta", {}).get("delta", {})
    text = delta.get("text")
    return text if isinstance(text, str) else ""


def _usage_of(event: dict[str, Any]) -> Usage | None:
    """The usage of a ``metadata`` event (``usage.inputTokens``/``outputTokens``,
    ``metrics.latencyMs``), or None for any other event or a malformed one."""
    metadata = event.get("metadata")
    if not isinstance(metadata, dict):
        return None
    usage, metrics = metadata.get("usage") or {}, metadata.get("metrics") or {}
    tokens_in, tokens_out = usage.get("inputTokens"), usage.get("outputTokens")
    if type(tokens_in) is not int or type(tokens_out) is not int or min(tokens_in, tokens_out) < 0:
        return None
    latency = metrics.get("latencyMs")
    return Usage(tokens_in, tokens_out, latency if type(latency) is int else None, "bedrock")


def make_provider(settings: Settings) -> Provider:
    """The provider the settings ask for; Bedrock gets a real boto3 client."""
    if settings.provider == "echo":
        return EchoProvider(settings.echo_words_per_second)
    return BedrockProvider(
        make_bedrock_client(settings.aws_region),
        region=settings.aws_region,
        system_prompt=settings.system_prompt,
        history_max_messages=settings.history_max_messages,
    )
