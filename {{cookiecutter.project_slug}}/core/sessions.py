"""Conversation store: one append-only JSON Lines file per conversation, under one folder.

The folder is an EFS mount on AWS (shared by every task) or a plain folder on a laptop, so a
reload, a new task or another replica finds the same conversations. The README ("How sessions
work") explains the layout, the format, and how cross-host locking, crashes, corruption and the
index are handled; comments here say why each step is needed. Session keys come from the browser
and are hostile: only a canonical uuid4 (a browser) or a 64-hex owner id (a signed-in person,
core/identity.py) names a folder. POSIX only: it relies on ``fcntl``.
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
from functools import partial
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
# Folder times tick coarsely (more on NFS), so a folder changed in the tick of our check looks
# unchanged: as git's "racily clean" rule, one changed this recently is compared again next time.
_RACY_NS = 2_000_000_000
_READ_CHUNK = 1 << 20
# Parse caches are bounded by the file bytes they stand for, so a few long conversations cannot
# exhaust a 512 MB task; the least recently read go first.
_CACHE_MAX_BYTES = 16 * 1024 * 1024
_INDEX_CACHE_MAX_BYTES = 8 * 1024 * 1024
_UNREADABLE_TITLE = "Unreadable conversation"
# With the lock held no write is in flight: one crash leaves an unfinished line, a crash while
# sealing it (or an NFS write flushed in part) one complete bad line. More than that is corruption.
_MAX_TORN_LINES = 1
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_OWNER_ID = re.compile(r"[0-9a-f]{64}")
# In-process locks, striped by path. POSIX locks belong to the process and closing any descriptor
# of a file drops them, so threads serialise here around every open and close of a file. A thread
# takes an index stripe only inside a conversation stripe, never the reverse: no deadlock.
# Re-entrant: quarantine runs inside operations that hold the stripe already.
_CONVERSATION_LOCKS = tuple(threading.RLock() for _ in range(64))
_INDEX_LOCKS = tuple(threading.RLock() for _ in range(16))


def new_session_key() -> str:
    """A fresh random uuid4 (122 bits from the OS): a session key, or a conversation id."""
    return str(uuid.uuid4())


def parse_session_key(raw: object) -> str | None:
    """``raw`` if it is a canonical uuid4 (conversation ids too), else None.

    localStorage values arrive JSON-parsed (numbers, lists, dicts); uppercase, braces, prefixes and
    other versions are refused, not normalised, so a session has one spelling and one folder.
    """
    return raw if type(raw) is str and _UUID4.fullmatch(raw) else None


def is_store_key(raw: object) -> TypeGuard[str]:
    """Whether ``raw`` names a folder under the root: a browser's uuid4 or a signed-in person's
    owner id (which no browser can send). Every per-person file follows it (core/budget.py)."""
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
    """Bad content, or not a regular file we may open: becomes CorruptConversationError."""


def _describe(exc: BaseException) -> str:
    """A reason for the log, never a path: paths hold the session key, a bearer secret."""
    return (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)


# --- records -------------------------------------------------------------------------------------


def _encode(record: dict[str, Any]) -> bytes:
    """One record as one line of JSON (newlines in text are escaped by JSON itself)."""
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate from a browser paste: \u escapes keep it
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return text.encode("ascii") + b"\n"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record on one line, or None if it is not a UTF-8 JSON object with a type."""
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("type"), str) else None


def _advance(
    summary: ConversationSummary | None, record: dict[str, Any]
) -> ConversationSummary | None:
    """The summary after one valid record, for readers and writers alike. Unknown types are
    ignored: during a rolling deploy older tasks must not reject what a newer version wrote."""
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
        """Take in the complete lines of ``data`` (the bytes from ``offset``). Stops before an
        unfinished line or a bad line nothing valid follows yet (a write in flight or a crashed
        one); ``strict`` (the lock is held) refuses more bad lines than crashes leave."""
        base, pos = self.offset, 0
        self.unparsed_lines = 0
        while (end := data.find(b"\n", pos)) >= 0:
            record = _decode(data[pos:end])
            if record is not None:
                self._apply(record)
                pos = end + 1
            elif (resume := _skip_torn(data, end + 1, base + pos)) is not None:
                pos = resume
            else:
                self.unparsed_lines = data.count(b"\n", pos)
                break
            self.offset = base + pos
        if strict and self.unparsed_lines > _MAX_TORN_LINES:
            raise _Corrupt(f"{self.unparsed_lines} unparseable lines at the end")

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record["type"]
        if kind == "torn":
            return  # read in normal flow: the line before it was complete after all
        if (self.summary is None) != (kind == "conversation"):
            raise _Corrupt("the file must start with its one conversation header")
        if kind == "conversation" and record.get("id") != self.conversation_id:
            raise _Corrupt("the header names another conversation")
        if kind == "conversation" and not all(
            isinstance(record.get(name), str) for name in ("created_at", "title")
        ):
            raise _Corrupt("the header needs created_at and title strings")
        if kind == "messages":
            items = record.get("messages")
            if not isinstance(items, list) or not isinstance(record.get("at"), str):
                raise _Corrupt("a messages record needs a list and a time")
            try:
                self.messages.extend(Message.from_dict(item) for item in items)
            except ValueError as exc:
                raise _Corrupt(f"a stored message is malformed: {exc}") from exc
        if kind == "title" and not isinstance(record.get("title"), str):
            raise _Corrupt("a title record needs a title string")
        self.summary = _advance(self.summary, record)


def _skip_torn(data: bytes, scan: int, file_offset: int) -> int | None:
    """The position after the ``torn`` marker that covers the bad line at ``file_offset``, or
    None if no valid line follows yet (the bad line may be a write still in flight)."""
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
    """An index entry: the summary, and the size and inode of the file it describes (size -1: a
    file that could not be read, never taken as the end of the file)."""

    summary: ConversationSummary
    size: int
    inode: int

    def record(self) -> dict[str, Any]:
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
        """Take in the complete lines of ``data``, strict or not. A bad line (a crashed write,
        sealed by the next writer) is skipped: the folder check repairs what the index lacks."""
        complete = data.rfind(b"\n") + 1
        for line in data[:complete].splitlines():
            self.records += 1
            record = _decode(line) or {"type": None}
            if (conversation_id := parse_session_key(record.get("id"))) is None:
                continue
            if record["type"] == "deleted":
                self.entries.pop(conversation_id, None)
            elif record["type"] == "summary" and (entry := _entry_from(record)) is not None:
                self.entries[conversation_id] = entry
        self.offset += complete


def _entry_from(record: dict[str, Any]) -> _Entry | None:
    """The entry a ``summary`` record holds, or None if a field is missing or mistyped."""
    texts = [record.get(name) for name in ("id", "title", "created_at", "updated_at")]
    numbers = [record.get(name) for name in ("message_count", "size", "inode")]
    if not all(isinstance(v, str) for v in texts) or not all(type(v) is int for v in numbers):
        return None
    return _Entry(ConversationSummary(*texts, numbers[0]), numbers[1], numbers[2])


# --- files ---------------------------------------------------------------------------------------


class _Conversation(NamedTuple):
    """Where one conversation lives (its id is validated before one is made)."""

    folder: Path
    id: str

    @property
    def path(self) -> Path:
        return self.folder / f"{self.id}{_JSONL}"


def _clean_title(title: object) -> str:
    """One line of printable text, at most TITLE_MAX_CHARS characters; blank means the default."""
    if not isinstance(title, str):
        raise ValueError("a title must be a string")
    printable = "".join(char if char.isprintable() else " " for char in title)
    return " ".join(printable.split())[:TITLE_MAX_CHARS].rstrip() or DEFAULT_TITLE


def _file_stamp() -> str:
    """Time and randomness for moved-aside names (core/purge.py reads the time back)."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.{secrets.token_hex(4)}"


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


@contextmanager
def _opened(path: Path, flags: int) -> Iterator[int]:
    """A descriptor of ``path``, never through a symlink and never blocking on a FIFO; closing it
    also drops this process's fcntl locks on the file. FileNotFoundError if missing; _Corrupt if
    something else is in its place or it may not be opened; other OSErrors (EIO) as they are."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:
        try:
            entry = os.lstat(path)
        except OSError:
            raise exc from None  # nothing there to blame (a permission problem on the folder)
        if not stat.S_ISREG(entry.st_mode) or isinstance(exc, PermissionError):
            raise _Corrupt(f"the file cannot be opened ({exc.strerror})") from exc
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def _keep(cache: OrderedDict[str, Any], key: str, state: Any, max_bytes: int) -> None:
    """Put ``state`` last in an LRU cache bounded by the file bytes of its entries (``offset``);
    the caller holds the cache lock."""
    cache[key] = state
    cache.move_to_end(key)
    total = sum(cached.offset for cached in cache.values())
    while total > max_bytes and len(cache) > 1:
        total -= cache.popitem(last=False)[1].offset


def _can_resume(
    fd: int, info: os.stat_result, file_id: tuple[int, int] | None, offset: int
) -> bool:
    """Whether parsing may go on at a cached ``offset``: the same file (device and inode), not
    shrunk, and the offset follows a newline. Otherwise it is parsed again from the start."""
    return (
        file_id == (info.st_dev, info.st_ino)
        and offset <= info.st_size
        and (offset == 0 or os.pread(fd, 1, offset - 1) == b"\n")
    )


def _process_lock(path: Path) -> threading.RLock:
    stripes = _INDEX_LOCKS if path.name == INDEX_FILE else _CONVERSATION_LOCKS
    return stripes[hash(str(path)) % len(stripes)]


_State = TypeVar("_State", _Parsed, _Index)


# --- the store -----------------------------------------------------------------------------------


class SessionStore:
    """Conversations of every session under ``root``, as ``<key>/<conversation id>.jsonl``.

    Missing conversations: ``read_messages`` returns ``[]``; ``append_messages`` creates the file
    (a conversation deleted in another tab comes back holding the new messages);
    ``rename_conversation`` raises ConversationNotFoundError; ``delete_conversation`` does nothing.
    Disk errors (ENOSPC, EIO) are not corruption: they propagate as OSError.
    """

    def __init__(self, root: Path, *, clock: Callable[[], str] = utc_now) -> None:
        """Create ``root`` (0o700) if needed, else leave it as it is (an EFS access point root
        belongs to another user); ``clock`` gives record times (tests pin it)."""
        path = Path(root)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root: Path = path.resolve(strict=True)
        self._clock = clock
        self._cache: OrderedDict[str, _Parsed] = OrderedDict()
        self._index_cache: OrderedDict[str, _Index] = OrderedDict()
        self._cache_lock = threading.Lock()

    def list_conversations(self, session_key: str) -> list[ConversationSummary]:
        """Visible conversations, most recently active first, at the same cost whatever their
        number: a stat of the folder and what was added to its index since the last call."""
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
        where = self._where(session_key, new_session_key(), create=True)
        with self._locked(where.path, create=True, exclusive=True) as fd:
            self._append(where, fd, [], title=clean)
        with suppress(OSError):  # make the new name durable (on NFS creation already is)
            fd = os.open(where.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return where.id

    def append_messages(
        self, session_key: str, conversation_id: str, messages: Sequence[Message]
    ) -> None:
        """Append messages as one record: all of them are stored, or (after a crash) none."""
        batch = list(messages)
        if not all(isinstance(message, Message) for message in batch):
            raise TypeError("append_messages takes Message objects")
        where = self._where(session_key, conversation_id, create=bool(batch))
        if batch:
            items = [message.to_dict() for message in batch]
            with self._guarded(where, create=True) as fd:
                self._append(
                    where, fd, [{"type": "messages", "at": self._clock(), "messages": items}]
                )

    def read_messages(self, session_key: str, conversation_id: str) -> list[Message]:
        """All messages in order, without an unfinished last record; ``[]`` if none."""
        where = self._where(session_key, conversation_id, create=False)
        with _process_lock(where.path):
            # Without the file lock: reopening on every read is what NFS close-to-open
            # consistency needs to show other hosts' appends.
            try:
                with _opened(where.path, os.O_RDONLY) as fd:
                    state = self._parse(where, fd, strict=False)
                if state.unparsed_lines <= _MAX_TORN_LINES:
                    return list(state.messages)
            except FileNotFoundError:
                self._forget(where.path)
                return []
            except (_Corrupt, OSError):
                pass
            # A real problem, or a write in flight or a transient NFS error (ESTALE): look again
            # with the lock held before moving anything aside.
            try:
                with self._guarded(where, create=False) as fd:
                    return list(self._parse(where, fd, strict=True).messages)
            except FileNotFoundError:  # gone meanwhile: deleted, or quarantined by another task
                moved = sorted((where.folder / QUARANTINE_DIR).glob(f"{where.id}.*{_JSONL}"))
                if not moved:
                    return []
                message = "This conversation could not be read and was kept aside."
                raise CorruptConversationError(message, moved[-1]) from None

    def rename_conversation(self, session_key: str, conversation_id: str, title: str) -> None:
        """Give the conversation a new title (appended; the last title wins)."""
        where = self._where(session_key, conversation_id, create=False)
        record = {"type": "title", "at": self._clock(), "title": _clean_title(title)}
        try:
            with self._guarded(where, create=False) as fd:
                self._append(where, fd, [record])
        except FileNotFoundError:
            raise ConversationNotFoundError("no such conversation") from None

    def delete_conversation(self, session_key: str, conversation_id: str) -> None:
        """Soft delete: move the file to ``trash/`` (kept on disk, gone from the list)."""
        where = self._where(session_key, conversation_id, create=False)
        try:
            with self._locked(where.path, create=False):
                target = self._move_aside(where, TRASH_DIR)
        except FileNotFoundError:
            return
        except _Corrupt:  # a symlink or a folder in its place: move it, never what it points to
            with _process_lock(where.path):
                target = self._move_aside(where, TRASH_DIR)
        logger.info("conversation %s moved to %s/", where.id, target.parent.name)

    # --- paths -----------------------------------------------------------------------------------

    def _where(
        self, session_key: object, conversation_id: object, *, create: bool
    ) -> _Conversation:
        """Check the conversation id, then the session key and its folder: nothing reaches the
        disk before both pass."""
        if parse_session_key(conversation_id) is None:  # not echoed: it would reach the logs
            raise ValueError("conversation id must be a canonical lowercase uuid4 string")
        return _Conversation(self._folder(session_key, create=create), str(conversation_id))

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
        # The root is resolved and every name below it validated, so the path resolves to itself
        # unless some component is a symlink.
        resolved = folder.resolve()
        if resolved != folder or not resolved.is_relative_to(self.root):
            raise UnsafePathError(f"{folder} leads outside the sessions folder or through a link")
        if create and not folder.is_dir():
            raise UnsafePathError(f"{folder} is not a folder")
        return folder

    # --- locking, parsing, writing ---------------------------------------------------------------

    @contextmanager
    def _locked(self, path: Path, *, create: bool, exclusive: bool = False) -> Iterator[int]:
        """Hold the exclusive ``fcntl`` lock on the whole file (NFSv4.1, hence EFS, keeps it on
        the server; a dead host's lapses with its lease); yields a read-write descriptor."""
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
    def _guarded(self, where: _Conversation, *, create: bool) -> Iterator[int]:
        """The conversation's lock; a file found corrupt is quarantined (still locked if it was)."""
        try:
            with self._locked(where.path, create=create) as fd:
                try:
                    yield fd
                except _Corrupt as exc:
                    self._quarantine(where, exc)
        except _Corrupt as exc:
            self._quarantine(where, exc)

    def _load(
        self, path: Path, fd: int, new: Callable[[tuple[int, int]], _State], strict: bool = False
    ) -> _State:
        """The parsed file (a conversation or an index), reading only what was added since the
        cached offset; the caller holds the file's in-process lock."""
        index = path.name == INDEX_FILE
        cache: OrderedDict[str, Any] = self._index_cache if index else self._cache
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Corrupt("not a regular file")
        file_id = (info.st_dev, info.st_ino)
        with self._cache_lock:
            cached = cache.get(str(path))
        reuse = cached is not None and _can_resume(fd, info, cached.file_id, cached.offset)
        state: _State = cached if reuse else new(file_id)
        try:
            try:
                state.feed(_read_range(fd, state.offset, info.st_size), strict)
            except _Corrupt:
                if not reuse:
                    raise
                # The cached prefix may be stale (the file changed in place): judge from scratch.
                state = new(file_id)
                state.feed(_read_range(fd, 0, info.st_size), strict)
        except BaseException:
            self._forget(path)  # possibly half-applied
            raise
        with self._cache_lock:
            _keep(cache, str(path), state, _INDEX_CACHE_MAX_BYTES if index else _CACHE_MAX_BYTES)
        return state

    def _parse(self, where: _Conversation, fd: int, *, strict: bool) -> _Parsed:
        return self._load(where.path, fd, partial(_Parsed, where.id), strict)

    def _forget(self, path: Path) -> None:
        with self._cache_lock:
            self._cache.pop(str(path), None)
            self._index_cache.pop(str(path), None)

    def _append(
        self,
        where: _Conversation,
        fd: int,
        records: list[dict[str, Any]],
        *,
        title: str = DEFAULT_TITLE,
    ) -> None:
        """Append records to the locked file (after a header if it has none), then index it.

        One ``pwrite`` at the size ``fstat`` gives under the lock: ``O_APPEND`` is not atomic
        across NFS clients. If the index says the file ends at that size (every normal turn),
        nothing is read; otherwise the file is parsed (from the cache) to find where its valid
        part ends, and a crash's leftover there is sealed by a newline and a ``torn`` marker.
        """
        info = os.fstat(fd)
        known = self._indexed(where)
        prefix = b""
        if known and info.st_size > 0 and (known.size, known.inode) == (info.st_size, info.st_ino):
            summary: ConversationSummary | None = known.summary
        else:
            state = self._parse(where, fd, strict=True)
            if state.offset < info.st_size:
                sealed = os.pread(fd, 1, info.st_size - 1) == b"\n"
                torn = {"type": "torn", "at": self._clock(), "from": state.offset}
                prefix = (b"" if sealed else b"\n") + _encode(torn)
                lost = info.st_size - state.offset
                logger.warning("conversation %s: %d bytes of a torn write skipped", where.id, lost)
            summary = state.summary
            if summary is None:
                header = {"type": "conversation", "version": FORMAT_VERSION, "id": where.id}
                at = self._clock()
                records = [{**header, "created_at": at, "title": title}, *records]
        for record in records:
            summary = _advance(summary, record)
        data = prefix + b"".join(map(_encode, records))
        if data:
            _write_all(fd, data, info.st_size)
        entry = _Entry(summary, info.st_size + len(data), info.st_ino)  # type: ignore[arg-type]
        self._append_index(where.folder, lambda _: [entry.record()])

    # --- the index (index.jsonl: the sidebar's summaries, a disposable cache) ------------------

    def _read_index(self, folder: Path) -> _Index:
        path = folder / INDEX_FILE
        with _process_lock(path):
            try:
                with _opened(path, os.O_RDONLY) as fd:
                    return self._load(path, fd, _Index)
            except FileNotFoundError:  # remembered: the folder is not compared on every call
                with self._cache_lock:
                    cached = self._index_cache.get(str(path))
                    if cached is None or cached.file_id is not None:
                        cached = _Index(None)
                        _keep(self._index_cache, str(path), cached, _INDEX_CACHE_MAX_BYTES)
                    return cached
            except _Corrupt as exc:
                return self._index_unusable(folder, exc)
            except OSError as exc:  # EIO, ESTALE: the next run tries again
                logger.warning("index not read: %s", _describe(exc))
                return _Index(None)

    def _indexed(self, where: _Conversation) -> _Entry | None:
        """The entry this process last read for a conversation (no I/O; possibly stale)."""
        with self._cache_lock:
            index = self._index_cache.get(str(where.folder / INDEX_FILE))
        return None if index is None else index.entries.get(where.id)

    def _append_index(
        self, folder: Path, make_records: Callable[[_Index], list[dict[str, Any]]]
    ) -> _Index | None:
        """Append ``make_records(index as it is under the lock)``; compact when mostly superseded.
        Best effort: the folder check rebuilds what the index misses. None if not written."""
        path = folder / INDEX_FILE
        try:
            with self._locked(path, create=True) as fd:
                if records := make_records(self._load(path, fd, _Index)):
                    size = os.fstat(fd).st_size
                    # A crashed writer may have left half a line: never glue a record onto it.
                    sealed = size == 0 or os.pread(fd, 1, size - 1) == b"\n"
                    data = b"".join(map(_encode, records))
                    _write_all(fd, data if sealed else b"\n" + data, size)
                index = self._load(path, fd, _Index)
                if index.records > 2 * len(index.entries) + _INDEX_SLACK:
                    index = self._compact_index(path, index)
                return index
        except _Corrupt as exc:
            self._index_unusable(folder, exc)
        except OSError as exc:
            logger.warning("index not updated: %s", _describe(exc))
        return None

    def _compact_index(self, path: Path, index: _Index) -> _Index:
        """Replace the index (locked) with one record per conversation. Writers waiting for the
        old file see that the path names another and start over; readers see another inode."""
        temporary = path.with_name("index.tmp")
        data = b"".join(_encode(entry.record()) for entry in index.entries.values())
        with _opened(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as fd:
            _write_all(fd, data, 0)
        os.replace(temporary, path)
        info = os.stat(path, follow_symlinks=False)
        compacted = _Index((info.st_dev, info.st_ino), len(data), len(index.entries))
        compacted.entries = dict(index.entries)
        with self._cache_lock:
            _keep(self._index_cache, str(path), compacted, _INDEX_CACHE_MAX_BYTES)
        return compacted

    def _reconcile_index(self, folder: Path, index: _Index, folder_mtime: int) -> _Index:
        """Add to the index the files it lacks and drop entries whose file is gone: the folder
        changed (by anyone) since this process looked, or the index was lost or replaced.

        Files are parsed under their own lock before the index lock is taken (never the
        reverse); an entry is dropped only if its file is still gone under the index lock, so
        one being created meanwhile stays. (On NFS another host's folder change may show up to a
        minute late; the index records it wrote show at once.)
        """
        try:
            names = [
                name.removesuffix(_JSONL) for name in os.listdir(folder) if name.endswith(_JSONL)
            ]
        except FileNotFoundError:
            return index
        on_disk = {name for name in names if parse_session_key(name) is not None}
        with _process_lock(folder / INDEX_FILE):  # a snapshot; parsing must not hold this lock
            known = set(index.entries)
        found = [entry for id_ in on_disk - known if (entry := self._entry_from_file(folder, id_))]
        gone = known - on_disk

        def differences(current: _Index) -> list[dict[str, Any]]:
            # An id the index has now was recorded meanwhile by a writer: newer than ours.
            added = [e.record() for e in found if e.summary.id not in current.entries]
            return added + [
                {"type": "deleted", "id": id_, "at": self._clock()}
                for id_ in gone
                if id_ in current.entries and not os.path.lexists(_Conversation(folder, id_).path)
            ]

        if found or gone:
            if (written := self._append_index(folder, differences)) is None:
                return index  # not checked: the next run tries again
            index = written
        if time.time_ns() - folder_mtime >= _RACY_NS:
            index.checked_mtime = folder_mtime
        return index

    def _entry_from_file(self, folder: Path, conversation_id: str) -> _Entry | None:
        """The index entry parsed from the file; None while it is being created."""
        where = _Conversation(folder, conversation_id)
        try:
            with self._locked(where.path, create=False) as fd:
                state = self._parse(where, fd, strict=True)
                info = os.fstat(fd)
                end = info.st_size if state.offset == info.st_size else -1  # -1: a torn tail
                return None if state.summary is None else _Entry(state.summary, end, info.st_ino)
        except FileNotFoundError:
            return None
        except (_Corrupt, OSError) as exc:  # listed, not moved: opening it says why
            logger.warning("conversation %s is unreadable: %s", conversation_id, _describe(exc))
            try:
                info = os.lstat(where.path)
            except OSError:
                return None
            at = datetime.fromtimestamp(info.st_mtime, UTC).isoformat(timespec="milliseconds")
            return _Entry(
                ConversationSummary(where.id, _UNREADABLE_TITLE, at, at, 0), -1, info.st_ino
            )

    def _index_unusable(self, folder: Path, problem: Exception) -> _Index:
        """An index we cannot read (a link, a folder, no permission): set it aside, rebuild."""
        logger.warning("the index is unusable and is set aside: %s", _describe(problem))
        with suppress(OSError):
            aside = self._private_dir(folder / QUARANTINE_DIR, create=True)
            os.rename(folder / INDEX_FILE, aside / f"index.{_file_stamp()}{_JSONL}")
        self._forget(folder / INDEX_FILE)
        return _Index(None)

    # --- moving files aside ----------------------------------------------------------------------

    def _move_aside(self, where: _Conversation, area: str) -> Path:
        """Rename the file into ``trash/`` or ``quarantine/`` and drop it from the index."""
        target = self._private_dir(where.folder / area, create=True)
        target /= f"{where.id}.{_file_stamp()}{_JSONL}"
        os.rename(where.path, target)
        self._forget(where.path)
        deleted = {"type": "deleted", "id": where.id, "at": self._clock()}
        self._append_index(where.folder, lambda _: [deleted])
        return target

    def _quarantine(self, where: _Conversation, problem: Exception) -> NoReturn:
        """Move a corrupt file to ``quarantine/`` and raise CorruptConversationError."""
        reason = _describe(problem)
        logger.warning("conversation %s is corrupt or unreadable: %s", where.id, reason)
        try:
            with _process_lock(where.path):
                target = self._move_aside(where, QUARANTINE_DIR)
        except OSError as exc:
            logger.error("conversation %s could not be moved aside: %s", where.id, _describe(exc))
            message = "This conversation could not be read, nor moved aside; it was left in place."
            raise CorruptConversationError(message, where.path) from problem
        logger.warning("conversation %s moved to %s/", where.id, target.parent.name)
        raise CorruptConversationError(
            "This conversation could not be read. It was kept aside for an administrator, "
            f"and a new one can be started. ({reason})",
            target,
        ) from problem
