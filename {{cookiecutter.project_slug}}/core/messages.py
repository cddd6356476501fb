"""The message record shared by the session store, the model providers and the UI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Role = Literal["user", "assistant"]


def utc_now() -> str:
    """Timestamps are ISO 8601 in UTC so files sort and compare the same on every host."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Message:
    """One chat message as it is stored and shown.

    ``incomplete`` marks an assistant reply cut short by an error in the middle of the stream: the
    partial text is kept (it cost tokens and may be useful) but is never passed back to the model
    as if it were a finished answer. ``error`` holds the reason shown to the user.
    """

    role: Role
    content: str
    created_at: str = field(default_factory=utc_now)
    model: str | None = None
    incomplete: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
        )
