"""Export: the open conversation as Markdown, all of a person's conversations as JSON Lines.

The memory test uses tracemalloc: the peak of what Python allocates while exporting many
conversations must stay far below their total size, which proves they are read one at a time.
"""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

from core import export
from core.identity import owner_id_for
from core.messages import Message, Usage
from core.sessions import SessionStore, new_session_key

MODEL = "us.amazon.nova-lite-v1:0"


def turn(number: int) -> list[Message]:
    return [
        Message("user", f"question {number}", created_at=f"2030-01-01T00:00:{number % 60:02d}Z"),
        Message(
            "assistant",
            f"answer {number}\nwith *markdown*",
            created_at=f"2030-01-01T00:01:{number % 60:02d}Z",
            model=MODEL,
            usage=Usage(3, 5, 120),
        ),
    ]


def test_a_thousand_message_conversation_exports_as_markdown_and_jsonl(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    key = owner_id_for("https://issuer.example", "person-1")
    conversation = store.create_conversation(key, "Long one")
    for number in range(500):
        store.append_messages(key, conversation, turn(number))
    history = store.read_messages(key, conversation)
    assert len(history) == 1000

    markdown = "".join(export.conversation_markdown("Long one", history))
    assert markdown.startswith("# Long one\n")
    assert markdown.count("\n## You · ") == 500
    assert markdown.count(f"\n## Assistant ({MODEL}) · ") == 500
    assert "question 499" in markdown and "answer 0\nwith *markdown*" in markdown
    first_turn = [markdown.index(text) for text in ("question 0\n", "answer 0", "question 1\n")]
    assert first_turn == sorted(first_turn)

    out = io.BytesIO()
    written = export.write_export(export.conversations_jsonl(store, key), out)
    lines = out.getvalue().decode("utf-8").splitlines()
    assert written == len(out.getvalue())
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record["id"], record["title"]) == (conversation, "Long one")
    restored = [Message.from_dict(item) for item in record["messages"]]
    assert restored == history
    assert {item["model"] for item in record["messages"][1::2]} == {MODEL}
    assert record["messages"][0]["created_at"] == "2030-01-01T00:00:00Z"


def test_all_conversations_export_only_that_persons_newest_first(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    mine, theirs = new_session_key(), new_session_key()
    first = store.create_conversation(mine, "First")
    store.append_messages(mine, first, turn(1))
    second = store.create_conversation(mine, "Second")
    store.append_messages(mine, second, turn(2))
    store.create_conversation(mine, "Never used")  # no messages: nothing to export
    other = store.create_conversation(theirs, "Not mine")
    store.append_messages(theirs, other, [Message("user", "secret of someone else")])

    out = io.BytesIO()
    export.write_export(export.conversations_jsonl(store, mine), out)
    records = [json.loads(line) for line in out.getvalue().decode("utf-8").splitlines()]
    assert [r["title"] for r in records] == ["Second", "First"]
    assert b"someone else" not in out.getvalue()


def test_an_incomplete_reply_says_so_in_markdown() -> None:
    cut = Message("assistant", "half an ans", model=MODEL, incomplete=True, error="throttled")
    markdown = "".join(export.conversation_markdown("T", [Message("user", "q"), cut]))
    assert "half an ans\n" in markdown
    assert "_This reply was cut short: throttled._" in markdown


def test_exporting_many_conversations_holds_one_at_a_time(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    key = new_session_key()
    body = "x" * 2000
    for number in range(40):
        conversation = store.create_conversation(key, f"Conversation {number}")
        store.append_messages(
            key, conversation, [Message("user", f"{number} {body}") for _ in range(100)]
        )
    total_bytes = sum(path.stat().st_size for path in (tmp_path / key).glob("*-*.jsonl"))
    assert total_bytes > 8_000_000

    exporter = SessionStore(tmp_path)  # a fresh process's store: nothing cached yet
    counted: list[int] = []

    class Counting(io.RawIOBase):
        """Counts what is written and keeps nothing, like a file on disk."""

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            counted.append(len(data))
            return len(data)

    tracemalloc.start()
    try:
        export.write_export(export.conversations_jsonl(exporter, key), Counting())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(counted) == 40
    assert sum(counted) > total_bytes  # everything was exported ...
    assert peak < total_bytes / 4  # ... without ever holding more than a few conversations
