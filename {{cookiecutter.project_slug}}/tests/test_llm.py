"""Providers: the echo model, and Bedrock against a fake client that streams real event shapes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, EventStreamError

from core import llm
from core.config import load_settings
from core.llm import (
    MAX_ATTEMPTS,
    AccessDeniedError,
    BedrockProvider,
    EchoProvider,
    ProviderError,
    ReplyCutShortError,
    ThrottledError,
    estimate_tokens,
    make_bedrock_client,
    make_provider,
    to_bedrock_messages,
)
from core.messages import Message, Usage
from tests.fakes import FakeBedrockClient, text_event

MODEL = "us.amazon.nova-lite-v1:0"


def user(text: str) -> Message:
    return Message(role="user", content=text)


def assistant(text: str, *, incomplete: bool = False) -> Message:
    return Message(role="assistant", content=text, incomplete=incomplete)


def bedrock(client: FakeBedrockClient, history_max_messages: int = 20) -> BedrockProvider:
    return BedrockProvider(
        client,
        region="us-east-1",
        system_prompt="Be brief.",
        history_max_messages=history_max_messages,
    )


def client_error(code: str, message: str = "nope") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "ConverseStream")


def stream_error(code: str, message: str = "broken") -> EventStreamError:
    return EventStreamError({"Error": {"Code": code, "Message": message}}, "ConverseStream")


# --- Echo ---------------------------------------------------------------------------------------


def test_echo_streams_a_deterministic_reply_in_several_chunks() -> None:
    history = [user("first"), assistant("ok"), user("hello there")]
    chunks = list(EchoProvider().stream_reply(history, MODEL))
    assert len(chunks) > 1
    assert "".join(chunks) == f"Echo from {MODEL}: hello there"
    assert list(EchoProvider().stream_reply(history, MODEL)) == chunks


def test_echo_can_pace_its_words_like_a_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(llm.time, "sleep", pauses.append)
    chunks = list(EchoProvider(words_per_second=20).stream_reply([user("a b c")], MODEL))
    assert pauses == [0.05] * (len(chunks) - 1)  # between words, none before the first
    list(EchoProvider().stream_reply([user("a b c")], MODEL))
    assert len(pauses) == len(chunks) - 1  # no rate, no pause


# --- Message shaping ----------------------------------------------------------------------------


def test_messages_start_with_user_and_alternate() -> None:
    history = [
        assistant("stray greeting"),
        user("one"),
        user("two, after a failed call"),
        assistant("cut off", incomplete=True),
        assistant("   "),
        user("three"),
    ]
    assert to_bedrock_messages(history, 20) == [
        {"role": "user", "content": [{"text": "one\n\ntwo, after a failed call\n\nthree"}]}
    ]


def test_the_window_keeps_recent_messages_and_still_starts_with_user() -> None:
    history = [user("q1"), assistant("a1"), user("q2"), assistant("a2"), user("q3")]
    turns = to_bedrock_messages(history, 4)  # window [a1, q2, a2, q3] -> a1 dropped
    assert [(t["role"], t["content"][0]["text"]) for t in turns] == [
        ("user", "q2"),
        ("assistant", "a2"),
        ("user", "q3"),
    ]


# --- Bedrock ------------------------------------------------------------------------------------


def test_bedrock_streams_text_and_skips_other_events() -> None:
    events: list[Any] = [
        {"messageStart": {"role": "assistant"}},
        {
            "contentBlockDelta": {
                "contentBlockIndex": 0,
                "delta": {"reasoningContent": {"text": "…"}},
            }
        },
        text_event("Hello"),
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}},
        text_event(", world"),
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}}},
    ]
    client = FakeBedrockClient(events)
    chunks = list(bedrock(client).stream_reply([user("hi")], MODEL))
    assert chunks == ["Hello", ", world"]
    (call,) = client.calls
    assert call["modelId"] == MODEL
    assert call["system"] == [{"text": "Be brief."}]
    assert call["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]


def test_bedrock_sends_only_the_history_window() -> None:
    client = FakeBedrockClient([text_event("ok")])
    history = [user("old"), assistant("old answer"), user("new")]
    list(bedrock(client, history_max_messages=1).stream_reply(history, MODEL))
    assert client.calls[0]["messages"] == [{"role": "user", "content": [{"text": "new"}]}]


def test_a_reply_cut_by_the_length_limit_keeps_its_text_and_says_so() -> None:
    client = FakeBedrockClient([text_event("Long"), {"messageStop": {"stopReason": "max_tokens"}}])
    chunks: list[str] = []
    with pytest.raises(ReplyCutShortError) as caught:
        chunks.extend(bedrock(client).stream_reply([user("hi")], MODEL))
    assert chunks == ["Long"]
    assert "length limit" in caught.value.user_message


def test_access_denied_explains_how_to_enable_the_model() -> None:
    client = FakeBedrockClient(error=client_error("AccessDeniedException", "no access"))
    with pytest.raises(AccessDeniedError) as caught:
        list(bedrock(client).stream_reply([user("hi")], MODEL))
    message = caught.value.user_message
    assert MODEL in message
    assert "no access" in message
    assert "Amazon Bedrock console" in message
    assert "bedrock:InvokeModelWithResponseStream" in message


def test_throttling_after_retries_says_so() -> None:
    client = FakeBedrockClient(error=client_error("ThrottlingException"))
    with pytest.raises(ThrottledError) as caught:
        list(bedrock(client).stream_reply([user("hi")], MODEL))
    assert "retried" in caught.value.user_message
    assert caught.value.code == "ThrottlingException"


def test_an_error_in_the_middle_of_the_stream_comes_after_the_partial_text() -> None:
    client = FakeBedrockClient(
        [text_event("Partial "), text_event("answer"), stream_error("modelStreamErrorException")]
    )
    received: list[str] = []
    with pytest.raises(ProviderError) as caught:
        for chunk in bedrock(client).stream_reply([user("hi")], MODEL):
            received.append(chunk)
    assert received == ["Partial ", "answer"]
    assert caught.value.code == "modelStreamErrorException"
    assert "modelStreamErrorException" in caught.value.user_message


def test_throttling_in_the_stream_is_typed_too() -> None:
    client = FakeBedrockClient([text_event("x"), stream_error("throttlingException")])
    with pytest.raises(ThrottledError):
        list(bedrock(client).stream_reply([user("hi")], MODEL))


def test_an_unknown_model_points_at_the_configuration() -> None:
    client = FakeBedrockClient(error=client_error("ValidationException", "invalid model id"))
    with pytest.raises(ProviderError) as caught:
        list(bedrock(client).stream_reply([user("hi")], MODEL))
    assert "BEDROCK_MODEL_IDS" in caught.value.user_message


def test_network_failures_become_provider_errors() -> None:
    client = FakeBedrockClient(error=EndpointConnectionError(endpoint_url="https://bedrock"))
    with pytest.raises(ProviderError) as caught:
        list(bedrock(client).stream_reply([user("hi")], MODEL))
    assert "Could not reach Amazon Bedrock" in caught.value.user_message


def test_nothing_to_answer_is_refused_without_calling_bedrock() -> None:
    client = FakeBedrockClient()
    with pytest.raises(ProviderError):
        list(bedrock(client).stream_reply([assistant("only me")], MODEL))
    assert client.calls == []


# --- Wiring -------------------------------------------------------------------------------------


def test_the_real_client_retries_adaptively_in_the_configured_region() -> None:
    client = make_bedrock_client("eu-west-1")  # no call is made: no credentials needed
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS}


def test_settings_choose_the_provider() -> None:
    echo = make_provider(load_settings({"LLM_PROVIDER": "echo"}))
    bedrock_provider = make_provider(load_settings({"LLM_PROVIDER": "bedrock"}))
    assert (echo.name, bedrock_provider.name) == ("echo", "bedrock")


# --- Usage --------------------------------------------------------------------------------------


def metadata_event(tokens_in: int, tokens_out: int, latency_ms: int) -> dict[str, Any]:
    usage = {"inputTokens": tokens_in, "outputTokens": tokens_out}
    return {"metadata": {"usage": usage, "metrics": {"latencyMs": latency_ms}}}


def test_bedrock_reports_the_usage_of_the_metadata_event() -> None:
    events = [text_event("Hi"), {"messageStop": {"stopReason": "end_turn"}}]
    client = FakeBedrockClient([*events, metadata_event(812, 95, 640)])
    reported: list[Usage] = []
    assert list(bedrock(client).stream_reply([user("hi")], MODEL, reported.append)) == ["Hi"]
    assert reported == [Usage(812, 95, latency_ms=640, source="bedrock")]


def test_a_reply_cut_at_the_length_limit_still_reports_its_usage() -> None:
    stop = {"messageStop": {"stopReason": "max_tokens"}}
    client = FakeBedrockClient([text_event("Long"), stop, metadata_event(10, 2048, 9000)])
    reported: list[Usage] = []
    with pytest.raises(ReplyCutShortError):
        list(bedrock(client).stream_reply([user("hi")], MODEL, reported.append))
    assert [u.output_tokens for u in reported] == [2048]


@pytest.mark.parametrize(
    "metadata",
    [{}, {"usage": {"inputTokens": "5", "outputTokens": 1}}, {"usage": {"inputTokens": -1}}],
)
def test_malformed_metadata_reports_nothing(metadata: dict[str, Any]) -> None:
    client = FakeBedrockClient([text_event("Hi"), {"metadata": metadata}])
    reported: list[Usage] = []
    list(bedrock(client).stream_reply([user("hi")], MODEL, reported.append))
    assert reported == []


def test_the_echo_model_reports_an_estimate_marked_as_such() -> None:
    reported: list[Usage] = []
    reply = "".join(EchoProvider().stream_reply([user("12345678")], MODEL, reported.append))
    (usage,) = reported
    assert usage == Usage(2, estimate_tokens(reply), latency_ms=None, source="estimate")
