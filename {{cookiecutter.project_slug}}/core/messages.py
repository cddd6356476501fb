"""The message record shared by the session store, the model providers and the UI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Role = Literal["user", "assistant"]
# Where a reply's token counts come from: Bedrock's own ``metadata`` event, or an estimate made by
# the offline echo model (about four characters a token), which costs nothing and is never priced.
UsageSource = Literal["bedrock", "estimate"]


def utc_now() -> str:
    """Timestamps are ISO 8601 in UTC so files sort and compare the same on every host."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _count(value: object) -> int | None:
    """A token count or a latency from stored JSON: a non-negative int, anything else is None."""
    return value if type(value) is int and value >= 0 else None


@dataclass(frozen=True)
class Usage:
    """What one model call consumed, as the provider reported it.

    ``latency_ms`` is Bedrock's own ``metrics.latencyMs`` (time spent inside Bedrock), not what the
    page waited; it is None for estimates. Only ``source == "bedrock"`` usage is ever priced.
    """

    input_tokens: int
    output_tokens: int
    latency_ms: int | None = None
    source: UsageSource = "bedrock"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_dict(cls, data: object) -> Usage | None:
        """Usage from stored JSON, or None if absent or malformed (usage is informative only:
        a damaged counter must never make a conversation unreadable)."""
        if not isinstance(data, dict):
            return None
        tokens_in, tokens_out = _count(data.get("input_tokens")), _count(data.get("output_tokens"))
        source = data.get("source")
        if tokens_in is None or tokens_out is None or source not in ("bedrock", "estimate"):
            return None
        return cls(tokens_in, tokens_out, _count(data.get("latency_ms")), source)


@dataclass(frozen=True)
class Message:
    """One chat message as it is stored and shown.

    ``incomplete`` marks an assistant reply cut short by an error in the middle of the stream: the
    partial text is kept (it cost tokens and may be useful) but is never passed back to the model
    as if it were a finished answer. ``error`` holds the reason shown to the user.

    ``usage`` (assistant replies only) is what the reply cost in tokens. It was added after the
    first release: files written before have no such field and read as ``usage=None``, and older
    versions of this class ignore it, so a rolling deploy can mix both.
    """

    role: Role
    content: str
    created_at: str = field(default_factory=utc_now)
    model: str | None = None
    incomplete: bool = False
    error: str | None = None
    usage: Usage | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.usage is None:
            del data["usage"]  # user messages and old-style replies keep their original shape
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Build a message from stored JSON; raises ``ValueError`` on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("a message must be a JSON object")
        role, content = data.get("role"), data.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ValueError("a message needs a role of 'user' or 'assistant' and text content")
        created_at = data.get("created_at")
        model, error = data.get("model"), data.get("error")
        return cls(
            role=role,
            content=content,
            created_at=created_at if isinstance(created_at, str) else utc_now(),
            model=model if isinstance(model, str) else None,
            incomplete=bool(data.get("incomplete", False)),
            error=error if isinstance(error, str) else None,
            usage=Usage.from_dict(data.get("usage")),
        )
