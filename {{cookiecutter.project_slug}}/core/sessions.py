"""Conversation store: one append-only JSON Lines file per conversation, in a folder that every
task shares (EFS on AWS), so a reload, a new task or another replica finds the same conversations.

The README ("How sessions work") explains the layout, the format, the cross-host locking, and how
crashes, corruption and the index are handled; comments here say why each step is needed. POSIX
only (``fcntl``). Session keys come from the browser and are treated as hostile.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import stat
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
# recently may change again within the same tick, so it is compared again on the next listing.
_RACY_NS = 2_000_000_000
_READ_CHUNK = 1 << 20
# Parse caches, bounded by the file bytes they stand for: long chats cannot fill a 512 MB task.
_CACHE_MAX_BYTES = 16 * 1024 * 1024
_INDEX_CACHE_MAX_BYTES = 8 * 1024 * 1024
_UNREADABLE_TITLE = "Unreadable conversation"
# With the lock held no write is in flight: one crash leaves an unfinished line, a crash while
# sealing it (or an NFS write flushed in part) one complete bad line. More than that is corruption.
_MAX_TORN_LINES = 1
# The fields each record type needs; other types are skipped: during a rolling deploy older tasks
# must not reject what a newer version wrote.
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
# POSIX locks belong to the process and closing any descriptor of a file drops them, so threads
# also take one of these around every open and close. An index stripe is taken only inside a
# conversation stripe, never the reverse (no deadlock); re-entrant for quarantine.
_CONVERSATION_LOCKS = tuple(threading.RLock() for _ in range(64))
_INDEX_LOCKS = tuple(threading.RLock() for _ in range(16))

_Record = dict[str, Any]


def new_session_key() -> str:
    """A fresh random uuid4 (122 bits from the OS): a session key, or a conversation id."""
    return str(uuid.uuid4())


def parse_session_key(raw: object) -> str | None:
    """``raw`` if it is a canonical uuid4 (conversation ids too), else None: other types, cases,
    braces and versions are refused, not normalised, so a session has one spelling, one folder."""
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
    """The conversation could not be read and was moved to ``quarantined_to`` (kept, not deleted;
    if it could not be moved, that is where it still is, and the next read tries again)."""

    def __init__(self, message: str, quarantined_to: Path) -> None:
        super().__init__(message)
        self.quarantined_to = quarantined_to


class ConversationNotFoundError(LookupError):
    """The conversation does not exist (never created, deleted, or quarantined)."""


class UnsafePathError(ValueError):
    """A folder under the root is a symlink or not a folder: refused rather than followed."""


class _Corrupt(Exception):
    """Bad content, or not a regular file we may open (quarantined by the store)."""


def _describe(exc: BaseException) -> str:
    """A reason for the log, never a path: paths hold the session key, a bearer secret."""
    return (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)


def _encode(record: _Record) -> bytes:
    """One record as one line of JSON (newlines in text are escaped by JSON itself)."""
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate from a browser paste: \u escapes keep it
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return text.encode("ascii") + b"\n"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _decode(line: bytes) -> _Record | None:
    """The record on one line, or None if it is not a UTF-8 JSON object with a type."""
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("type"), str) else None


def _well_formed(record: _Record) -> bool:
    return all(type(record.get(k)) is t for k, t in _FIELDS.get(record["type"], {}).items())


def _advance(summary: ConversationSummary | None, record: _Record) -> ConversationSummary | None:
    """The summary after one well-formed record: the only rule, for readers and writers alike."""
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

    def feed(self, data: bytes, strict: bool) -> None:
        """Take in the lines of ``data`` (the bytes from ``offset``), up to an unfinished one or a
        bad one nothing valid follows yet (a write in flight, or a crash: strict refuses more)."""
        base, pos = self.offset, 0
        self.unparsed_lines = 0
        while (end := data.find(b"\n", pos)) >= 0:
            record = _decode(data[pos:end])
            if record is not None:
                self._apply(record)
                pos = end + 1
            elif (resume := self._skip_torn(data, end + 1, base + pos)) is not None:
                pos = resume
            else:
                self.unparsed_lines = data.count(b"\n", pos)
                break
            self.offset = base + pos
        if strict and self.unparsed_lines > _MAX_TORN_LINES:
            raise _Corrupt(f"{self.unparsed_lines} unparseable lines at the end")

    def _apply(self, record: _Record) -> None:
        kind = record["type"]
        if kind == "torn":
            return  # read in normal flow: the line before it was complete after all
        if (self.summary is None) != (kind == "conversation"):
            raise _Corrupt("the file must start with its one conversation header")
        if not _well_formed(record):
            raise _Corrupt(f"a {kind} record lacks a field, or it has the wrong type")
        if kind == "conversation" and record["id"] != self.conversation_id:
            raise _Corrupt("the header names another conversation")
        if kind == "messages":
            try:
                self.messages += [Message.from_dict(item) for item in record["messages"]]
            except ValueError as exc:
                raise _Corrupt(f"a stored message is malformed: {exc}") from exc
        self.summary = _advance(self.summary, record)

    @staticmethod
    def _skip_torn(data: bytes, scan: int, file_offset: int) -> int | None:
        """Where parsing goes on after the ``torn`` marker covering the bad line at
        ``file_offset``; None if no valid line follows yet (a write may be in flight)."""
        while (end := data.find(b"\n", scan)) >= 0:
            record = _decode(data[scan:end])
            if record is None:
                scan = end + 1  # another leftover of an interrupted write
                continue
            marker = record.get("from")
            if record["type"] == "torn" and type(marker) is int and marker == file_offset:
                return end + 1
            raise _Corrupt(f"byte {file_offset}: a line that is not a valid record")
        return None


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

    def feed(self, data: bytes, strict: bool = False) -> None:
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
    """The one place a conversation's file name is made (the id is validated before)."""
    return folder / f"{conversation_id}{_JSONL}"


def _clean_title(title: object) -> str:
    """One line of printable text, at most TITLE_MAX_CHARS characters; blank means the default."""
    if not isinstance(title, str):
        raise ValueError("a title must be a string")
    printable = "".join(char if char.isprintable() else " " for char in title)
    return " ".join(printable.split())[:TITLE_MAX_CHARS].rstrip() or DEFAULT_TITLE


def _read_range(fd: int, start: int, stop: int) -> bytes:
    chunks: list[bytes] = []
    while start < stop and (chunk := os.pread(fd, min(stop - start, _READ_CHUNK), start)):
        chunks.append(chunk)
        start += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    """``pwrite`` at ``offset`` (the loop covers a short write), then ``fsync``."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    os.fsync(fd)


def _ends_line(fd: int, offset: int) -> bool:
    """Whether ``offset`` is 0 or just after a newline: not inside a crashed write's half line."""
    return offset == 0 or os.pread(fd, 1, offset - 1) == b"\n"


@contextmanager
def _opened(path: Path, flags: int) -> Iterator[int]:
    """A descriptor of ``path``, never through a symlink nor blocking on a FIFO; closing it drops
    this process's fcntl locks on the file."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink, EISDIR: a folder, EACCES: not ours to read
        if not stat.S_ISREG(os.lstat(path).st_mode) or isinstance(exc, PermissionError):
            raise _Corrupt(f"the file cannot be opened ({exc.strerror})") from exc
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def _can_resume(fd: int, info: os.stat_result, cached: _Parsed | _Index) -> bool:
    """Whether parsing may go on at a cached offset: same device and inode, not shrunk, and the
    offset follows a newline. Otherwise the file is parsed again from the start."""
    same_file = cached.file_id == (info.st_dev, info.st_ino)
    return same_file and cached.offset <= info.st_size and _ends_line(fd, cached.offset)


def _process_lock(path: Path) -> threading.RLock:
    stripes = _INDEX_LOCKS if path.name == INDEX_FILE else _CONVERSATION_LOCKS
    return stripes[hash(str(path)) % len(stripes)]


_State = TypeVar("_State", _Parsed, _Index)


class SessionStore:
    """Conversations of every session under ``root``, as ``<key>/<conversation id>.jsonl``.
    Disk errors (ENOSPC, EIO) are not corruption: they propagate as OSError."""

    def __init__(self, root: Path, *, clock: Callable[[], str] = utc_now) -> None:
        """Create ``root`` (0o700) unless it exists (an EFS access point root stays as it is)."""
        path = Path(root)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root: Path = path.resolve(strict=True)
        self._clock = clock
        self._cache: OrderedDict[str, _Parsed] = OrderedDict()
        self._index_cache: OrderedDict[str, _Index] = OrderedDict()
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
        clean = _clean_title(title)
        path = self._where(session_key, new_session_key(), create=True)
        with self._locked(path, create=True, exclusive=True) as fd:
            self._append(path, fd, [], title=clean)
        with suppress(OSError, _Corrupt), _opened(path.parent, os.O_RDONLY) as fd:
            os.fsync(fd)  # the new name made durable (on NFS, creating already is)
        return path.stem

    def append_messages(
        self, session_key: str, conversation_id: str, messages: Sequence[Message]
    ) -> None:
        """Append messages as one record: all stored, or (after a crash) none. Creates a missing
        conversation: one deleted in another tab comes back holding the new messages."""
        batch = list(messages)
        if not all(isinstance(message, Message) for message in batch):
            raise TypeError("append_messages takes Message objects")
        path = self._where(session_key, conversation_id, create=bool(batch))
        if batch:
            items = [message.to_dict() for message in batch]
            with self._guarded(path, create=True) as fd:
                record = {"type": "messages", "at": self._clock(), "messages": items}
                self._append(path, fd, [record])

    def read_messages(self, session_key: str, conversation_id: str) -> list[Message]:
        """All messages in order, without an unfinished last record; ``[]`` if none."""
        path = self._where(session_key, conversation_id, create=False)
        with _process_lock(path):
            # Without the file lock: reopening on every read is what NFS close-to-open
            # consistency needs to show other hosts' appends.
            try:
                with _opened(path, os.O_RDONLY) as fd:
                    state = self._parse(path, fd, strict=False)
                if state.unparsed_lines <= _MAX_TORN_LINES:
                    return list(state.messages)
            except FileNotFoundError:
                self._forget(path)
                return []
            except (_Corrupt, OSError):
                pass
            # A real problem, or a write in flight or a transient NFS error (ESTALE): look again
            # with the lock held before moving anything aside.
            try:
                with self._guarded(path, create=False) as fd:
                    return list(self._parse(path, fd, strict=True).messages)
            except FileNotFoundError:  # gone meanwhile: deleted, or quarantined by another task
                moved = sorted((path.parent / QUARANTINE_DIR).glob(f"{path.stem}.*{_JSONL}"))
                if not moved:
                    return []
                message = "This conversation could not be read and was kept aside."
                raise CorruptConversationError(message, moved[-1]) from None

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
        except _Corrupt:  # a symlink or a folder in its place: move it, never what it points to
            with _process_lock(path):
                target = self._move_aside(path, TRASH_DIR)
        logger.info("conversation %s moved to %s/", path.stem, target.parent.name)

    def _where(self, session_key: object, conversation_id: object, *, create: bool) -> Path:
        """The conversation's file; both values are checked before the disk is touched."""
        if parse_session_key(conversation_id) is None:  # not echoed: it would reach the logs
            raise ValueError("conversation id must be a canonical lowercase uuid4 string")
        return _conversation_file(self._folder(session_key, create=create), str(conversation_id))

    def _folder(self, session_key: object, *, create: bool) -> Path:
        if not is_store_key(session_key):
            raise ValueError(
                "session key must be a canonical lowercase uuid4 string or a 64-character "
                "lowercase hex owner id"
            )
        return self._private_dir(self.root / session_key, create=create)

    def _private_dir(self, folder: Path, *, create: bool) -> Path:
        """``folder`` (created 0o700 if asked), proven to be that folder and not a link."""
        if create:
            with suppress(FileExistsError):
                folder.mkdir(mode=0o700)
        # Names below the resolved root are validated: only a symlink makes the path resolve away.
        resolved = folder.resolve()
        if resolved != folder or not resolved.is_relative_to(self.root):
            raise UnsafePathError(f"{folder} leads outside the sessions folder or through a link")
        if create and not folder.is_dir():
            raise UnsafePathError(f"{folder} is not a folder")
        return folder

    @contextmanager
    def _locked(self, path: Path, *, create: bool, exclusive: bool = False) -> Iterator[int]:
        """Hold the exclusive ``fcntl`` lock on the file (EFS keeps it on the server; a dead
        host's lapses with its NFS lease); yields a read-write descriptor."""
        flags = os.O_RDWR
        if create:
            flags |= os.O_CREAT | (os.O_EXCL if exclusive else 0)
        with _process_lock(path):
            while True:
                with _opened(path, flags) as fd:
                    opened = os.fstat(fd)
                    if not stat.S_ISREG(opened.st_mode):
                        raise _Corrupt("not a regular file")
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                    try:
                        current = os.stat(path, follow_symlinks=False)
                    except FileNotFoundError:
                        current = None
                    # Moved aside while we waited: start over on the path.
                    if current is not None and os.path.samestat(current, opened):
                        yield fd
                        return
                flags &= ~os.O_EXCL

    @contextmanager
    def _guarded(self, path: Path, *, create: bool) -> Iterator[int]:
        """The conversation's lock; a file found corrupt is quarantined (still locked if it was)."""
        try:
            with self._locked(path, create=create) as fd:
                try:
                    yield fd
                except _Corrupt as exc:
                    self._quarantine(path, exc)
        except _Corrupt as exc:
            self._quarantine(path, exc)

    def _load(
        self, path: Path, fd: int, new: Callable[[tuple[int, int]], _State], strict: bool = False
    ) -> _State:
        """The parsed file (a conversation or an index), reading only what was added since the
        cached offset; the caller holds the file's in-process lock."""
        index = path.name == INDEX_FILE
        cache: OrderedDict[str, Any] = self._index_cache if index else self._cache
        limit = _INDEX_CACHE_MAX_BYTES if index else _CACHE_MAX_BYTES
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Corrupt("not a regular file")
        with self._cache_lock:
            cached = cache.get(str(path))
        reuse = cached is not None and _can_resume(fd, info, cached)
        state: _State = cached if reuse else new((info.st_dev, info.st_ino))
        try:
            try:
                state.feed(_read_range(fd, state.offset, info.st_size), strict)
            except _Corrupt:
                if not reuse:
                    raise
                # The cached prefix may be stale (the file changed in place): judge from scratch.
                state = new((info.st_dev, info.st_ino))
                state.feed(_read_range(fd, 0, info.st_size), strict)
        except BaseException:
            self._forget(path)  # possibly half-applied
            raise
        with self._cache_lock:  # last in, least recently read out first
            cache[str(path)] = state
            cache.move_to_end(str(path))
            total = sum(cached.offset for cached in cache.values())
            while total > limit and len(cache) > 1:
                total -= cache.popitem(last=False)[1].offset
        return state

    def _parse(self, path: Path, fd: int, *, strict: bool) -> _Parsed:
        return self._load(path, fd, lambda file_id: _Parsed(path.stem, file_id), strict)

    def _forget(self, path: Path) -> None:
        with self._cache_lock:
            self._cache.pop(str(path), None)
            self._index_cache.pop(str(path), None)

    def _append(
        self, path: Path, fd: int, records: list[_Record], title: str = DEFAULT_TITLE
    ) -> None:
        """Append to the locked file with one ``pwrite`` at its size (``O_APPEND`` is not atomic
        across NFS clients), then index it. When the index says the file ends there (every
        normal turn) nothing is read; otherwise it is parsed to find where its valid part ends,
        and a crash's leftover there is sealed off by a ``torn`` marker."""
        info = os.fstat(fd)
        with self._cache_lock:
            index = self._index_cache.get(str(path.parent / INDEX_FILE))
        known = index.entries.get(path.stem) if index else None
        prefix = b""
        if known and info.st_size > 0 and (known.size, known.inode) == (info.st_size, info.st_ino):
            summary: ConversationSummary | None = known.summary
        else:
            state = self._parse(path, fd, strict=True)
            if state.offset < info.st_size:
                torn = {"type": "torn", "at": self._clock(), "from": state.offset}
                prefix = (b"" if _ends_line(fd, info.st_size) else b"\n") + _encode(torn)
                lost = info.st_size - state.offset
                logger.warning("conversation %s: %d bytes of a torn write skipped", path.stem, lost)
            summary = state.summary
            if summary is None:
                header = {"type": "conversation", "version": FORMAT_VERSION, "id": path.stem}
                records = [{**header, "created_at": self._clock(), "title": title}, *records]
        for record in records:
            summary = _advance(summary, record)
        data = prefix + b"".join(map(_encode, records))
        if data:
            _write_all(fd, data, info.st_size)
        entry = _Entry(summary, info.st_size + len(data), info.st_ino)  # type: ignore[arg-type]
        self._append_index(path.parent, lambda _: [entry.record()])

    def _read_index(self, folder: Path) -> _Index:
        path = folder / INDEX_FILE
        with _process_lock(path):
            try:
                with _opened(path, os.O_RDONLY) as fd:
                    return self._load(path, fd, _Index)
            except FileNotFoundError:
                return _Index(None)
            except _Corrupt as exc:
                return self._index_unusable(path, exc)
            except OSError as exc:  # EIO, ESTALE: the next run tries again
                logger.warning("index not read: %s", _describe(exc))
                return _Index(None)

    def _append_index(
        self, folder: Path, make_records: Callable[[_Index], list[_Record]]
    ) -> _Index | None:
        """Append ``make_records(index under the lock)``, compacting it when mostly superseded.
        Best effort (the folder check rebuilds what it misses): None if not written."""
        path = folder / INDEX_FILE
        try:
            with self._locked(path, create=True) as fd:
                if records := make_records(self._load(path, fd, _Index)):
                    size = os.fstat(fd).st_size
                    seal = b"" if _ends_line(fd, size) else b"\n"
                    _write_all(fd, seal + b"".join(map(_encode, records)), size)
                index = self._load(path, fd, _Index)
                if index.records > 2 * len(index.entries) + _INDEX_SLACK:
                    # One record each, renamed into place: waiting writers see that the path names
                    # another file, readers see another inode.
                    temporary = path.with_name("index.tmp")
                    data = b"".join(_encode(entry.record()) for entry in index.entries.values())
                    with _opened(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as new:
                        _write_all(new, data, 0)
                    os.replace(temporary, path)
                    self._forget(path)
                return index
        except _Corrupt as exc:
            self._index_unusable(path, exc)
        except OSError as exc:
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
        """The entry parsed from the file (None while it is being created)."""
        path = _conversation_file(folder, conversation_id)
        try:
            with self._locked(path, create=False) as fd:
                state = self._parse(path, fd, strict=True)
                info = os.fstat(fd)
                end = info.st_size if state.offset == info.st_size else -1  # -1: a torn tail
                return None if state.summary is None else _Entry(state.summary, end, info.st_ino)
        except FileNotFoundError:
            return None
        except (_Corrupt, OSError) as exc:  # listed, not moved: opening it says why
            logger.warning("conversation %s is unreadable: %s", conversation_id, _describe(exc))
            with suppress(OSError):
                moved = datetime.fromtimestamp(os.lstat(path).st_mtime, UTC)
                at = moved.isoformat(timespec="milliseconds")
                summary = ConversationSummary(conversation_id, _UNREADABLE_TITLE, at, at, 0)
                return _Entry(summary, -1, 0)
            return None

    def _index_unusable(self, path: Path, problem: Exception) -> _Index:
        """An index that cannot be read (a link, a folder): set aside, and rebuilt."""
        logger.warning("the index is unusable and is set aside: %s", _describe(problem))
        with suppress(OSError):
            self._move_aside(path, QUARANTINE_DIR)
        return _Index(None)

    def _move_aside(self, path: Path, area: str) -> Path:
        """Rename a file into ``trash/`` or ``quarantine/`` (never deleted), out of the index."""
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}.{secrets.token_hex(4)}"  # core/purge.py
        target = self._private_dir(path.parent / area, create=True) / f"{path.stem}.{stamp}{_JSONL}"
        os.rename(path, target)
        self._forget(path)
        if path.name != INDEX_FILE:
            deleted = {"type": "deleted", "id": path.stem, "at": self._clock()}
            self._append_index(path.parent, lambda _: [deleted])
        return target

    def _quarantine(self, path: Path, problem: Exception) -> NoReturn:
        """Move a corrupt file to ``quarantine/`` and raise CorruptConversationError."""
        reason = _describe(problem)
        logger.warning("conversation %s is corrupt or unreadable: %s", path.stem, reason)
        try:
            with _process_lock(path):
                target = self._move_aside(path, QUARANTINE_DIR)
        except OSError as exc:
            logger.error("conversation %s could not be moved aside: %s", path.stem, _describe(exc))
            message = "This conversation could not be read, nor moved aside; it was left in place."
            raise CorruptConversationError(message, path) from problem
        logger.warning("conversation %s moved to %s/", path.stem, target.parent.name)
        message = "This conversation could not be read. It was kept aside for an administrator, "
        message += f"and a new one can be started. ({reason})"
        raise CorruptConversationError(message, target) from problem
