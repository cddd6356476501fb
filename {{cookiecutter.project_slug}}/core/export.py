"""A person's conversations as files they can keep: one as Markdown, all of them as JSON Lines.

Both exports are generators of text pieces, read from the store one conversation at a time, so
memory holds at most one conversation however many a person has. Each conversation is read
through a throwaway ``SessionStore`` on the same root: the store keeps what it parses in a cache
(up to 16 MB of file data per store), and an export of everything must neither fill the page's
cache with old conversations nor keep them all alive until it ends.

Formats (every message carries its role, time and, for replies, the model that wrote it):

- Markdown: a title line, then one section per message. Message text is written as it was typed,
  so Markdown in it renders as Markdown; it is the person's own text, shown back to that person.
- JSON Lines (UTF-8): one line per conversation, most recently active first::

    {"id": "...", "title": "...", "created_at": "...", "updated_at": "...",
     "messages": [{"role": "user", "content": "...", "created_at": "...", "model": null, ...}]}

  The message objects are exactly what the store keeps (``Message.to_dict``), so an export can be
  read back with ``Message.from_dict``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.messages import Message
from core.sessions import ConversationSummary, CorruptConversationError, SessionStore

__all__ = [
    "conversation_markdown",
    "conversations_jsonl",
    "write_export",
]


def _speaker(message: Message) -> str:
    if message.role == "user":
        return "You"
    return f"Assistant ({message.model})" if message.model else "Assistant"


def conversation_markdown(title: str, messages: list[Message]) -> Iterator[str]:
    """The open conversation as Markdown, one piece per message (the page already holds it)."""
    yield f"# {title}\n"
    for message in messages:
        yield f"\n## {_speaker(message)} · {message.created_at}\n\n"
        yield message.content.rstrip("\n") + "\n"
        if message.incomplete:
            yield f"\n_This reply was cut short: {message.error or 'no reason was recorded'}._\n"


def _read_alone(root: Path, session_key: str, conversation_id: str) -> list[Message] | None:
    """One conversation's messages through a store of its own (see the module docstring), or None
    if it could not be read (the store has then moved it to quarantine, as the page would)."""
    try:
        return SessionStore(root).read_messages(session_key, conversation_id)
    except CorruptConversationError:
        return None


def conversations_jsonl(store: SessionStore, session_key: str) -> Iterator[str]:
    """Every listed conversation of ``session_key`` as one JSON line each, read one at a time.

    A conversation deleted while the export runs reads as empty and is left out; one that turns
    out to be corrupt is left out too (it is quarantined, and the page says so when it is opened).
    """
    summaries: list[ConversationSummary] = store.list_conversations(session_key)
    for summary in summaries:
        messages = _read_alone(store.root, session_key, summary.id)
        if not messages:
            continue
        record = {
            "id": summary.id,
            "title": summary.title,
            "created_at": summary.created_at,
            "updated_at": summary.updated_at,
            "messages": [message.to_dict() for message in messages],
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"
        del messages, record  # only one conversation is ever alive


def write_export(pieces: Iterator[str], out: BinaryIO) -> int:
    """Write the pieces to ``out`` as UTF-8 as they come; returns the number of bytes written.

    A lone surrogate (pasted text can carry one) has no UTF-8 form and is written as "?".
    """
    written = 0
    for piece in pieces:
        data = piece.encode("utf-8", errors="replace")
        out.write(data)
        written += len(data)
    return written
