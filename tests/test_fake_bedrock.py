"""The fake Bedrock endpoint speaks the real wire format: botocore and boto3 accept its answers.

The end-to-end test trusts this fake to stand in for Amazon Bedrock, so the fake is checked here
against AWS's own client code, not against a second copy of our assumptions.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator

import boto3
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from tests.support.fake_bedrock import (
    ErrorReply,
    FakeBedrock,
    converse_stream_frames,
    encode_message,
    estimate_tokens,
    event_frame,
    request_tokens,
)

MODEL_ID = "us.amazon.nova-lite-v1:0"


def test_frames_decode_with_botocore_parser() -> None:
    frames = converse_stream_frames(["Hel", "lo"])
    buffer = EventStreamBuffer()
    # Feed the bytes in awkward pieces: the parser must find frame boundaries on its own.
    data = b"".join(frames)
    for start in range(0, len(data), 7):
        buffer.add_data(data[start : start + 7])
    messages = list(buffer)

    assert [m.headers[":event-type"] for m in messages] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    for message in messages:
        assert message.headers[":message-type"] == "event"
        assert message.headers[":content-type"] == "application/json"
    deltas = [json.loads(m.payload)["delta"]["text"] for m in messages[1:3]]
    assert deltas == ["Hel", "lo"]
    assert json.loads(messages[4].payload) == {"stopReason": "end_turn"}
    assert json.loads(messages[5].payload) == {
        "usage": {"inputTokens": 10, "outputTokens": 2, "totalTokens": 12},
        "metrics": {"latencyMs": 1},
    }


def test_frame_layout_matches_the_specification() -> None:
    frame = encode_message({":event-type": "x"}, b"{}")
    total_length, headers_length, prelude_crc = struct.unpack(">III", frame[:12])
    assert total_length == len(frame)
    assert prelude_crc == zlib.crc32(frame[:8])
    # 1 byte name length + ":event-type" + 1 byte type + 2 bytes value length + "x"
    assert headers_length == 1 + len(":event-type") + 1 + 2 + 1
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])


def test_corrupted_frame_is_rejected_by_botocore() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-6] ^= 0xFF  # flip a payload byte; the message CRC no longer matches
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(frame))
    with pytest.raises(ChecksumMismatch):
        next(buffer)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake static credentials, as the end-to-end test gives the app; nothing reaches AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    # botocore reads AWS_DEFAULT_REGION only; AWS_REGION (what ECS sets) is the app's to pass on.
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    yield


def _stream(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch, text: str) -> Iterator[dict]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint_url)
    client = boto3.client("bedrock-runtime")
    response = client.converse_stream(
        modelId=MODEL_ID,
        messages=[{"role": "user", "content": [{"text": text}]}],
        system=[{"text": "Be brief."}],
    )
    return iter(response["stream"])


@pytest.mark.usefixtures("aws_env")
def test_boto3_converse_stream_against_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeBedrock(reply_chunks=["Bonjour ", "le ", "monde"]) as fake:
        events = list(_stream(fake, monkeypatch, "Say hello in French"))

    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == "Bonjour le monde"
    assert events[0] == {"messageStart": {"role": "assistant"}}
    assert {"messageStop": {"stopReason": "end_turn"}} in events
    (request,) = fake.recorded()
    usage, metrics = events[-1]["metadata"]["usage"], events[-1]["metadata"]["metrics"]
    # What boto3 hands the app: Bedrock's usage fields and its latency, counted from the request.
    assert usage == {
        "inputTokens": request_tokens(request.body),
        "outputTokens": estimate_tokens("Bonjour le monde"),
        "totalTokens": request_tokens(request.body) + estimate_tokens("Bonjour le monde"),
    }
    assert usage["inputTokens"] == estimate_tokens("Be brief.Say hello in French") == 7
    assert isinstance(metrics["latencyMs"], int) and metrics["latencyMs"] >= 1

    assert request.model_id == MODEL_ID
    assert request.body["messages"] == [
        {"role": "user", "content": [{"text": "Say hello in French"}]}
    ]
    assert request.body["system"] == [{"text": "Be brief."}]
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 ")


@pytest.mark.usefixtures("aws_env")
def test_error_in_the_middle_of_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeBedrock(reply_chunks=["partial ", "reply"], fail_after=1) as fake:
        stream = _stream(fake, monkeypatch, "hi")
        assert next(stream) == {"messageStart": {"role": "assistant"}}
        assert next(stream)["contentBlockDelta"]["delta"]["text"] == "partial "
        with pytest.raises(EventStreamError) as raised:
            next(stream)  # and no metadata event: a broken stream reports no usage
    assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"


@pytest.mark.usefixtures("aws_env")
def test_error_before_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeBedrock(error=ErrorReply()) as fake, pytest.raises(ClientError) as raised:
        _stream(fake, monkeypatch, "hi")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
