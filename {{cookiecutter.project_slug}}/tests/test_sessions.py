"""The conversation store: round trips, hostile input, concurrent writers, crashes, corruption.

Concurrency and crash tests use real, separate processes (tests/sessions_worker.py, as unrelated
tasks on different hosts would be) and real SIGKILLs. Nothing here asserts on timing.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core import sessions
from core.messages import Message
from core.sessions import (
    DEFAULT_TITLE,
    ConversationNotFoundError,
    CorruptConversationError,
    SessionStore,
    UnsafePathError,
    new_session_key,
    parse_session_key,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Only a guard against a hung child hanging the whole run; no test depends on how long things take.
GUARD_SECONDS = 120


def ticking_clock() -> Callable[[], str]:
    """A clock that advances one second per call, so ordering never depends on the real clock."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ticks = itertools.count()
    return lambda: (start + timedelta(seconds=next(ticks))).isoformat(timespec="milliseconds")


def user(text: str) -> Message:
    return Message(role="user", content=text)


def contents(messages: list[Message]) -> list[str]:
    return [message.content for message in messages]


def conversation_file(store: SessionStore, session_key: str, conversation_id: str) -> Path:
    return store.root / session_key / f"{conversation_id}.jsonl"


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` with its bytes (or link target): proves nothing changed."""
    result: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            result[key] = f"-> {os.readlink(path)}"
        elif path.is_file():
            result[key] = path.read_bytes()
        else:
            result[key] = "dir"
    return result


@pytest.fixture
def clocked_store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions", clock=ticking_clock())


# --- keys and ids --------------------------------------------------------------------------------

VALID = "0f8fad5b-d9cb-469f-a165-70867728950e"
HOSTILE: list[Any] = [
    "",
    "..",
    "../etc",
    "../../../../etc/passwd",
    "/etc/passwd",
    f"{VALID}/../../etc",
    f"../{VALID}",
    f"{VALID}\n",
    f" {VALID}",
    f"{VALID}\x00",
    VALID.upper(),
    "{" + VALID + "}",
    f"urn:uuid:{VALID}",
    VALID.replace("-", ""),
    str(uuid.uuid1()),  # version 1: not random, embeds the host MAC and a time
    "0f8fad5b-d9cb-569f-a165-70867728950e",  # version 5
    "0f8fad5b-d9cb-469f-c165-70867728950e",  # wrong variant
    "undefined",  # what streamlit-local-storage writes as a stray item
    None,
    0,
    123,
    1.5,
    True,
    b"0f8fad5b-d9cb-469f-a165-70867728950e",
    [VALID],
    {"key": VALID},
    {VALID: VALID},
    uuid.UUID(VALID),
]


def test_a_fresh_key_is_a_canonical_uuid4() -> None:
    keys = {new_session_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert parse_session_key(key) == key
        assert uuid.UUID(key).version == 4


@pytest.mark.parametrize("raw", HOSTILE, ids=repr)
def test_anything_but_a_canonical_uuid4_is_refused(raw: object) -> None:
    assert parse_session_key(raw) is None


@pytest.mark.parametrize("raw", HOSTILE, ids=repr)
def test_hostile_keys_and_ids_never_touch_the_disk(tmp_path: Path, raw: Any) -> None:
    store = SessionStore(tmp_path / "sessions")
    good_key = new_session_key()
    good_id = store.create_conversation(good_key)
    before = snapshot(tmp_path)
    calls: list[Callable[[], object]] = [
        lambda: store.list_conversations(raw),
        lambda: store.create_conversation(raw),
        lambda: store.append_messages(raw, good_id, [user("x")]),
        lambda: store.read_messages(raw, good_id),
        lambda: store.rename_conversation(raw, good_id, "x"),
        lambda: store.delete_conversation(raw, good_id),
        lambda: store.append_messages(good_key, raw, [user("x")]),
        lambda: store.read_messages(good_key, raw),
        lambda: store.rename_conversation(good_key, raw, "x"),
        lambda: store.delete_conversation(good_key, raw),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="uuid4"):
            call()
    assert snapshot(tmp_path) == before


# --- the basics ----------------------------------------------------------------------------------


def test_messages_round_trip_with_every_field(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key)
    messages = [
        user('Line one\nline two\ttab "quotes" \\ backslash'),
        Message(role="assistant", content="Unicode: é ß 中文 🙂 \u2028 done", model="m-1"),
        Message(role="assistant", content="cut short", model="m-1", incomplete=True, error="x"),
        user("a lone surrogate \ud800 from a browser paste"),
        user(""),
    ]
    store.append_messages(session_key, conversation_id, messages[:2])
    store.append_messages(session_key, conversation_id, messages[2:])
    assert store.read_messages(session_key, conversation_id) == messages
    # A second store (another process, another task) reads the same from the file alone.
    assert SessionStore(store.root).read_messages(session_key, conversation_id) == messages


def test_every_line_is_plain_json(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key, "Plain")
    store.append_messages(session_key, conversation_id, [user("one"), user("two")])
    lines = conversation_file(store, session_key, conversation_id).read_bytes().split(b"\n")
    assert lines[-1] == b""  # every record ends with a newline
    records = [json.loads(line) for line in lines[:-1]]
    assert [record["type"] for record in records] == ["conversation", "messages"]
    assert records[0]["id"] == conversation_id
    assert records[0]["title"] == "Plain"
    assert contents([Message.from_dict(m) for m in records[1]["messages"]]) == ["one", "two"]


def test_messages_keep_their_order(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key)
    expected: list[str] = []
    for batch in range(12):
        texts = [f"{batch}.{i}" for i in range(batch % 4 + 1)]
        store.append_messages(session_key, conversation_id, [user(text) for text in texts])
        expected += texts
        assert contents(store.read_messages(session_key, conversation_id)) == expected
    store.append_messages(session_key, conversation_id, [])  # nothing to store: no record
    assert contents(SessionStore(store.root).read_messages(session_key, conversation_id)) == (
        expected
    )


def test_appending_to_a_missing_conversation_creates_it(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = new_session_key()
    assert store.read_messages(session_key, conversation_id) == []
    store.append_messages(session_key, conversation_id, [user("hello")])
    assert contents(store.read_messages(session_key, conversation_id)) == ["hello"]
    [summary] = store.list_conversations(session_key)
    assert (summary.id, summary.title, summary.message_count) == (conversation_id, DEFAULT_TITLE, 1)


def test_only_messages_can_be_appended(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key)
    with pytest.raises(TypeError):
        store.append_messages(session_key, conversation_id, [{"role": "user", "content": "x"}])  # type: ignore[list-item]
    assert store.read_messages(session_key, conversation_id) == []


def test_conversations_are_listed_most_recently_active_first(clocked_store: SessionStore) -> None:
    store, session_key = clocked_store, new_session_key()
    assert store.list_conversations(session_key) == []
    assert not (store.root / session_key).exists()  # looking does not create folders
    first = store.create_conversation(session_key, "First")
    second = store.create_conversation(session_key, "Second")
    third = store.create_conversation(session_key, "Third")
    assert [s.id for s in store.list_conversations(session_key)] == [third, second, first]
    store.append_messages(session_key, first, [user("a"), user("b")])
    listed = store.list_conversations(session_key)
    assert [(s.id, s.title, s.message_count) for s in listed] == [
        (first, "First", 2),
        (third, "Third", 0),
        (second, "Second", 0),
    ]
    assert listed[0].updated_at > listed[0].created_at
    # Another session sees none of them.
    assert store.list_conversations(new_session_key()) == []


def test_rename_is_kept_in_the_file(clocked_store: SessionStore) -> None:
    store, session_key = clocked_store, new_session_key()
    conversation_id = store.create_conversation(session_key)
    store.append_messages(session_key, conversation_id, [user("hi")])
    store.rename_conversation(session_key, conversation_id, "Trip to Lisbon")
    [summary] = store.list_conversations(session_key)
    assert (summary.title, summary.message_count) == ("Trip to Lisbon", 1)
    # The index is only a cache: without it the title comes from the conversation file.
    (store.root / session_key / sessions.INDEX_FILE).unlink()
    assert SessionStore(store.root).list_conversations(session_key) == [summary]
    assert contents(store.read_messages(session_key, conversation_id)) == ["hi"]


@pytest.mark.parametrize(
    ("title", "stored"),
    [
        ("  Budget\n2026\t review  ", "Budget 2026 review"),
        ("bell\x07 and escape\x1b[31m", "bell and escape [31m"),
        ("x" * 500, "x" * sessions.TITLE_MAX_CHARS),
        ("   \n ", DEFAULT_TITLE),
    ],
)
def test_titles_are_one_clean_line(
    store: SessionStore, session_key: str, title: str, stored: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    store.rename_conversation(session_key, conversation_id, title)
    assert store.list_conversations(session_key)[0].title == stored


def test_rename_refuses_bad_titles_and_missing_conversations(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    with pytest.raises(ValueError, match="title"):
        store.rename_conversation(session_key, conversation_id, {"title": "x"})  # type: ignore[arg-type]
    with pytest.raises(ConversationNotFoundError):
        store.rename_conversation(session_key, new_session_key(), "x")


def test_soft_delete_hides_but_keeps_the_conversation(
    store: SessionStore, session_key: str
) -> None:
    kept = store.create_conversation(session_key, "Kept")
    doomed = store.create_conversation(session_key, "Doomed")
    store.append_messages(session_key, doomed, [user("remember me")])
    original = conversation_file(store, session_key, doomed).read_bytes()

    store.delete_conversation(session_key, doomed)

    assert [s.id for s in store.list_conversations(session_key)] == [kept]
    assert store.read_messages(session_key, doomed) == []
    [trashed] = (store.root / session_key / "trash").iterdir()
    assert trashed.name.startswith(doomed)
    assert trashed.read_bytes() == original
    store.delete_conversation(session_key, doomed)  # deleting twice is harmless
    assert len(list((store.root / session_key / "trash").iterdir())) == 1


def test_files_and_folders_are_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        store = SessionStore(tmp_path / "sessions")
        session_key = new_session_key()
        conversation_id = store.create_conversation(session_key)
        store.append_messages(session_key, conversation_id, [user("secret")])
        store.delete_conversation(session_key, store.create_conversation(session_key))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    for path in store.root.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_an_existing_root_is_left_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "efs-access-point-root"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    store = SessionStore(root)
    store.create_conversation(new_session_key())
    assert stat.S_IMODE(root.stat().st_mode) == 0o755


# --- symlinks ------------------------------------------------------------------------------------


def test_a_symlinked_session_folder_is_refused(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    outside = tmp_path / "outside"
    session_key, conversation_id = new_session_key(), new_session_key()
    # A real conversation sits outside the root; the session folder is a link to it.
    SessionStore(outside).append_messages(session_key, conversation_id, [user("outside")])
    (store.root / session_key).symlink_to(outside / session_key, target_is_directory=True)
    before = snapshot(outside)
    calls: list[Callable[[], object]] = [
        lambda: store.list_conversations(session_key),
        lambda: store.create_conversation(session_key),
        lambda: store.append_messages(session_key, conversation_id, [user("x")]),
        lambda: store.read_messages(session_key, conversation_id),
        lambda: store.rename_conversation(session_key, conversation_id, "x"),
        lambda: store.delete_conversation(session_key, conversation_id),
    ]
    for call in calls:
        with pytest.raises(UnsafePathError):
            call()
    assert snapshot(outside) == before


def test_a_symlinked_conversation_file_is_never_followed(
    tmp_path: Path, store: SessionStore, session_key: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    conversation_id = store.create_conversation(session_key)
    path = conversation_file(store, session_key, conversation_id)
    # A valid conversation with the same id, outside the root, and a link to it inside.
    SessionStore(outside).append_messages(session_key, conversation_id, [user("secret")])
    target = outside / session_key / f"{conversation_id}.jsonl"
    path.unlink()
    (store.root / session_key / sessions.INDEX_FILE).unlink()  # so the listing looks at the file
    path.symlink_to(target)
    before = snapshot(outside)

    [listed] = store.list_conversations(session_key)
    assert listed.message_count == 0  # listed as unreadable, not read through the link
    with pytest.raises(CorruptConversationError) as caught:
        store.read_messages(session_key, conversation_id)
    assert caught.value.quarantined_to.is_symlink()  # the link itself was moved aside
    assert caught.value.quarantined_to.parent == store.root / session_key / "quarantine"
    assert snapshot(outside) == before

    # The same for a writer: a link planted again is refused, the outside file is not appended to.
    path.symlink_to(target)
    with pytest.raises(CorruptConversationError):
        store.append_messages(session_key, conversation_id, [user("leak")])
    assert snapshot(outside) == before


def test_a_symlinked_trash_folder_is_refused(
    tmp_path: Path, store: SessionStore, session_key: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    conversation_id = store.create_conversation(session_key)
    (store.root / session_key / "trash").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        store.delete_conversation(session_key, conversation_id)
    assert list(outside.iterdir()) == []
    assert [s.id for s in store.list_conversations(session_key)] == [conversation_id]


def test_a_fifo_in_place_of_a_conversation_does_not_hang_the_page(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = new_session_key()
    (store.root / session_key).mkdir(mode=0o700)
    os.mkfifo(conversation_file(store, session_key, conversation_id))
    with pytest.raises(CorruptConversationError) as caught:
        store.read_messages(session_key, conversation_id)
    assert stat.S_ISFIFO(caught.value.quarantined_to.lstat().st_mode)


# --- O(new data): appends and reads touch only what is new ---------------------------------------


class IoCounter:
    """Counts the bytes the store reads from and writes to one conversation file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.read = self.written = 0
        inode = path.stat().st_ino
        real_pread, real_pwrite = os.pread, os.pwrite

        def pread(fd: int, length: int, offset: int) -> bytes:
            data = real_pread(fd, length, offset)
            if os.fstat(fd).st_ino == inode:
                self.read += len(data)
            return data

        def pwrite(fd: int, data: Any, offset: int) -> int:
            written = real_pwrite(fd, data, offset)
            if os.fstat(fd).st_ino == inode:
                self.written += written
            return written

        monkeypatch.setattr(sessions.os, "pread", pread)
        monkeypatch.setattr(sessions.os, "pwrite", pwrite)

    def reset(self) -> None:
        self.read = self.written = 0


def test_appends_and_reads_cost_only_the_new_data(
    store: SessionStore, session_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation_id = store.create_conversation(session_key)
    for i in range(200):
        store.append_messages(session_key, conversation_id, [user(f"{i}: " + "words " * 50)])
    path = conversation_file(store, session_key, conversation_id)
    assert len(store.read_messages(session_key, conversation_id)) == 200
    counter = IoCounter(monkeypatch, path)

    size_before = path.stat().st_size
    store.append_messages(session_key, conversation_id, [user("one more")])
    new_bytes = path.stat().st_size - size_before
    assert counter.written == new_bytes < 400  # one record, the file is not rewritten
    assert counter.read == 0  # the summary says the tail is clean: nothing is read back

    counter.reset()
    assert len(store.read_messages(session_key, conversation_id)) == 201
    assert counter.read == new_bytes + 1  # the new record, and one byte to check the boundary

    counter.reset()
    assert store.list_conversations(session_key)[0].message_count == 201
    assert counter.read == 0  # listing reads the small summary, not the conversation


def test_a_replaced_or_shrunk_file_is_read_again(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key)
    path = conversation_file(store, session_key, conversation_id)
    store.append_messages(session_key, conversation_id, [user("one")])
    short = path.read_bytes()
    store.append_messages(session_key, conversation_id, [user("two"), user("three")])
    assert contents(store.read_messages(session_key, conversation_id)) == ["one", "two", "three"]

    replacement = path.with_name("replacement")
    replacement.write_bytes(short)
    os.replace(replacement, path)  # another inode
    assert contents(store.read_messages(session_key, conversation_id)) == ["one"]

    store.append_messages(session_key, conversation_id, [user("four"), user("five")])
    assert len(store.read_messages(session_key, conversation_id)) == 3
    with path.open("r+b") as handle:  # same inode, shrunk in place
        handle.truncate(len(short))
    assert contents(store.read_messages(session_key, conversation_id)) == ["one"]


def test_the_parse_cache_is_bounded_and_eviction_is_harmless(
    store: SessionStore, session_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "_CACHE_MAX_BYTES", 1)  # room for one conversation only
    first = store.create_conversation(session_key)
    second = store.create_conversation(session_key)
    for i in range(3):
        store.append_messages(session_key, first, [user(f"first {i}")])
        store.append_messages(session_key, second, [user(f"second {i}")])
        assert contents(store.read_messages(session_key, first))[-1] == f"first {i}"
        assert contents(store.read_messages(session_key, second))[-1] == f"second {i}"
        assert len(store._cache) == 1
    assert len(store.read_messages(session_key, first)) == 3


def index_file(store: SessionStore, session_key: str) -> Path:
    return store.root / session_key / sessions.INDEX_FILE


def listed(store: SessionStore, session_key: str) -> list[tuple[str, str, int]]:
    return [(s.id, s.title, s.message_count) for s in store.list_conversations(session_key)]


def test_a_lost_index_is_rebuilt_from_the_conversations(
    clocked_store: SessionStore, tmp_path: Path
) -> None:
    store, session_key = clocked_store, new_session_key()
    first = store.create_conversation(session_key, "First")
    store.append_messages(session_key, first, [user("a"), user("b")])
    second = store.create_conversation(session_key)
    store.rename_conversation(session_key, second, "Renamed")
    store.delete_conversation(session_key, store.create_conversation(session_key, "Deleted"))
    before = listed(store, session_key)
    assert before == [(second, "Renamed", 0), (first, "First", 2)]

    index_file(store, session_key).unlink()
    assert listed(store, session_key) == before  # this process, with its cached index
    assert listed(SessionStore(store.root), session_key) == before  # a newly started task
    assert index_file(store, session_key).exists()  # and written back

    store.append_messages(session_key, first, [user("c")])
    assert listed(SessionStore(store.root), session_key)[0] == (first, "First", 3)


def test_a_stale_index_is_corrected(
    store: SessionStore, session_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = store.create_conversation(session_key, "Kept")
    store.append_messages(session_key, kept, [user("a")])
    with monkeypatch.context() as crashed:  # a task died between the append and its index record
        crashed.setattr(SessionStore, "_append_index", lambda *args: None)
        store.append_messages(session_key, kept, [user("b")])
    fresh = SessionStore(store.root)
    assert listed(fresh, session_key) == [(kept, "Kept", 1)]  # stale until the next write...
    fresh.append_messages(session_key, kept, [user("c")])
    assert listed(fresh, session_key) == [(kept, "Kept", 3)]  # ...which parses, never trusts it

    # Files moved behind the store's back: one taken away, one put in without an index record.
    removed = store.create_conversation(session_key, "Removed")
    assert len(listed(store, session_key)) == 2
    conversation_file(store, session_key, removed).rename(store.root / "elsewhere.jsonl")
    other = SessionStore(store.root / "other")
    added = other.create_conversation(session_key, "Added")
    conversation_file(other, session_key, added).rename(
        conversation_file(store, session_key, added)
    )
    expected = [(added, "Added", 0), (kept, "Kept", 3)]
    assert listed(store, session_key) == expected
    assert listed(SessionStore(store.root), session_key) == expected


def test_a_damaged_index_never_breaks_the_listing(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key, "Notes")
    path = index_file(store, session_key)
    with path.open("ab") as handle:  # a crashed write, then garbage, then a foreign record
        handle.write(b'{"type":"summary","id":"' + conversation_id.encode() + b'","tit')
    store.append_messages(session_key, conversation_id, [user("a")])
    with path.open("ab") as handle:
        handle.write(b'{not json\n{"type":"summary","id":"../../etc","title":"x"}\n')
    assert listed(SessionStore(store.root), session_key) == [(conversation_id, "Notes", 1)]
    assert path.read_bytes().count(b"\n{") >= 2  # the half line was sealed, not extended

    path.unlink()
    path.symlink_to(store.root / "elsewhere")  # a link in its place is set aside, never followed
    assert listed(SessionStore(store.root), session_key) == [(conversation_id, "Notes", 1)]
    assert not (store.root / "elsewhere").exists()
    assert path.is_file() and not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_index_is_compacted_and_stays_correct(
    clocked_store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A ticking clock: with the wall clock, c1 and c2 could share a timestamp, and the expected
    # order below would then depend on their random ids (1 run in about 40 failed).
    store, session_key = clocked_store, new_session_key()
    monkeypatch.setattr(sessions, "_INDEX_SLACK", 4)
    ids = [store.create_conversation(session_key, f"c{i}") for i in range(3)]
    for round_number in range(10):
        for conversation_id in ids:
            store.append_messages(session_key, conversation_id, [user(f"{round_number}")])
    store.delete_conversation(session_key, ids[0])
    lines = index_file(store, session_key).read_bytes().splitlines()
    assert len(lines) <= 2 * 2 + 4 + 1  # rewritten with one record each, not 34 records
    expected = [(ids[2], "c2", 10), (ids[1], "c1", 10)]
    assert listed(store, session_key) == expected
    assert listed(SessionStore(store.root), session_key) == expected


def test_listing_reads_the_index_not_the_conversations(
    store: SessionStore, session_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        store.append_messages(session_key, store.create_conversation(session_key), [user(f"{i}")])
    fresh = SessionStore(store.root)  # no cache: a newly started task
    assert len(fresh.list_conversations(session_key)) == 30
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sessions.os, "open", counting_open)
    monkeypatch.setattr(sessions, "_RACY_NS", 0)  # the folder changed just now: do not look again
    for _ in range(3):
        assert len(fresh.list_conversations(session_key)) == 30
    assert opened == [sessions.INDEX_FILE] * 3


def test_unknown_record_types_are_skipped(store: SessionStore, session_key: str) -> None:
    """A newer version may add record types; older tasks running during a deploy must cope."""
    conversation_id = store.create_conversation(session_key)
    store.append_messages(session_key, conversation_id, [user("a")])
    with conversation_file(store, session_key, conversation_id).open("ab") as handle:
        handle.write(b'{"type":"reaction","emoji":"+1"}\n')
    store.append_messages(session_key, conversation_id, [user("b")])
    assert contents(store.read_messages(session_key, conversation_id)) == ["a", "b"]


# --- several processes at once -------------------------------------------------------------------


def worker(*args: str) -> subprocess.Popen[str]:
    """Run ``python -m tests.sessions_worker ARGS``: a separate interpreter, like another task."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sessions_worker", *args],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> None:
    process.communicate(timeout=GUARD_SECONDS)
    assert process.returncode == 0


def test_concurrent_writers_in_several_processes_lose_nothing(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    workers = [
        worker("append-from-threads", str(store.root), session_key, conversation_id, str(w))
        for w in range(4)
    ]
    for process in workers:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    for process in workers:  # start together
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in workers:
        finish(process)

    stored = contents(store.read_messages(session_key, conversation_id))
    expected = {f"{w}.{t}.{i}" for w in range(4) for t in range(3) for i in range(15)}
    assert len(stored) == len(expected) == 180
    assert set(stored) == expected  # every message exactly once
    for w, t in itertools.product(range(4), range(3)):  # each writer's order is kept
        mine = [text for text in stored if text.startswith(f"{w}.{t}.")]
        assert mine == [f"{w}.{t}.{i}" for i in range(15)]
    raw = conversation_file(store, session_key, conversation_id).read_bytes()
    assert raw.endswith(b"\n")
    assert all(json.loads(line) for line in raw.splitlines())  # no torn or interleaved line
    assert store.list_conversations(session_key)[0].message_count == 180


def append_elsewhere(
    store: SessionStore, session_key: str, conversation_id: str, text: str
) -> None:
    finish(worker("append-one", str(store.root), session_key, conversation_id, text))


def test_conversations_created_in_two_processes_at_once_are_all_listed(
    store: SessionStore, session_key: str
) -> None:
    assert store.list_conversations(session_key) == []
    workers = [
        worker("create-conversations", str(store.root), session_key, str(w), "20") for w in (0, 1)
    ]
    for process in workers:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    for process in workers:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in workers:
        finish(process)
    expected = {(f"{w}.{i}", 1) for w in (0, 1) for i in range(20)}
    for reader in (store, SessionStore(store.root)):
        summaries = reader.list_conversations(session_key)
        assert {(s.title, s.message_count) for s in summaries} == expected
        assert len(summaries) == 40
    lines = index_file(store, session_key).read_bytes().splitlines()
    assert all(json.loads(line)["type"] == "summary" for line in lines)  # none torn or glued


def test_a_delete_in_another_process_leaves_the_list(store: SessionStore, session_key: str) -> None:
    kept = store.create_conversation(session_key, "Kept")
    doomed = store.create_conversation(session_key, "Doomed")
    assert {s.id for s in store.list_conversations(session_key)} == {kept, doomed}  # now cached
    finish(worker("delete-one", str(store.root), session_key, doomed))
    assert [s.id for s in store.list_conversations(session_key)] == [kept]
    append_elsewhere(store, session_key, new_session_key(), "from another task")
    assert len(store.list_conversations(session_key)) == 2


def test_a_read_sees_what_another_process_appended(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key)
    store.append_messages(session_key, conversation_id, [user("mine")])
    assert contents(store.read_messages(session_key, conversation_id)) == ["mine"]  # now cached
    for text in ("theirs 1", "theirs 2"):
        append_elsewhere(store, session_key, conversation_id, text)
        assert contents(store.read_messages(session_key, conversation_id))[-1] == text
    assert contents(store.read_messages(session_key, conversation_id)) == [
        "mine",
        "theirs 1",
        "theirs 2",
    ]
    assert store.list_conversations(session_key)[0].message_count == 3


def wait_until_blocked_on_a_lock(path: Path, writer: threading.Thread) -> None:
    """Wait until some process waits for a lock on ``path`` (Linux shows it in /proc/locks).

    Elsewhere this returns at once: the test's assertions hold whichever runs first, only the
    interesting interleaving (the writer already waiting) is then not guaranteed.
    """
    locks, needle = Path("/proc/locks"), f":{path.stat().st_ino} "
    if not locks.exists():
        return
    while writer.is_alive() and not any(
        "->" in line and needle in line for line in locks.read_text().splitlines()
    ):
        time.sleep(0.01)


def test_a_writer_waiting_while_the_file_is_moved_away_does_not_write_into_it(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    store.append_messages(session_key, conversation_id, [user("old")])
    path = conversation_file(store, session_key, conversation_id)
    moved = path.with_name("moved-by-another-task.jsonl")
    deleter = worker("lock-then-move", str(path), str(moved))
    assert deleter.stdout is not None and deleter.stdin is not None
    assert deleter.stdout.readline() == "locked\n"
    writer = threading.Thread(
        target=store.append_messages, args=(session_key, conversation_id, [user("new")])
    )
    writer.start()
    wait_until_blocked_on_a_lock(path, writer)
    deleter.stdin.write("go\n")
    deleter.stdin.flush()
    finish(deleter)
    writer.join(GUARD_SECONDS)

    # The waiting writer noticed that the path no longer names the file it locked: its message
    # went to the path (a new conversation), not into the file that was moved away.
    assert b'"new"' not in moved.read_bytes()
    assert contents(store.read_messages(session_key, conversation_id)) == ["new"]


# --- crashes -------------------------------------------------------------------------------------


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=GUARD_SECONDS)
    assert process.returncode == -signal.SIGKILL


def test_a_writer_killed_mid_record_leaves_the_conversation_usable(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    store.append_messages(session_key, conversation_id, [user("before")])
    path = conversation_file(store, session_key, conversation_id)
    record = json.dumps({"type": "messages", "at": "x", "messages": [user("lost").to_dict()]})
    half = record.encode()[: len(record) // 2]

    child = worker("lock-write-half-and-hang", str(path), half.hex())
    assert child.stdout is not None
    assert child.stdout.readline() == "written\n"
    probe = os.open(path, os.O_RDWR)
    try:  # the child really holds the lock while its record is half written
        with pytest.raises(OSError):
            fcntl.lockf(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(probe)
    # Readers meanwhile skip the unfinished record.
    assert contents(store.read_messages(session_key, conversation_id)) == ["before"]
    kill(child)
    assert path.read_bytes().endswith(half)

    assert contents(store.read_messages(session_key, conversation_id)) == ["before"]
    store.append_messages(session_key, conversation_id, [user("after")])  # the lock was freed
    append_elsewhere(store, session_key, conversation_id, "later")
    expected = ["before", "after", "later"]
    assert contents(store.read_messages(session_key, conversation_id)) == expected
    assert contents(SessionStore(store.root).read_messages(session_key, conversation_id)) == (
        expected
    )
    assert store.list_conversations(session_key)[0].message_count == 3
    raw = path.read_bytes()
    assert half + b"\n" in raw  # the remnant was sealed off, not glued to the next record
    assert b'"type":"torn"' in raw


def test_a_writer_killed_at_any_moment_loses_at_most_its_last_record(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    child = worker("append-until-killed", str(store.root), session_key, conversation_id)
    assert child.stdout is not None
    assert child.stdout.readline() == "started\n"
    kill(child)

    messages = store.read_messages(session_key, conversation_id)
    stored = [text.split(":")[0] for text in contents(messages)]
    assert stored == [str(i) for i in range(len(stored))]  # a gapless prefix
    assert len(stored) >= 1
    store.append_messages(session_key, conversation_id, [user("still works")])
    final = contents(SessionStore(store.root).read_messages(session_key, conversation_id))
    assert len(final) == len(stored) + 1
    assert final[-1] == "still works"


def write_raw(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def encoded(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def messages_record(*texts: str) -> dict[str, Any]:
    return {"type": "messages", "at": "t", "messages": [user(t).to_dict() for t in texts]}


@pytest.mark.parametrize(
    ("remnant", "recovered"),
    [
        pytest.param(lambda: encoded(messages_record("torn"))[:40], [], id="half-a-record"),
        pytest.param(lambda: b"\x00" * 300 + b"\n", [], id="nfs-hole-as-last-line"),
        pytest.param(lambda: b'{"type":"mess\n{"type":"to', [], id="two-failed-attempts"),
        # Only the newline was lost: the record is complete, so once sealed it counts.
        pytest.param(
            lambda: encoded(messages_record("whole"))[:-1], ["whole"], id="newline-missing"
        ),
    ],
)
def test_torn_tails_are_skipped_then_sealed(
    store: SessionStore,
    session_key: str,
    remnant: Callable[[], bytes],
    recovered: list[str],
) -> None:
    conversation_id = store.create_conversation(session_key)
    store.append_messages(session_key, conversation_id, [user("kept")])
    path = conversation_file(store, session_key, conversation_id)
    write_raw(path, remnant())
    assert contents(store.read_messages(session_key, conversation_id)) == ["kept"]
    assert contents(SessionStore(store.root).read_messages(session_key, conversation_id)) == [
        "kept"
    ]
    store.append_messages(session_key, conversation_id, [user("next")])
    expected = ["kept", *recovered, "next"]
    assert contents(store.read_messages(session_key, conversation_id)) == expected
    assert contents(SessionStore(store.root).read_messages(session_key, conversation_id)) == (
        expected
    )
    store.append_messages(session_key, conversation_id, [user("and next")])
    assert contents(store.read_messages(session_key, conversation_id)) == [*expected, "and next"]


def test_a_torn_header_is_repaired_by_the_next_append(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = new_session_key()
    folder = store.root / session_key
    folder.mkdir(mode=0o700)
    header = {"type": "conversation", "id": conversation_id, "created_at": "t", "title": "T"}
    (folder / f"{conversation_id}.jsonl").write_bytes(encoded(header)[:25])
    assert store.read_messages(session_key, conversation_id) == []
    assert store.list_conversations(session_key) == []  # nothing to show until it has a header
    store.append_messages(session_key, conversation_id, [user("first")])
    assert contents(store.read_messages(session_key, conversation_id)) == ["first"]
    assert store.list_conversations(session_key)[0].message_count == 1


# --- corruption ----------------------------------------------------------------------------------


def header_for(conversation_id: str) -> bytes:
    return encoded({"type": "conversation", "id": conversation_id, "created_at": "t", "title": "T"})


CORRUPTIONS: dict[str, Callable[[str], bytes]] = {
    "garbage-in-the-middle": lambda cid: (
        header_for(cid) + b"garbage\n" + encoded(messages_record("b"))
    ),
    "bad-utf8": lambda cid: (
        header_for(cid) + b'{"type":"title","title":"\xff\xfe"}\n' + encoded(messages_record("b"))
    ),
    "content-not-a-string": lambda cid: (
        header_for(cid)
        + encoded({"type": "messages", "at": "t", "messages": [{"role": "user", "content": 5}]})
    ),
    "unknown-role": lambda cid: (
        header_for(cid)
        + encoded({"type": "messages", "at": "t", "messages": [{"role": "root", "content": "x"}]})
    ),
    "messages-not-a-list": lambda cid: (
        header_for(cid) + encoded({"type": "messages", "at": "t", "messages": "hi"})
    ),
    "not-an-object": lambda cid: header_for(cid) + b"[1, 2]\n" + encoded(messages_record("b")),
    "no-header": lambda cid: encoded(messages_record("a")),
    "nothing-but-garbage": lambda cid: b"this is not JSON\n{also broken\n" * 3,
    # One crash leaves at most one unparseable line at the end (see sessions._MAX_TORN_LINES).
    "several-unparseable-lines-at-the-end": lambda cid: (
        header_for(cid) + encoded(messages_record("a")) + b"junk\n" * 3
    ),
    "header-of-another-conversation": lambda cid: header_for(new_session_key()),
    "second-header": lambda cid: header_for(cid) + header_for(cid),
    "misplaced-torn-marker": lambda cid: (
        header_for(cid) + b"garbage\n" + encoded({"type": "torn", "at": "t", "from": 1})
    ),
}


@pytest.mark.parametrize("make", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_conversation_is_quarantined_not_deleted(
    store: SessionStore, session_key: str, make: Callable[[str], bytes]
) -> None:
    keep = store.create_conversation(session_key, "Healthy")
    conversation_id = store.create_conversation(session_key, "Broken")
    store.append_messages(session_key, conversation_id, [user("a")])
    assert len(store.read_messages(session_key, conversation_id)) == 1  # cached before the damage
    path = conversation_file(store, session_key, conversation_id)
    damaged = make(conversation_id)
    path.write_bytes(damaged)

    with pytest.raises(CorruptConversationError, match="could not be read") as caught:
        store.read_messages(session_key, conversation_id)

    kept_aside = caught.value.quarantined_to
    assert kept_aside.parent == store.root / session_key / "quarantine"
    assert kept_aside.name.startswith(conversation_id)
    assert kept_aside.read_bytes() == damaged  # moved as it was, byte for byte
    assert not path.exists()
    assert [s.id for s in store.list_conversations(session_key)] == [keep]
    assert store.read_messages(session_key, conversation_id) == []
    fresh = store.create_conversation(session_key)
    store.append_messages(session_key, fresh, [user("new start")])
    assert contents(store.read_messages(session_key, fresh)) == ["new start"]


def test_a_writer_also_quarantines_a_corrupt_conversation(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    path = conversation_file(store, session_key, conversation_id)
    damaged = CORRUPTIONS["garbage-in-the-middle"](conversation_id)
    path.write_bytes(damaged)
    with pytest.raises(CorruptConversationError) as caught:
        store.append_messages(session_key, conversation_id, [user("x")])
    assert caught.value.quarantined_to.read_bytes() == damaged
    # The next append starts the conversation afresh rather than failing forever.
    store.append_messages(session_key, conversation_id, [user("y")])
    assert contents(store.read_messages(session_key, conversation_id)) == ["y"]


def test_logs_never_carry_the_session_key(
    store: SessionStore, session_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The key is a bearer secret: quarantine and delete log the conversation id, not the path."""
    caplog.set_level("DEBUG", logger=sessions.__name__)
    broken = store.create_conversation(session_key)
    conversation_file(store, session_key, broken).write_bytes(
        CORRUPTIONS["garbage-in-the-middle"](broken)
    )
    with pytest.raises(CorruptConversationError):
        store.read_messages(session_key, broken)
    store.delete_conversation(session_key, store.create_conversation(session_key))

    assert caplog.records, "quarantine and delete are logged"
    assert all(session_key not in record.getMessage() for record in caplog.records)
    assert any(broken in record.getMessage() for record in caplog.records)


def test_a_corrupt_conversation_is_listed_until_opened(
    store: SessionStore, session_key: str
) -> None:
    conversation_id = store.create_conversation(session_key)
    path = conversation_file(store, session_key, conversation_id)
    path.write_bytes(CORRUPTIONS["bad-utf8"](conversation_id))
    [listed] = store.list_conversations(session_key)  # listing has no side effects
    assert (listed.id, listed.message_count) == (conversation_id, 0)
    assert path.exists()
    with pytest.raises(CorruptConversationError):
        store.read_messages(session_key, conversation_id)
    assert store.list_conversations(session_key) == []


def test_an_unreadable_file_is_moved_aside(store: SessionStore, session_key: str) -> None:
    conversation_id = store.create_conversation(session_key)
    path = conversation_file(store, session_key, conversation_id)
    path.unlink()
    path.mkdir()  # a folder where the file should be
    with pytest.raises(CorruptConversationError) as caught:
        store.read_messages(session_key, conversation_id)
    assert caught.value.quarantined_to.is_dir()
    assert store.read_messages(session_key, conversation_id) == []
