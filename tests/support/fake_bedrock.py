"""A local stand-in for the Amazon Bedrock Runtime ``ConverseStream`` API.

moto has no Converse API and botocore's Stubber cannot produce an event stream, so the honest way
to run the Bedrock path end to end offline is a real HTTP endpoint that speaks the real wire
format. boto3 is pointed at it with the standard ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` variable and
parses its answer with the same code that parses AWS's, so the app under test cannot tell the
difference (signatures are not checked: any static fake credentials do).

The wire format is ``application/vnd.amazon.eventstream``: a sequence of binary messages, each

    prelude:  total length (uint32 BE) | headers length (uint32 BE) | CRC32 of those 8 bytes
    headers:  name length (uint8) | name | type (uint8, 7 = string) | length (uint16 BE) | value
    payload:  the event as JSON
    trailer:  CRC32 of everything before it

with the headers ``:event-type``, ``:content-type`` and ``:message-type`` (``event``, or
``exception`` for an error in the middle of the stream).

A completed reply ends, as Bedrock's do, with a ``metadata`` event: ``usage`` (input, output and
total tokens) and ``metrics.latencyMs``. The fake has no tokenizer, so it counts about four
characters a token (``estimate_tokens``) of the text it was sent (system prompt and messages)
and of the reply, and reports the milliseconds it really spent answering; tests recompute the
same counts from the recorded request.
"""

from __future__ import annotations

import json
import math
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote

EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING_HEADER_TYPE = 7
_PRELUDE_LENGTH = 12
_TRAILER_LENGTH = 4


def _encode_header(name: str, value: str) -> bytes:
    """Encode one header; every header the Converse API sends is a string (type 7)."""
    name_bytes, value_bytes = name.encode("utf-8"), value.encode("utf-8")
    return (
        struct.pack(">B", len(name_bytes))
        + name_bytes
        + struct.pack(">BH", _STRING_HEADER_TYPE, len(value_bytes))
        + value_bytes
    )


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one event-stream message: prelude with its CRC, headers, payload, message CRC."""
    header_bytes = b"".join(_encode_header(name, value) for name, value in headers.items())
    total_length = _PRELUDE_LENGTH + len(header_bytes) + len(payload) + _TRAILER_LENGTH
    prelude = struct.pack(">II", total_length, len(header_bytes))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + header_bytes + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """One ``ConverseStream`` event (``messageStart``, ``contentBlockDelta``, ...)."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, json.dumps(payload).encode("utf-8"))


def exception_frame(exception_type: str, message: str) -> bytes:
    """An error in the middle of the stream; boto3 raises it as ``EventStreamError``."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode("utf-8"))


def estimate_tokens(text: str) -> int:
    """About four characters a token: the rule of thumb the fake uses in place of a tokenizer."""
    return math.ceil(len(text) / 4)


def request_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens of a ConverseStream request body: its system prompt and message texts."""
    blocks = [*body.get("system", []), *(c for m in body.get("messages", []) for c in m["content"])]
    return estimate_tokens("".join(block.get("text", "") for block in blocks))


def converse_stream_frames(
    chunks: Sequence[str],
    *,
    stop_reason: str = "end_turn",
    fail_after: int | None = None,
    failure: tuple[str, str] = ("modelStreamErrorException", "The model stopped unexpectedly."),
    input_tokens: int = 10,
    latency_ms: int = 1,
) -> list[bytes]:
    """The frames of one streamed assistant reply made of ``chunks`` of text.

    With ``fail_after=n`` the stream breaks after ``n`` text deltas with ``failure`` (exception
    type, message), the way a throttled or failing model breaks a reply that has already begun;
    such a stream has no metadata event. A completed one reports ``input_tokens``, the reply's
    estimated output tokens and ``latency_ms``.
    """
    frames = [event_frame("messageStart", {"role": "assistant"})]
    for index, chunk in enumerate(chunks):
        if fail_after is not None and index == fail_after:
            return [*frames, exception_frame(*failure)]
        frames.append(
            event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": chunk}})
        )
    if fail_after is not None and fail_after >= len(chunks):
        return [*frames, exception_frame(*failure)]
    output_tokens = estimate_tokens("".join(chunks))
    frames += [
        event_frame("contentBlockStop", {"contentBlockIndex": 0}),
        event_frame("messageStop", {"stopReason": stop_reason}),
        event_frame(
            "metadata",
            {
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": latency_ms},
            },
        ),
    ]
    return frames


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, kept so tests can assert what the app sent."""

    path: str
    model_id: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ErrorReply:
    """An error answered before any stream starts (boto3 raises it as ``ClientError``)."""

    status: int = 403
    error_type: str = "AccessDeniedException"
    message: str = "You don't have access to the model with the specified model ID."


@dataclass
class FakeBedrock:
    """A ``bedrock-runtime`` endpoint on 127.0.0.1 that answers ``converse-stream`` requests.

    Every request gets the reply described by ``reply_chunks`` (and ``fail_after``), or
    ``error`` when it is set. Use it as a context manager; ``endpoint_url`` goes into
    ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``.
    """

    reply_chunks: Sequence[str] = ("Hello ", "from ", "the ", "fake ", "Bedrock.")
    fail_after: int | None = None
    error: ErrorReply | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: _Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Bedrock endpoint is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def recorded(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far (the server appends from its threads)."""
        with self._lock:
            return list(self.requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class _Server(ThreadingHTTPServer):
    """The HTTP server, carrying the fake whose settings and request log the handler uses."""

    daemon_threads = True
    fake: FakeBedrock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked replies, as boto3's pool expects
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: pytest shows the test's own output, and requests are recorded anyway."""

    def do_POST(self) -> None:
        received = time.monotonic()
        fake = self.server.fake
        length = int(self.headers.get("Content-Length", "0"))
        raw_body = self.rfile.read(length)
        parts = self.path.split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] != "converse-stream":
            self._send_error(404, "UnknownOperationException", f"No operation at {self.path}")
            return
        try:
            body = json.loads(raw_body or b"{}")
        except json.JSONDecodeError:
            self._send_error(400, "ValidationException", "The request body is not JSON.")
            return
        fake._record(
            RecordedRequest(
                path=self.path, model_id=unquote(parts[2]), headers=dict(self.headers), body=body
            )
        )
        if fake.error is not None:
            self._send_error(fake.error.status, fake.error.error_type, fake.error.message)
            return
        self.send_response(200)
        self.send_header("Content-Type", EVENT_STREAM_CONTENT_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        # One HTTP chunk per frame, flushed at once, so the client really receives a stream.
        frames = converse_stream_frames(
            fake.reply_chunks,
            fail_after=fake.fail_after,
            input_tokens=request_tokens(body),
            latency_ms=max(1, round((time.monotonic() - received) * 1000)),
        )
        for frame in frames:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_error(self, status: int, error_type: str, message: str) -> None:
        """An AWS JSON error: boto3 reads the code from ``x-amzn-ErrorType``."""
        payload = json.dumps({"message": message}).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)
