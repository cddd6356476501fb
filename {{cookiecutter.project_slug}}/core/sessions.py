"""Conversation store: one append-only JSON Lines file per conversation, in a folder every task
shares (EFS on AWS). The README ("How sessions work") says why, and explains the layout, format,
cross-host locking, crashes, corruption and the index; comments here say why each step is needed.
POSIX only (``fcntl``). Session keys come from the browser and are treated as hostile.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TypeGuard, TypeVar

from core.files import UnsafePathError as UnsafePathError  # raised by the store's methods
from core.files import (
    UnusableFile,
    append_lines,
    encode_line,
    ends_line,
    opened,
    private_dir,
    read_range,
    regular_file_stat,
    sync_folder,
    write_all,
)
from core.messages import Message, utc_now

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_TITLE = "New conversation"
TITLE_MAX_CHARS = 48  # one line of the sidebar; core/chat.py shortens first messages to it
TRASH_DIR = "trash"
QUARANTINE_DIR = "quarantine"
INDEX_FILE = "index.jsonl"
_JSONL = ".jsonl"
_INDEX_SLACK = 64  # compact the index beyond twice as many records as conversations, plus this
# Folder times tick coarsely (more on NFS): as in git's "racily clean" rule, a folder changed this
# recently is compared with the index again on the next listing.
_RACY_NS = 2_000_000_000
# The parse cache is bounded by the file bytes it stands for: long chats cannot fill a 512 MB task.
_CACHE_MAX_BYTES = 16 * 1024 * 1024
_UNREADABLE = "This conversation could not be read."
# Complete bad lines at the end that a crash explains (a half line whose sealing crashed as well,
# or an NFS write flushed in part); more, under the lock, is corruption.
_MAX_TORN_LINES = 1
# Fields each record type needs. Other types are skipped: in a rolling deploy, older tasks must
# accept what newer ones write.
_FIELDS: dict[str, dict[str, type]] = {
    "conversation": {"id": str, "created_at": str, "title": str},  # the header, first
    "messages": {"at": str, "messages": list},
    "title": {"title": str},
    "summary": {  # in index.jsonl, with "deleted" records that need only a valid id
        **{"id": str, "title": str, "created_at": str, "updated_at": str},
        **{"message_count": int, "size": int, "inode": int},
    },
}
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_OWNER_ID = re.compile(r"[0-9a-f]{64}")
# Threads' in-process locks (see the README), striped by path: an index stripe is only ever taken
# inside a conversation stripe (no deadlock); re-entrant for quarantine.
_CONVERSATION_LOCKS = tuple(threading.RLock() for _ in range(64))
_INDEX_LOCKS = tuple(threading.RLock() for _ in range(16))

_Record = dict[str, Any]


def new_session_key() -> str:
    """A fresh random uuid4 (122 bits from the OS): a session key, or a conversation id."""
    return str(uuid.uuid4())


def parse_session_key(raw: object) -> str | None:
    """``raw`` if a canonical uuid4 (ids too): anything else is refused, never normalised."""
    return raw if type(raw) is str and _UUID4.fullmatch(raw) else None


def is_store_key(raw: object) -> TypeGuard[str]:
    """Whether ``raw`` may name a folder: a browser's uuid4 or a signed-in person's 64-hex owner id
    (core/identity.py; no browser can send one). Every per-person file follows it."""
    return type(raw) is str and bool(_UUID4.fullmatch(raw) or _OWNER_ID.fullmatch(raw))


@dataclass(frozen=True)
class ConversationSummary:
    """What the sidebar shows for one conversation, and what the index keeps of it."""

    id: str
    title: str
    created_at: str
    updated_at: str
    message_count: int


class CorruptConversationError(Exception):
    """The conversation could not be read; it is kept (not deleted) at ``quarantined_to``."""

    def __init__(self, message: str, quarantined_to: Path) -> None:
        super().__init__(message)
        self.quarantined_to = quarantined_to


class ConversationNotFoundError(LookupError):
    """The conversation does not exist (never created, deleted, or quarantined)."""


def _describe(exc: BaseException) -> str:
    """A reason for the log, never a path: paths hold the session key, a bearer secret."""
    return (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _decode(line: bytes) -> _Record | None:
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("type"), str) else None


def _well_formed(record: _Record) -> bool:
    return all(type(record.get(k)) is t for k, t in _FIELDS.get(record["type"], {}).items())


def _advance(summary: ConversationSummary | None, record: _Record) -> ConversationSummary | None:
    """The one rule for readers and writers alike."""
    if record["type"] == "conversation":
        at = record["created_at"]
        return ConversationSummary(record["id"], record["title"], at, at, 0)
    if summary is not None and record["type"] == "messages":
        count = summary.message_count + len(record["messages"])
        return replace(summary, message_count=count, updated_at=record["at"])
    if summary is not None and record["type"] == "title":
        return replace(summary, title=record["title"])
    return summary


@dataclass
class _Parsed:
    """A conversation file parsed up to ``offset`` (0, or just after a newline)."""

    conversation_id: str
    file_id: tuple[int, int]  # (st_dev, st_ino): another inode means the file was replaced
    offset: int = 0
    summary: ConversationSummary | None = None  # None until the header has been read
    messages: list[Message] = field(default_factory=list)
    unparsed_lines: int = 0  # complete but unparseable lines after offset

    def feed(self, data: bytes) -> None:
        """Take in the lines of ``data`` (the bytes from ``offset``), up to an unfinished one or a
        bad one that nothing valid follows yet: a write in flight, or a crash's leftover."""
        base, pos = self.offset, 0
        self.unparsed_lines = 0
        while (end := data.find(b"\n", pos)) >= 0:
            record = _decode(data[pos:end])
            if record is not None:
                self._apply(record)
            else:  # a crash's leftover: valid only once a torn marker for it follows
                torn_at, scan = base + pos, end + 1
                while (end := data.find(b"\n", scan)) >= 0:
                    if (record := _decode(data[scan:end])) is not None:
                        break
                    scan = end + 1
                if record is None:  # nothing valid follows yet: a write may be in flight
                    self.unparsed_lines = data.count(b"\n", pos)
                    return
                marker = record.get("from")
                if record["type"] != "torn" or type(marker) is not int or marker != torn_at:
                    raise UnusableFile(f"byte {torn_at}: a line that is not a valid record")
            pos = end + 1
            self.offset = base + pos

    def _apply(self, record: _Record) -> None:
        """Check a record's content, then take it in."""
        kind = record["type"]
        if kind == "torn":
            return  # read in normal flow: the line before it was complete after all
        if (self.summary is None) != (kind == "conversation"):
            raise UnusableFile("the file must start with its one conversation header")
        if not _well_formed(record):
            raise UnusableFile(f"a {kind} record lacks a field, or it has the wrong type")
        if kind == "conversation" and record["id"] != self.conversation_id:
            raise UnusableFile("the header names another conversation")
        if kind == "messages":
            try:
                self.messages += [Message.from_dict(item) for item in record["messages"]]
            except ValueError as exc:
                raise UnusableFile(f"a stored message is malformed: {exc}") from exc
        self.summary = _advance(self.summary, record)


class _Entry(NamedTuple):
    """A summary, and the size and inode of the file it describes (-1: not taken as its end)."""

    summary: ConversationSummary
    size: int
    inode: int

    def record(self) -> _Record:
        return {"type": "summary", **vars(self.summary), "size": self.size, "inode": self.inode}


@dataclass
class _Index:
    """A session's ``index.jsonl`` parsed up to ``offset``; the last record of an id wins."""

    file_id: tuple[int, int] | None  # None while there is no index file
    offset: int = 0
    records: int = 0  # lines so far, live or superseded: when to compact
    entries: dict[str, _Entry] = field(default_factory=dict)
    checked_mtime: int | None = None  # the folder's st_mtime_ns when its files were compared

    def feed(self, data: bytes) -> None:
        """Take in the lines of ``data``, skipping bad ones (the folder check repairs the rest)."""
        complete = data.rfind(b"\n") + 1
        for line in data[:complete].splitlines():
            self.records += 1
            record = _decode(line) or {"type": None}
            if (conversation_id := parse_session_key(record.get("id"))) is None:
                continue
            if record["type"] == "deleted":
                self.entries.pop(conversation_id, None)
            elif record["type"] == "summary" and _well_formed(record):
                names = ("id", "title", "created_at", "updated_at", "message_count")
                summary = ConversationSummary(*(record[name] for name in names))
                self.entries[conversation_id] = _Entry(summary, record["size"], record["inode"])
        self.offset += complete


def _conversation_file(folder: Path, conversation_id: str) -> Path:
    return folder / f"{conversation_id}{_JSONL}"


def _clean_title(title: object) -> str:
    """One line of printable text, at most TITLE_MAX_CHARS characters; blank means the default."""
    if not isinstance(title, str):
        raise ValueError("a title must be a string")
    printable = "".join(char if char.isprintable() else " " for char in title)
    return " ".join(printable.split())[:TITLE_MAX_CHARS].rstrip() or DEFAULT_TITLE


def _can_resume(fd: int, info: os.stat_result, cached: _Parsed | _Index) -> bool:
    """Whether parsing may go on at a cached offset: else the file was replaced or rewritten."""
    same_file = cached.file_id == (info.st_dev, info.st_ino)
    return same_file and cached.offset <= info.st_size and ends_line(fd, cached.offset)


def _process_lock(path: Path) -> threading.RLock:
    stripes = _INDEX_LOCKS if path.name == INDEX_FILE else _CONVERSATION_LOCKS
    return stripes[hash(str(path)) % len(stripes)]


_State = TypeVar("_State", _Parsed, _Index)


class SessionStore:
    """``<root>/<key>/<conversation id>.jsonl``; disk errors (ENOSPC, EIO) propagate as OSError."""

    def __init__(self, root: Path, *, clock: Callable[[], str] = utc_now) -> None:
        """Create ``root`` (0o700) unless it exists (an EFS access point root stays as it is)."""
        Path(root).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root: Path = Path(root).resolve(strict=True)
        self._clock = clock
        self._cache: OrderedDict[str, _Parsed | _Index] = OrderedDict()  # by path, LRU first
        self._cache_lock = threading.Lock()

    def list_conversations(self, session_key: str) -> list[ConversationSummary]:
        """Most recently active first. Flat cost: a stat of the folder and new index lines."""
        folder = self._folder(session_key, create=False)
        try:
            folder_mtime = os.stat(folder, follow_symlinks=False).st_mtime_ns
        except FileNotFoundError:
            return []
        index = self._read_index(folder)
        if index.checked_mtime != folder_mtime:
            index = self._reconcile_index(folder, index, folder_mtime)
        with _process_lock(folder / INDEX_FILE):  # another thread may be adding to it
            summaries = [entry.summary for entry in index.entries.values()]
        return sorted(summaries, key=lambda s: (s.updated_at, s.created_at, s.id), reverse=True)

    def create_conversation(self, session_key: str, title: str = DEFAULT_TITLE) -> str:
        """Start an empty conversation and return its id."""
        title = _clean_title(title)
        path = self._where(session_key, new_session_key(), create=True)
        with self._locked(path, create=True, exclusive=True) as fd:
            self._append(path, fd, [], title=title)
        sync_folder(path.parent)
        return path.stem

    def append_messages(
        self, session_key: str, conversation_id: str, messages: Sequence[Message]
    ) -> None:
        """Append messages as one record: all stored, or (after a crash) none. Creates a missing
        conversation: one deleted in another tab comes back holding the new messages."""
        batch = [message.to_dict() for message in messages if isinstance(message, Message)]
        if len(batch) != len(messages):
            raise TypeError("append_messages takes Message objects")
        path = self._where(session_key, conversation_id, create=bool(batch))
        if batch:
            with self._guarded(path, create=True) as fd:
                record = {"type": "messages", "at": self._clock(), "messages": batch}
                self._append(path, fd, [record])

    def read_messages(self, session_key: str, conversation_id: str) -> list[Message]:
        """All messages in order, without an unfinished last record; ``[]`` if none."""
        path = self._where(session_key, conversation_id, create=False)
        with _process_lock(path):
            # Without the file lock: reopening on every read is what NFS close-to-open
            # consistency needs to show other hosts' appends.
            try:
                with opened(path, os.O_RDONLY) as fd:
                    state = self._parse(path, fd, strict=False)
                if state.unparsed_lines <= _MAX_TORN_LINES:
                    return list(state.messages)
            except FileNotFoundError:
                self._forget(path)
                return []
            except (UnusableFile, OSError):
                pass
            # A real problem, or a write in flight or a transient NFS error (ESTALE): look again
            # with the lock held before moving anything aside.
            try:
                with self._guarded(path, create=False) as fd:
                    return list(self._parse(path, fd, strict=True).messages)
            except FileNotFoundError:  # gone meanwhile: deleted, or quarantined by another task
                moved = sorted((path.parent / QUARANTINE_DIR).glob(f"{path.stem}.*{_JSONL}"))
                if moved:
                    raise CorruptConversationError(_UNREADABLE, moved[-1]) from None
                return []

    def rename_conversation(self, session_key: str, conversation_id: str, title: str) -> None:
        """Append a new title (the last one wins); ConversationNotFoundError if there is none."""
        path = self._where(session_key, conversation_id, create=False)
        record = {"type": "title", "at": self._clock(), "title": _clean_title(title)}
        try:
            with self._guarded(path, create=False) as fd:
                self._append(path, fd, [record])
        except FileNotFoundError:
            raise ConversationNotFoundError("no such conversation") from None

    def delete_conversation(self, session_key: str, conversation_id: str) -> None:
        """Soft delete: move the file to ``trash/`` (kept on disk, gone from the list), if any."""
        path = self._where(session_key, conversation_id, create=False)
        try:
            with self._locked(path, create=False):
                target = self._move_aside(path, TRASH_DIR)
        except FileNotFoundError:
            return
        except UnusableFile:  # a symlink or a folder in its place: move it, never what it points to
            with _process_lock(path):
                target = self._move_aside(path, TRASH_DIR)
        logger.info("conversation %s moved to %s/", path.stem, target.parent.name)

    def _where(self, session_key: object, conversation_id: object, *, create: bool) -> Path:
        if parse_session_key(conversation_id) is None:  # not echoed: it would reach the logs
            raise ValueError("conversation id must be a canonical lowercase uuid4 string")
        return _conversation_file(self._folder(session_key, create=create), str(conversation_id))

    def _folder(self, session_key: object, *, create: bool) -> Path:
        if not is_store_key(session_key):
            raise ValueError("a session key must be a lowercase uuid4 or a 64-hex owner id")
        return private_dir(self.root / session_key, create=create)

    @contextmanager
    def _locked(self, path: Path, *, create: bool, exclusive: bool = False) -> Iterator[int]:
        """The exclusive ``fcntl`` lock on the file, held on the server by EFS (NFSv4.1)."""
        flags = os.O_RDWR | (os.O_CREAT if create else 0) | (os.O_EXCL if exclusive else 0)
        with _process_lock(path):
            while True:
                with opened(path, flags) as fd:
                    seen = regular_file_stat(fd)
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                    try:
                        still_there = os.path.samestat(seen, os.stat(path, follow_symlinks=False))
                    except FileNotFoundError:
                        still_there = False
                    if still_there:  # else moved aside while we waited: start over on the path
                        yield fd
                        return
                flags &= ~os.O_EXCL

    @contextmanager
    def _guarded(self, path: Path, *, create: bool) -> Iterator[int]:
        """Quarantines a file found corrupt, under its lock when it could be taken."""
        try:
            with self._locked(path, create=create) as fd:
                try:
                    yield fd
                except UnusableFile as exc:
                    self._quarantine(path, exc)
        except UnusableFile as exc:
            self._quarantine(path, exc)

    def _load(self, path: Path, fd: int, new: Callable[[tuple[int, int]], _State]) -> _State:
        """The file parsed incrementally from its cache; the caller holds its in-process lock."""
        info = regular_file_stat(fd)
        with self._cache_lock:  # taken out while parsing: put back only if all went well
            cached = self._cache.pop(str(path), None)
        reuse = cached is not None and _can_resume(fd, info, cached)
        state: _State = cached if reuse else new((info.st_dev, info.st_ino))
        try:
            state.feed(read_range(fd, state.offset, info.st_size))
        except UnusableFile:
            if not reuse:
                raise
            # The cached prefix may be stale (the file changed in place): judge from scratch.
            state = new((info.st_dev, info.st_ino))
            state.feed(read_range(fd, 0, info.st_size))
        with self._cache_lock:  # last in; the least recently read go first
            self._cache[str(path)] = state
            total = sum(cached.offset for cached in self._cache.values())
            while total > _CACHE_MAX_BYTES and len(self._cache) > 1:
                total -= self._cache.popitem(last=False)[1].offset
        return state

    def _parse(self, path: Path, fd: int, *, strict: bool) -> _Parsed:
        """Strict (the lock is held): more bad lines at the end than crashes leave is corrupt."""
        state = self._load(path, fd, lambda file_id: _Parsed(path.stem, file_id))
        if strict and state.unparsed_lines > _MAX_TORN_LINES:
            raise UnusableFile(f"{state.unparsed_lines} unparseable lines at the end")
        return state

    def _forget(self, path: Path) -> None:
        with self._cache_lock:
            self._cache.pop(str(path), None)

    def _append(
        self, path: Path, fd: int, records: list[_Record], title: str = DEFAULT_TITLE
    ) -> None:
        """One ``pwrite`` at the locked file's size (``O_APPEND`` is not atomic across NFS), then
        index it. Nothing is read when the index says the file ends there (every normal turn)."""
        info = os.fstat(fd)
        with self._cache_lock:
            index = self._cache.get(str(path.parent / INDEX_FILE))
        known = index.entries.get(path.stem) if isinstance(index, _Index) else None
        prefix = b""
        if known and (known.size, known.inode) == (info.st_size, info.st_ino):
            summary: ConversationSummary | None = known.summary
        else:
            state = self._parse(path, fd, strict=True)
            if state.offset < info.st_size:
                torn = {"type": "torn", "at": self._clock(), "from": state.offset}
                prefix = (b"" if ends_line(fd, info.st_size) else b"\n") + encode_line(torn)
                lost = info.st_size - state.offset
                logger.warning("conversation %s: %d bytes of a torn write skipped", path.stem, lost)
            summary = state.summary
            if summary is None:
                header = {"type": "conversation", "version": FORMAT_VERSION, "id": path.stem}
                records = [{**header, "created_at": self._clock(), "title": title}, *records]
        for record in records:
            summary = _advance(summary, record)
        data = prefix + b"".join(map(encode_line, records))
        if data:
            write_all(fd, data, info.st_size)
        entry = _Entry(summary, info.st_size + len(data), info.st_ino)  # type: ignore[arg-type]
        self._append_index(path.parent, lambda _: [entry.record()])

    def _read_index(self, folder: Path) -> _Index:
        path = folder / INDEX_FILE
        with _process_lock(path):
            try:
                with opened(path, os.O_RDONLY) as fd:
                    return self._load(path, fd, _Index)
            except FileNotFoundError:
                pass
            except UnusableFile as exc:  # a link or a folder: set aside, and rebuilt
                logger.warning("the index is unusable and is set aside: %s", _describe(exc))
                with suppress(OSError):
                    self._move_aside(path, QUARANTINE_DIR)
            except OSError as exc:  # EIO, ESTALE: the next run tries again
                logger.warning("index not read: %s", _describe(exc))
            return _Index(None)

    def _append_index(
        self, folder: Path, make_records: Callable[[_Index], list[_Record]]
    ) -> _Index | None:
        """Append ``make_records(index)`` under its lock; best effort, like any cache (None)."""
        path = folder / INDEX_FILE
        try:
            with self._locked(path, create=True) as fd:
                if records := make_records(self._load(path, fd, _Index)):
                    append_lines(fd, b"".join(map(encode_line, records)))
                index = self._load(path, fd, _Index)
                if index.records > 2 * len(index.entries) + _INDEX_SLACK:
                    # One record each, renamed into place: waiting writers see that the path names
                    # another file, readers see another inode.
                    temporary = path.with_name("index.tmp")
                    data = b"".join(encode_line(entry.record()) for entry in index.entries.values())
                    with opened(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as new:
                        write_all(new, data, 0)
                    os.replace(temporary, path)
                    self._forget(path)
                return index
        except (UnusableFile, OSError) as exc:  # the next listing sets aside an unusable index
            logger.warning("index not updated: %s", _describe(exc))
        return None

    def _reconcile_index(self, folder: Path, index: _Index, folder_mtime: int) -> _Index:
        """Index the files the index lacks and drop entries whose file is gone, after anyone changed
        the folder. Entries are dropped only if still gone under the index lock, so a conversation
        being created meanwhile stays. (NFS may show another host's folder change a minute late.)"""
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return index
        ids = {name.removesuffix(_JSONL) for name in names if name.endswith(_JSONL)}
        on_disk = {id_ for id_ in ids if parse_session_key(id_) is not None}
        with _process_lock(folder / INDEX_FILE):  # a snapshot; parsing must not hold this lock
            known = set(index.entries)
        found = [e for id_ in on_disk - known if (e := self._entry_from_file(folder, id_))]
        gone = known - on_disk

        def differences(current: _Index) -> list[_Record]:
            # An id the index has now was recorded meanwhile by a writer: newer than ours.
            added = [e.record() for e in found if e.summary.id not in current.entries]
            return added + [
                {"type": "deleted", "id": id_, "at": self._clock()}
                for id_ in gone
                if id_ in current.entries and not os.path.lexists(_conversation_file(folder, id_))
            ]

        if found or gone:
            if (written := self._append_index(folder, differences)) is None:
                return index  # not checked: the next run tries again
            index = written
        if time.time_ns() - folder_mtime >= _RACY_NS:
            index.checked_mtime = folder_mtime
        return index

    def _entry_from_file(self, folder: Path, conversation_id: str) -> _Entry | None:
        path = _conversation_file(folder, conversation_id)
        try:
            with self._locked(path, create=False) as fd:
                state = self._parse(path, fd, strict=True)
                info = os.fstat(fd)
                end = info.st_size if state.offset == info.st_size else -1  # -1: a torn tail
                return None if state.summary is None else _Entry(state.summary, end, info.st_ino)
        except FileNotFoundError:
            return None
        except (UnusableFile, OSError) as exc:  # listed, not moved: opening it says why
            logger.warning("conversation %s is unreadable: %s", conversation_id, _describe(exc))
            with suppress(OSError):
                moved = datetime.fromtimestamp(os.lstat(path).st_mtime, UTC)
                at = moved.isoformat(timespec="milliseconds")
                summary = ConversationSummary(conversation_id, "Unreadable conversation", at, at, 0)
                return _Entry(summary, -1, 0)
            return None

    def _move_aside(self, path: Path, area: str) -> Path:
        """Into ``trash/`` or ``quarantine/``, never deleted."""
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}.{secrets.token_hex(4)}"  # core/purge.py
        target = private_dir(path.parent / area, create=True) / f"{path.stem}.{stamp}{_JSONL}"
        os.rename(path, target)
        self._forget(path)
        if path.name != INDEX_FILE:
            deleted = {"type": "deleted", "id": path.stem, "at": self._clock()}
            self._append_index(path.parent, lambda _: [deleted])
        return target

    def _quarantine(self, path: Path, problem: Exception) -> NoReturn:
        reason = _describe(problem)
        try:
            with _process_lock(path):
                kept = self._move_aside(path, QUARANTINE_DIR)
        except OSError as exc:  # it stays where it is, and the next read tries again
            logger.error("conversation %s is unreadable, not moved: %s", path.stem, _describe(exc))
            kept = path
        else:
            logger.warning("conversation %s moved to %s/: %s", path.stem, kept.parent.name, reason)
        raise CorruptConversationError(f"{_UNREADABLE} ({reason})", kept) from problem
