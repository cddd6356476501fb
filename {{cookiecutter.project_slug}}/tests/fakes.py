"""Test doubles for the two things tests cannot use for real: the browser and Amazon Bedrock.

Nothing here touches the network or AWS: Bedrock is replaced by a fake client that yields the same
event dictionaries boto3 yields for ConverseStream, and the browser's localStorage by an attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from core.messages import Usage


class FakeBrowser:
    """The browser's localStorage, shared by every page load ("AppTest") of one test.

    ``writes`` records each write so tests can check a minted key reached the browser.
    """

    def __init__(self, stored: object = None) -> None:
        self.stored = stored
        self.writes: list[str] = []

    def read(self) -> object:
        return self.stored

    def write(self, value: str) -> None:
        self.writes.append(value)
        self.stored = value


def text_event(text: str) -> dict[str, Any]:
    return {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": text}}}


class FakeBedrockClient:
    """Stands in for boto3's bedrock-runtime client (moto and Stubber cannot stream Converse).

    ``events`` is what the stream yields; an exception in it is raised at that point of the stream,
    as botocore raises EventStreamError. ``error`` is raised by the call itself, before any stream.
    """

    def __init__(self, events: Iterable[Any] = (), error: Exception | None = None) -> None:
        self.events = list(events)
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def converse_stream(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"stream": self._stream()}

    def _stream(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event


class ScriptedProvider:
    """A provider that yields fixed chunks, then optionally fails: the chat turn's view of a model.

    ``seen`` keeps the history each call received, to check what the model was shown; ``usage``
    is reported after the chunks, as Bedrock's metadata event comes last.
    """

    name = "scripted"

    def __init__(
        self,
        chunks: Iterable[str] = (),
        error: Exception | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.error = error
        self.usage = usage
        self.seen: list[list[Any]] = []

    def stream_reply(
        self, history: Any, model_id: str, on_usage: Callable[[Usage], None] | None = None
    ) -> Iterator[str]:
        self.seen.append(list(history))
        yield from self.chunks
        if self.usage is not None and on_usage is not None:
            on_usage(self.usage)
        if self.error is not None:
            raise self.error
