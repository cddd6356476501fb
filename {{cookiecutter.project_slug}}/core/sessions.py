"""Conversation store on a directory: an EFS mount on AWS, a plain folder on a laptop.

The browser keeps only a random session key (a uuid4); everything else lives here, so a reload, a
new task or a second replica finds the same conversations. The key is a bearer secret and arrives
from the browser, so it is treated as hostile: anything but a canonical lowercase uuid4 is refused
(``parse_session_key`` returns None, store methods raise ``ValueError``), and so are conversation
ids. A signed-in person's folder is keyed by their owner id instead (64 lowercase hex characters
from core/identity.py): store methods accept it, ``parse_session_key`` never does, so nothing a
browser sends can name a person's folder. Paths are built only from validated uuids and owner
ids, the session folder is resolved and must be exactly ``<root>/<key>`` (a symlink anywhere below
the root is refused), and files are opened with ``O_NOFOLLOW`` and must be regular files. JSON
only: nothing read from disk is ever executed.

Layout (directories 0o700, files 0o600; the root may already exist and belong to another user, as
an EFS access point root does, and is left as it is)::

    <root>/<session-key>/<conversation-id>.jsonl       the conversation: the only source of truth
    <root>/<session-key>/index.jsonl                   the sidebar's summaries: a disposable cache
    <root>/<session-key>/trash/<id>.<time>.<rand>.jsonl       soft-deleted conversations
    <root>/<session-key>/quarantine/<id>.<time>.<rand>.jsonl  corrupt ones, kept for inspection

File format: JSON Lines, UTF-8, one JSON object per line, each line ends with ``\\n``::

    {"type":"conversation","version":1,"id":"<uuid4>","created_at":"<ISO 8601>","title":"..."}
    {"type":"messages","at":"<ISO 8601>","messages":[{"role":"user","content":"...",...}]}
    {"type":"title","at":"<ISO 8601>","title":"Renamed"}
    {"type":"torn","at":"<ISO 8601>","from":1234}

The header comes first. Each ``append_messages`` call is one ``messages`` line, so a call is all or
nothing. A rename appends a ``title`` line (the last one wins). Nothing is ever rewritten, so a turn
costs O(size of the new messages). Record types a reader does not know are ignored: during a rolling
deploy the older tasks must not quarantine files a newer version wrote.

Concurrency (several threads, processes and hosts append to one conversation):

- Every change takes an exclusive ``fcntl`` lock on the whole ``.jsonl`` file (POSIX record locks,
  which NFSv4.1 and therefore EFS implement on the server; a dead process's locks are released by
  its kernel, a dead host's when its NFS lease expires), then checks that the path still names
  the locked file (a delete or quarantine may have moved it meanwhile), reads the size with
  ``fstat``, writes all its bytes with one ``pwrite`` at that offset, ``fsync``\\s and only then
  unlocks. ``O_APPEND`` is not used: it is not atomic across NFS clients; the lock is what orders
  writers.
- POSIX locks belong to a process, not a thread, and closing *any* descriptor of a file drops them
  all. Streamlit serves every browser session from threads of one process, so each file also has an
  in-process lock (a fixed set of striped ``RLock``\\s) held around every open/close of that file.
- Readers take no file lock. They reopen the file on every read, which is what NFS close-to-open
  consistency needs to show other hosts' appends, and parse only the bytes added since the last read
  (the offset and the messages so far are cached per file; beyond 16 MB of file data the least
  recently read are evicted). If the file was replaced (another inode), shrank, or the cached
  offset no longer follows a newline, it is parsed again from the start.

Crashes: a line counts only when it is complete and parses. A writer killed mid-``pwrite`` leaves
an unfinished last line; readers skip it (and one unparseable complete last line, which is what a
half-flushed NFS write or a crash during a repair looks like) without advancing their offset. The
next writer, under the lock, sees that the file does not end where its summary says, parses the
tail, and before its own record writes a newline if the file lacks one (so nothing is glued onto
the leftover) plus a ``torn`` marker whose ``from`` is the byte offset of the leftover. Readers then
skip the leftover lines up to that marker. The leftover bytes stay in the file: nothing is
truncated. A complete record whose newline alone was lost counts once it is sealed.

Corruption (an unparseable line in the middle without such a marker, more unparseable lines at the
end than crashes can leave, bad UTF-8, wrong types, a missing or foreign header, a symlink or a
folder where the file should be, a file we may not open) never reaches the page as a crash: the
file is parsed once more with the lock held, from scratch, to rule out a write in flight or a
transient NFS error, then moved to ``quarantine/`` (never deleted) and ``CorruptConversationError``
is raised with ``quarantined_to`` so the UI can explain and start a fresh conversation. Disk errors
on write (ENOSPC, EIO) are not corruption: they propagate as ``OSError``.

Listing costs the same for 1 or 1,000 conversations: one index per session, ``index.jsonl``,
append-only like a conversation and locked the same way (its own stripes of in-process locks, always
taken after a conversation's, never before). After each change a writer appends, with the
conversation's lock still held, a ``summary`` record (title, times, message count, and the size and
inode of the ``.jsonl`` it describes), and a delete or quarantine appends ``deleted``; the last
record of an id wins. Readers parse only the bytes added since their last read. When records
outnumber live conversations by far, a writer rewrites the index with one record each and renames it
into place under the lock. The index is only a cache of the conversation files: whenever the
folder's modification time differs from the one a process last checked (a file was created, moved
or deleted, or the index was lost or replaced) or is less than two seconds old, the process
compares the index with the folder's file names, parses what it lacks, and drops entries whose file
is gone. A writer trusts a
summary as the end of the file only when size and inode match, and otherwise parses the tail. So a
lost or stale index costs a parse, never a wrong answer. (On NFS another host's folder change may
be seen up to a minute late, but the index records it wrote are seen at once.)

Missing conversations: ``read_messages`` returns ``[]``; ``append_messages`` creates the file (a
conversation deleted in another tab comes back with the new messages rather than losing them);
``rename_conversation`` raises ``ConversationNotFoundError``; ``delete_conversation`` does nothing.

POSIX only (Linux in the container, Linux or macOS on a laptop): it relies on ``fcntl``.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from core.messages import Message, utc_now

__all__ = [
    "DEFAULT_TITLE",
    "ConversationNotFoundError",
    "ConversationSummary",
    "CorruptConversationError",
    "SessionStore",
    "UnsafePathError",
    "is_store_key",
    "is_valid_session_key",
    "new_conversation_id",
    "new_session_key",
    "parse_session_key",
]

logger = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    """A log-safe reason: never a path, because every path under the root holds a session key.

    The key is a bearer secret (whoever has it reads the conversation), so logs name the
    conversation id, which an administrator can find with ``find``, and the error's kind.
    """
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


FORMAT_VERSION = 1
DEFAULT_TITLE = "New conversation"
TITLE_MAX_CHARS = 120
TRASH_DIR = "trash"
QUARANTINE_DIR = "quarantine"

_JSONL = ".jsonl"
INDEX_FILE = "index.jsonl"
_INDEX_TMP = "index.tmp"
# Compact the index when it holds more than twice as many records as conversations, plus this.
_INDEX_SLACK = 64
# File systems stamp times in ticks of up to a few milliseconds (more on some NFS servers), so a
# folder changed in the same tick as our check shows the same time: like git's "racily clean"
# rule, a folder changed less than this long ago is compared again on the next listing too.
_RACY_NS = 2_000_000_000
_READ_CHUNK = 1 << 20
# The parse cache keeps recently read conversations in memory so that a page view parses only what
# is new. It is bounded by the file bytes it stands for (Python objects take a few times more), so a
# few very long conversations cannot exhaust a 512 MB task; the least recently read go first.
_CACHE_MAX_BYTES = 16 * 1024 * 1024
_INDEX_CACHE_MAX_BYTES = 8 * 1024 * 1024
_UNREADABLE_TITLE = "Unreadable conversation"
# With the file lock held no write is in flight, so unparseable lines at the end are leftovers of
# crashes: one crashed write leaves an unfinished line, a crash while repairing it (or a write whose
# NFS pages were only partly flushed) makes that one complete unparseable line. More is corruption.
_MAX_TORN_LINES = 1
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# A signed-in person's store key (core/identity.py): never accepted from a browser.
_OWNER_ID = re.compile(r"[0-9a-f]{64}")

# In-process locks, striped by path: bounded memory. A thread holds at most one conversation
# stripe and, inside it, at most one index stripe; never a conversation stripe inside an index
# stripe, so no two threads wait on each other. Re-entrant because quarantine runs inside
# operations that already hold the stripe.
_PROCESS_LOCKS = tuple(threading.RLock() for _ in range(64))
_INDEX_LOCKS = tuple(threading.RLock() for _ in range(16))


# --- keys and ids --------------------------------------------------------------------------------


def parse_session_key(raw: object) -> str | None:
    """The key if ``raw`` is a canonical uuid4 string (36 lowercase characters), else None.

    Values from localStorage arrive JSON-parsed and may be numbers, lists or dicts; uppercase,
    braces, ``urn:uuid:`` prefixes and other uuid versions are refused too rather than normalised,
    so one session has exactly one spelling and therefore one folder.
    """
    if type(raw) is not str or _UUID4.fullmatch(raw) is None:
        return None
    return raw


def is_valid_session_key(raw: object) -> bool:
    """Whether ``raw`` is a canonical uuid4 string."""
    return parse_session_key(raw) is not None


def new_session_key() -> str:
    """A fresh random session key (uuid4 draws 122 bits from the OS random source)."""
    return str(uuid.uuid4())


def new_conversation_id() -> str:
    """A fresh conversation id; validated exactly like session keys."""
    return str(uuid.uuid4())


def is_store_key(raw: object) -> bool:
    """Whether ``raw`` names a folder under the root: a browser's canonical uuid4 or a signed-in
    person's owner id. Every per-person file under the root (core/budget.py's usage files too)
    follows this one rule."""
    return type(raw) is str and bool(_OWNER_ID.fullmatch(raw) or _UUID4.fullmatch(raw))


def _require_store_key(raw: object) -> str:
    """A store key: a browser's canonical uuid4, or a signed-in person's owner id (64 lowercase
    hex characters, see core/identity.py). Both are a single safe path component."""
    if isinstance(raw, str) and is_store_key(raw):
        return raw
    # The value itself is not echoed: it is attacker-controlled and would end up in logs.
    raise ValueError(
        "session key must be a canonical lowercase uuid4 string or a 64-character lowercase hex "
        "owner id"
    )


def _require_uuid4(raw: object, what: str) -> str:
    value = parse_session_key(raw)
    if value is None:
        # The value itself is not echoed: it is attacker-controlled and would end up in logs.
        raise ValueError(f"{what} must be a canonical lowercase uuid4 string")
    return value


# --- public types --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationSummary:
    """What the sidebar shows for one conversation."""

    id: str
    title: str
    created_at: str
    updated_at: str
    message_count: int


class CorruptConversationError(Exception):
    """The conversation could not be read; the file was moved aside and kept, not deleted.

    ``quarantined_to`` is where the damaged file now is: in ``quarantine/``, or, in the rare case
    where it could not be moved (permissions), where it was (the error is then logged and the
    next read tries again).
    """

    def __init__(self, message: str, quarantined_to: Path) -> None:
        super().__init__(message)
        self.quarantined_to = quarantined_to


class ConversationNotFoundError(LookupError):
    """The conversation does not exist (never created, deleted, or quarantined)."""


class UnsafePathError(ValueError):
    """A folder under the root is a symlink or not a folder: refused rather than followed."""


# --- records -------------------------------------------------------------------------------------


class _InvalidRecord(Exception):
    """The file content breaks the format (internal; becomes CorruptConversationError)."""


class _Unreadable(Exception):
    """The path is not a regular file we can open (internal; becomes CorruptConversationError)."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _encode(record: dict[str, Any]) -> bytes:
    """One record as one line of UTF-8 JSON; embedded newlines are escaped by JSON itself."""
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate (text pasted into a browser can carry one) has no UTF-8 form; \u escapes
        # keep it, and json.loads gives the same string back.
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return text.encode("ascii") + b"\n"


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record on one line, or None if the line is not a UTF-8 JSON object with a type."""
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value
    return None


@dataclass
class _Summary:
    """Mutable twin of ConversationSummary, kept while parsing and in the index."""

    title: str
    created_at: str
    updated_at: str
    message_count: int

    def public(self, conversation_id: str) -> ConversationSummary:
        return ConversationSummary(
            id=conversation_id,
            title=self.title,
            created_at=self.created_at,
            updated_at=self.updated_at,
            message_count=self.message_count,
        )


@dataclass
class _Parsed:
    """What is known about one file after parsing its first ``offset`` bytes."""

    conversation_id: str
    file_id: tuple[int, int]  # (st_dev, st_ino): another inode means the file was replaced
    offset: int = 0  # always just after a newline (or 0)
    summary: _Summary | None = None  # None until the header has been read
    messages: list[Message] = field(default_factory=list)
    unparsed_lines: int = 0  # complete but unparseable lines after offset (see feed)

    def apply(self, record: dict[str, Any]) -> None:
        """Add one well-formed line; raise _InvalidRecord if its content is wrong."""
        kind = record["type"]
        if kind == "torn":
            return  # a marker read in normal flow: the line before it was complete after all
        if self.summary is None:
            if kind != "conversation":
                raise _InvalidRecord("the file does not start with a conversation header")
            created_at, title = record.get("created_at"), record.get("title")
            if record.get("id") != self.conversation_id:
                raise _InvalidRecord("the header names another conversation")
            if not isinstance(created_at, str) or not isinstance(title, str):
                raise _InvalidRecord("the header needs created_at and title strings")
            self.summary = _Summary(title, created_at, created_at, 0)
            return
        if kind == "conversation":
            raise _InvalidRecord("a second conversation header")
        if kind == "messages":
            items, at = record.get("messages"), record.get("at")
            if not isinstance(items, list) or not isinstance(at, str):
                raise _InvalidRecord("a messages record needs a list and a time")
            try:
                new = [Message.from_dict(item) for item in items]
            except ValueError as exc:
                raise _InvalidRecord(f"a stored message is malformed: {exc}") from exc
            self.messages.extend(new)
            self.summary.message_count += len(new)
            self.summary.updated_at = at
        elif kind == "title":
            title = record.get("title")
            if not isinstance(title, str):
                raise _InvalidRecord("a title record needs a title string")
            self.summary.title = title
        # Any other type was written by a newer version of this module: skipped, see the docstring.

    def feed(self, data: bytes) -> None:
        """Apply the complete lines of ``data`` (the file's bytes from ``self.offset``).

        Stops, without consuming them, before an unfinished last line or an unparseable line that
        nothing valid follows yet: both are what a write in progress or a crashed one looks like.
        """
        base, pos = self.offset, 0
        self.unparsed_lines = 0
        while (end := data.find(b"\n", pos)) >= 0:
            record = _decode(data[pos:end])
            if record is not None:
                self.apply(record)
                pos = end + 1
            else:
                resume = _skip_torn(data, end + 1, base + pos)
                if resume is None:
                    self.unparsed_lines = data.count(b"\n", pos)
                    break
                pos = resume
            self.offset = base + pos


def _skip_torn(data: bytes, scan: int, file_offset: int) -> int | None:
    """Position after the ``torn`` marker covering the bad line at ``file_offset``, from ``scan``.

    None when no valid line follows yet (the bad line may be a write still in flight).
    """
    while (end := data.find(b"\n", scan)) >= 0:
        record = _decode(data[scan:end])
        if record is None:
            scan = end + 1  # another leftover of an interrupted write
            continue
        marker_from = record.get("from")
        if record["type"] == "torn" and type(marker_from) is int and marker_from == file_offset:
            return end + 1
        raise _InvalidRecord(f"byte {file_offset}: a line that is not a valid record")
    return None


def _feed(state: _Parsed, data: bytes, *, strict: bool) -> None:
    state.feed(data)
    if strict and state.unparsed_lines > _MAX_TORN_LINES:
        raise _InvalidRecord(f"{state.unparsed_lines} unparseable lines at the end")


# An index entry: the summary, and the size and inode of the conversation file it describes
# (size -1: a file that could not be read, never trusted as the end of the file).
_Entry = tuple[_Summary, int, int]


@dataclass
class _Index:
    """What is known about a session's ``index.jsonl`` after parsing its first ``offset`` bytes."""

    file_id: tuple[int, int] | None  # (st_dev, st_ino); None while there is no index file
    offset: int = 0  # always just after a newline (or 0)
    records: int = 0  # complete lines so far, live or superseded: when to compact
    entries: dict[str, _Entry] = field(default_factory=dict)
    checked_mtime: int | None = None  # the folder's st_mtime_ns when its files were compared

    def feed(self, data: bytes) -> None:
        """Apply the complete lines of ``data`` (the file's bytes from ``self.offset``).

        A line that does not parse (the leftover of a crashed write, sealed by the next writer's
        newline) is skipped: the index is a cache, and the folder check repairs what it lacks.
        """
        complete = data.rfind(b"\n") + 1
        for line in data[:complete].splitlines():
            self.records += 1
            record = _decode(line)
            conversation_id = parse_session_key(record.get("id")) if record else None
            if record is None or conversation_id is None:
                continue
            if record["type"] == "deleted":
                self.entries.pop(conversation_id, None)
            elif record["type"] == "summary" and (entry := _entry_from(record)) is not None:
                self.entries[conversation_id] = entry
        self.offset += complete


def _summary_record(conversation_id: str, entry: _Entry) -> dict[str, Any]:
    summary, size, inode = entry
    return {"type": "summary", "id": conversation_id, **vars(summary), "size": size, "inode": inode}


def _entry_from(record: dict[str, Any]) -> _Entry | None:
    """The entry a ``summary`` record describes, or None if a field is missing or mistyped."""
    texts = [record.get(name) for name in ("title", "created_at", "updated_at")]
    numbers = [record.get(name) for name in ("message_count", "size", "inode")]
    if not all(isinstance(v, str) for v in texts) or not all(type(v) is int for v in numbers):
        return None
    return _Summary(*texts, numbers[0]), numbers[1], numbers[2]


def _clean_title(title: object) -> str:
    """One line of printable text, at most TITLE_MAX_CHARS characters; blank means the default."""
    if not isinstance(title, str):
        raise ValueError("a title must be a string")
    printable = "".join(char if char.isprintable() else " " for char in title)
    text = " ".join(printable.split())[:TITLE_MAX_CHARS].rstrip()
    return text or DEFAULT_TITLE


def _file_stamp() -> str:
    """Time plus randomness for kept-aside file names: sortable, and never overwrite each other."""
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{now}.{secrets.token_hex(4)}"


def _read_range(fd: int, start: int, stop: int) -> bytes:
    chunks: list[bytes] = []
    while start < stop:
        chunk = os.pread(fd, min(stop - start, _READ_CHUNK), start)
        if not chunk:
            break
        chunks.append(chunk)
        start += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    """Write at ``offset`` (one pwrite in practice; the loop covers a short write)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _raise_open_error(path: Path, exc: OSError) -> NoReturn:
    """Classify a failed open: gone, a bad entry (quarantined by the caller), or an I/O error."""
    if isinstance(exc, FileNotFoundError):
        raise exc
    try:
        entry = os.lstat(path)
    except OSError:
        raise exc from None  # nothing there to blame (a permission problem on the folder, say)
    if not stat.S_ISREG(entry.st_mode):
        # ELOOP from O_NOFOLLOW on a symlink, EISDIR on a folder, ENXIO on a socket.
        raise _Unreadable(f"not a regular file ({exc.strerror})") from exc
    if isinstance(exc, PermissionError):
        raise _Unreadable(f"the file cannot be opened ({exc.strerror})") from exc
    raise exc


def _keep(cache: OrderedDict[str, Any], key: str, state: Any, max_bytes: int) -> None:
    """Put ``state`` in an LRU cache bounded by the file bytes its entries stand for (``offset``).

    The caller holds the cache lock.
    """
    cache[key] = state
    cache.move_to_end(key)
    total = sum(cached.offset for cached in cache.values())
    while total > max_bytes and len(cache) > 1:
        _, evicted = cache.popitem(last=False)
        total -= evicted.offset


def _can_resume(fd: int, info: os.stat_result, file_id: tuple[int, int], offset: int) -> bool:
    """Whether parsing of the open file may go on at a cached ``offset``: it is still the file
    that was read (same device and inode), it has not shrunk, and the offset follows a newline.
    Otherwise it was replaced or rewritten and is parsed again from the start."""
    return (
        file_id == (info.st_dev, info.st_ino)
        and offset <= info.st_size
        and (offset == 0 or os.pread(fd, 1, offset - 1) == b"\n")
    )


def _process_lock(path: Path) -> threading.RLock:
    """The in-process lock for a file: conversation files and index files have separate stripes."""
    stripes = _INDEX_LOCKS if path.name == INDEX_FILE else _PROCESS_LOCKS
    return stripes[hash(str(path)) % len(stripes)]


# --- the store -----------------------------------------------------------------------------------


class SessionStore:
    """Conversations of every session, one append-only JSON Lines file each, under ``root``."""

    def __init__(self, root: Path, *, clock: Callable[[], str] = utc_now) -> None:
        """Create ``root`` (0o700) if needed; ``clock`` gives record times (tests pin it)."""
        path = Path(root)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root: Path = path.resolve(strict=True)
        self._clock = clock
        self._cache: OrderedDict[str, _Parsed] = OrderedDict()
        self._index_cache: OrderedDict[str, _Index] = OrderedDict()
        self._cache_lock = threading.Lock()

    # --- public API ------------------------------------------------------------------------------

    def list_conversations(self, session_key: str) -> list[ConversationSummary]:
        """Visible conversations of a session, most recently active first.

        Costs the same whatever their number: a stat of the folder and a read of what was added to
        its index since the last call. When the folder changed since this process last looked,
        its file names are compared with the index once, and what the index lacks is parsed.
        """
        folder = self._session_dir(session_key, create=False)
        try:
            folder_mtime = os.stat(folder, follow_symlinks=False).st_mtime_ns
        except FileNotFoundError:
            return []
        index = self._read_index(folder)
        if index.checked_mtime != folder_mtime:
            index = self._reconcile_index(folder, index, folder_mtime)
        with _process_lock(folder / INDEX_FILE):  # another thread may be adding to it
            summaries = [entry[0].public(id_) for id_, entry in index.entries.items()]
        summaries.sort(key=lambda s: (s.updated_at, s.created_at, s.id), reverse=True)
        return summaries

    def create_conversation(self, session_key: str, title: str = DEFAULT_TITLE) -> str:
        """Start an empty conversation and return its id."""
        folder = self._session_dir(session_key, create=True)
        clean = _clean_title(title)
        conversation_id = new_conversation_id()
        path = folder / f"{conversation_id}{_JSONL}"
        with self._locked(path, create=True, exclusive=True) as fd:
            self._append_records(folder, conversation_id, path, fd, [], title=clean)
        self._fsync_dir(folder)
        return conversation_id

    def append_messages(
        self, session_key: str, conversation_id: str, messages: Sequence[Message]
    ) -> None:
        """Append messages as one record: all of them are stored, or (after a crash) none.

        Creates the conversation if it does not exist. Raises CorruptConversationError (after
        moving the file aside) if the existing file is corrupt.
        """
        _require_store_key(session_key)
        conversation_id = _require_uuid4(conversation_id, "conversation id")
        batch = list(messages)
        if not all(isinstance(message, Message) for message in batch):
            raise TypeError("append_messages takes Message objects")
        if not batch:
            return
        record = {
            "type": "messages",
            "at": self._clock(),
            "messages": [message.to_dict() for message in batch],
        }
        folder = self._session_dir(session_key, create=True)
        self._change(folder, conversation_id, [record], create=True)

    def read_messages(self, session_key: str, conversation_id: str) -> list[Message]:
        """All messages in order; ``[]`` if the conversation does not exist.

        An unfinished last record (a write in progress or a crashed one) is left out. A corrupt or
        unreadable file is moved to quarantine and CorruptConversationError is raised.
        """
        folder = self._session_dir(session_key, create=False)
        conversation_id = _require_uuid4(conversation_id, "conversation id")
        path = folder / f"{conversation_id}{_JSONL}"
        with _process_lock(path):
            try:
                state = self._read_unlocked(path, conversation_id)
                if state.unparsed_lines <= _MAX_TORN_LINES:
                    return list(state.messages)
            except FileNotFoundError:
                self._cache_drop(path)
                return []
            except (_InvalidRecord, _Unreadable, OSError):
                pass
            # A real problem, or a write in flight / a transient NFS error (ESTALE) seen without
            # the lock: look again with the lock held before moving anything.
            try:
                with self._locked(path, create=False) as fd:
                    try:
                        return list(self._load(path, fd, conversation_id, strict=True).messages)
                    except _InvalidRecord as exc:
                        self._quarantine(folder, conversation_id, path, exc)
            except FileNotFoundError:
                return self._gone_during_read(folder, conversation_id)
            except _Unreadable as exc:
                self._quarantine(folder, conversation_id, path, exc)

    def rename_conversation(self, session_key: str, conversation_id: str, title: str) -> None:
        """Give the conversation a new title (appended; the last title wins)."""
        folder = self._session_dir(session_key, create=False)
        conversation_id = _require_uuid4(conversation_id, "conversation id")
        record = {"type": "title", "at": self._clock(), "title": _clean_title(title)}
        try:
            self._change(folder, conversation_id, [record], create=False)
        except FileNotFoundError:
            raise ConversationNotFoundError("no such conversation") from None

    def delete_conversation(self, session_key: str, conversation_id: str) -> None:
        """Soft delete: move the file to ``trash/`` (kept on disk, gone from the list)."""
        folder = self._session_dir(session_key, create=False)
        conversation_id = _require_uuid4(conversation_id, "conversation id")
        path = folder / f"{conversation_id}{_JSONL}"
        try:
            with self._locked(path, create=False):
                target = self._move_aside(folder, conversation_id, path, TRASH_DIR)
        except FileNotFoundError:
            return
        except _Unreadable:
            # A symlink or a folder in its place: move the entry itself, never what it points to.
            with _process_lock(path):
                target = self._move_aside(folder, conversation_id, path, TRASH_DIR)
        logger.info("conversation %s moved to %s/", conversation_id, target.parent.name)

    def _change(
        self, folder: Path, conversation_id: str, records: list[dict[str, Any]], *, create: bool
    ) -> None:
        """Append records under the file lock; quarantine the file if it turns out corrupt."""
        path = folder / f"{conversation_id}{_JSONL}"
        try:
            with self._locked(path, create=create) as fd:
                try:
                    self._append_records(folder, conversation_id, path, fd, records)
                except _InvalidRecord as exc:
                    self._quarantine(folder, conversation_id, path, exc)  # still locked
        except _Unreadable as exc:
            self._quarantine(folder, conversation_id, path, exc)

    # --- paths -----------------------------------------------------------------------------------

    def _session_dir(self, session_key: object, *, create: bool) -> Path:
        """``<root>/<key>``, proven to be exactly that folder and not a link elsewhere."""
        folder = self.root / _require_store_key(session_key)
        if create:
            self._make_private_dir(folder)
        self._prove_inside(folder)
        return folder

    def _make_private_dir(self, folder: Path) -> None:
        with suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        self._prove_inside(folder)
        if not folder.is_dir():
            raise UnsafePathError(f"{folder} is not a folder")

    def _prove_inside(self, path: Path) -> None:
        # self.root is resolved and every name below it is a validated uuid or a constant, so the
        # path resolves to itself unless some component is a symlink.
        resolved = path.resolve()
        if resolved != path or not resolved.is_relative_to(self.root):
            raise UnsafePathError(f"{path} leads outside the sessions folder or through a symlink")

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        """Make a new file's name durable (local disks; on NFS creation is already synchronous)."""
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            with suppress(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)

    # --- locking, reading, writing ---------------------------------------------------------------

    @contextmanager
    def _locked(self, path: Path, *, create: bool, exclusive: bool = False) -> Iterator[int]:
        """Hold the cross-host lock on the conversation file; yields a read-write descriptor.

        Raises FileNotFoundError when it does not exist and ``create`` is false.
        """
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang us
        if create:
            flags |= os.O_CREAT | (os.O_EXCL if exclusive else 0)
        with _process_lock(path):
            while True:
                try:
                    fd = os.open(path, flags, 0o600)
                except OSError as exc:
                    _raise_open_error(path, exc)
                try:
                    opened = os.fstat(fd)
                    if not stat.S_ISREG(opened.st_mode):
                        raise _Unreadable("the conversation path is not a regular file")
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                    try:
                        current = os.stat(path, follow_symlinks=False)
                    except FileNotFoundError:
                        current = None
                    # Moved away (deleted, quarantined) while we waited: start over on the path.
                    if current is not None and (current.st_dev, current.st_ino) == (
                        opened.st_dev,
                        opened.st_ino,
                    ):
                        yield fd
                        return
                finally:
                    os.close(fd)  # also releases the lock
                flags &= ~os.O_EXCL

    def _read_unlocked(self, path: Path, conversation_id: str) -> _Parsed:
        """Parse new bytes without the file lock (the caller holds the in-process lock)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            _raise_open_error(path, exc)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _Unreadable("the conversation path is not a regular file")
            return self._load(path, fd, conversation_id, strict=False)
        finally:
            os.close(fd)

    def _load(self, path: Path, fd: int, conversation_id: str, *, strict: bool) -> _Parsed:
        """The parsed file, reading only the bytes added since the cached offset.

        ``strict`` (the file lock is held) also refuses more unparseable lines at the end than
        crashes can leave.
        """
        info = os.fstat(fd)
        file_id = (info.st_dev, info.st_ino)
        cached = self._cache_get(path)
        reuse = cached is not None and _can_resume(fd, info, cached.file_id, cached.offset)
        state = cached if reuse and cached is not None else _Parsed(conversation_id, file_id)
        try:
            try:
                _feed(state, _read_range(fd, state.offset, info.st_size), strict=strict)
            except _InvalidRecord:
                if not reuse:
                    raise
                # The cached prefix may be stale (the file changed in place): judge from scratch.
                state = _Parsed(conversation_id, file_id)
                _feed(state, _read_range(fd, 0, info.st_size), strict=strict)
        except BaseException:
            self._cache_drop(path)  # possibly half-applied; the next read starts from scratch
            raise
        self._cache_put(path, state)
        return state

    def _append_records(
        self,
        folder: Path,
        conversation_id: str,
        path: Path,
        fd: int,
        records: list[dict[str, Any]],
        *,
        title: str = DEFAULT_TITLE,
    ) -> None:
        """Append records to the locked file, repairing a torn tail first; refresh the summary.

        Fast path (every normal turn): the index this process last read says the file ends exactly
        at its current size, so the tail is clean and nothing is read. Otherwise (new file, a crash,
        another host's append, a lost index) the file is parsed (incrementally, from the cache) to
        find where the valid part ends.
        """
        info = os.fstat(fd)
        size = info.st_size
        known = self._indexed(folder, conversation_id)
        prefix: list[bytes] = []
        if known is not None and size > 0 and known[1:] == (size, info.st_ino):
            summary = _Summary(**vars(known[0]))
        else:
            state = self._load(path, fd, conversation_id, strict=True)
            if state.offset < size:
                if os.pread(fd, 1, size - 1) != b"\n":
                    prefix.append(b"\n")
                prefix.append(_encode({"type": "torn", "at": self._clock(), "from": state.offset}))
                logger.warning(
                    "conversation %s: skipped %d bytes left by an interrupted write",
                    conversation_id,
                    size - state.offset,
                )
            if state.summary is None:
                header = {
                    "type": "conversation",
                    "version": FORMAT_VERSION,
                    "id": conversation_id,
                    "created_at": self._clock(),
                    "title": title,
                }
                prefix.append(_encode(header))
                summary = _Summary(title, header["created_at"], header["created_at"], 0)
            else:
                summary = _Summary(**vars(state.summary))
        for record in records:
            if record["type"] == "messages":
                summary.message_count += len(record["messages"])
                summary.updated_at = record["at"]
            elif record["type"] == "title":
                summary.title = record["title"]
        data = b"".join(prefix + [_encode(record) for record in records])
        if data:
            _write_all(fd, data, size)
            os.fsync(fd)
        entry = (summary, size + len(data), info.st_ino)
        self._append_index(folder, lambda _: [_summary_record(conversation_id, entry)])

    # --- the index (index.jsonl: the sidebar's summaries) ---------------------------------------

    def _read_index(self, folder: Path) -> _Index:
        """The session's index, reading only what was appended since this process last read it."""
        path = folder / INDEX_FILE
        with _process_lock(path):
            try:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError as exc:
                    _raise_open_error(path, exc)
                try:
                    return self._load_index(path, fd)
                finally:
                    os.close(fd)
            except FileNotFoundError:
                cached = self._index_cached(path)
                if cached is not None and cached.file_id is None:
                    return cached
                with self._cache_lock:
                    _keep(self._index_cache, str(path), _Index(None), _INDEX_CACHE_MAX_BYTES)
                return self._index_cached(path) or _Index(None)
            except _Unreadable as exc:
                return self._index_unusable(folder, path, exc)
            except OSError as exc:  # EIO, ESTALE: try again on the next run
                logger.warning("index not read: %s", _describe(exc))
                return _Index(None)

    def _load_index(self, path: Path, fd: int) -> _Index:
        """Parse the index's new bytes (the caller holds its in-process lock)."""
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("the index is not a regular file")
        file_id = (info.st_dev, info.st_ino)
        cached = self._index_cached(path)
        reuse = cached is not None and _can_resume(fd, info, cached.file_id, cached.offset)
        state = cached if reuse and cached is not None else _Index(file_id)
        state.feed(_read_range(fd, state.offset, info.st_size))
        with self._cache_lock:
            _keep(self._index_cache, str(path), state, _INDEX_CACHE_MAX_BYTES)
        return state

    def _index_cached(self, path: Path) -> _Index | None:
        with self._cache_lock:
            return self._index_cache.get(str(path))

    def _indexed(self, folder: Path, conversation_id: str) -> _Entry | None:
        """The entry this process last read for a conversation (no I/O; possibly stale)."""
        index = self._index_cached(folder / INDEX_FILE)
        return None if index is None else index.entries.get(conversation_id)

    def _append_index(
        self, folder: Path, make_records: Callable[[_Index], list[dict[str, Any]]]
    ) -> _Index | None:
        """Append ``make_records(index)`` under the index's lock; compact when mostly superseded.

        ``make_records`` sees the index as it is with the lock held. Best effort, like every cache:
        the conversations are already safe on disk, and what the index misses is rebuilt from the
        folder. Returns the index as now written, or None if it could not be written.
        """
        path = folder / INDEX_FILE
        try:
            with self._locked(path, create=True) as fd:
                records = make_records(self._load_index(path, fd))
                if not records:
                    return self._load_index(path, fd)
                size = os.fstat(fd).st_size
                # A crashed writer may have left half a line: never glue a record onto it.
                sealed = size == 0 or os.pread(fd, 1, size - 1) == b"\n"
                data = (b"" if sealed else b"\n") + b"".join(_encode(r) for r in records)
                _write_all(fd, data, size)
                os.fsync(fd)
                index = self._load_index(path, fd)
                if index.records > 2 * len(index.entries) + _INDEX_SLACK:
                    index = self._compact_index(folder, path, index)
                return index
        except _Unreadable as exc:
            self._index_unusable(folder, path, exc)
        except OSError as exc:
            logger.warning("index not updated: %s", _describe(exc))
        return None

    def _compact_index(self, folder: Path, path: Path, index: _Index) -> _Index:
        """Replace the index with one record per conversation (the caller holds its file lock).

        Writers waiting for the lock on the old file see that the path names another file and
        start over on the new one; readers see another inode and parse it from the start.
        """
        temporary = folder / _INDEX_TMP
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        data = b"".join(_encode(_summary_record(id_, e)) for id_, e in index.entries.items())
        fd = os.open(temporary, flags, 0o600)
        try:
            _write_all(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        info = os.stat(path, follow_symlinks=False)
        compacted = _Index((info.st_dev, info.st_ino), len(data), len(index.entries))
        compacted.entries = dict(index.entries)
        with self._cache_lock:
            _keep(self._index_cache, str(path), compacted, _INDEX_CACHE_MAX_BYTES)
        return compacted

    def _reconcile_index(self, folder: Path, index: _Index, folder_mtime: int) -> _Index:
        """Compare the index with the folder's conversation files, and add or drop what differs.

        Runs when the folder changed since this process last looked: a conversation was created,
        deleted or quarantined (by anyone), or the index was lost, replaced or compacted. Files the
        index lacks are parsed (the conversation lock, then the index lock: never the reverse);
        an entry is dropped only if its file is still gone with the index lock held, so a
        conversation being created meanwhile is never dropped.
        """
        try:
            names = [entry.name for entry in os.scandir(folder)]
        except FileNotFoundError:
            return index
        on_disk = {
            name.removesuffix(_JSONL)
            for name in names
            if name.endswith(_JSONL) and parse_session_key(name.removesuffix(_JSONL)) is not None
        }
        with _process_lock(folder / INDEX_FILE):  # a snapshot; the parsing below must not hold it
            known = set(index.entries)
        found = {
            id_: entry
            for id_ in on_disk - known
            if (entry := self._entry_from_file(folder, id_)) is not None
        }
        gone = known - on_disk

        def differences(current: _Index) -> list[dict[str, Any]]:
            added = [
                _summary_record(id_, entry)
                for id_, entry in found.items()
                if id_ not in current.entries  # else a writer recorded it meanwhile: newer
            ]
            return added + [
                {"type": "deleted", "id": id_, "at": self._clock()}
                for id_ in gone
                if id_ in current.entries and not os.path.lexists(folder / f"{id_}{_JSONL}")
            ]

        if found or gone:
            written = self._append_index(folder, differences)
            if written is None:
                return index  # not checked: the next run tries again
            index = written
        if time.time_ns() - folder_mtime >= _RACY_NS:
            index.checked_mtime = folder_mtime
        return index

    def _entry_from_file(self, folder: Path, conversation_id: str) -> _Entry | None:
        """The index entry for a conversation, parsed from its file (None while being created)."""
        path = folder / f"{conversation_id}{_JSONL}"
        try:
            with self._locked(path, create=False) as fd:
                state = self._load(path, fd, conversation_id, strict=True)
                if state.summary is None:
                    return None  # being created (or an empty leftover): nothing to show yet
                current = os.fstat(fd)
                clean = state.offset == current.st_size  # else a torn tail: not the end
                summary = _Summary(**vars(state.summary))  # a copy: the parse cache updates its own
                return summary, current.st_size if clean else -1, current.st_ino
        except FileNotFoundError:
            return None
        except (_InvalidRecord, _Unreadable, OSError) as exc:
            # Listed, not moved: opening it quarantines it and tells the user why.
            logger.warning("conversation %s is unreadable: %s", conversation_id, _describe(exc))
            try:
                info = os.lstat(path)
            except OSError:
                return None
            when = datetime.fromtimestamp(info.st_mtime, UTC).isoformat(timespec="milliseconds")
            return _Summary(_UNREADABLE_TITLE, when, when, 0), -1, info.st_ino

    def _index_unusable(self, folder: Path, path: Path, problem: Exception) -> _Index:
        """An index we cannot read (a symlink, a folder, no permission): move it aside, rebuild."""
        logger.warning("the index is unusable and is set aside: %s", _describe(problem))
        with suppress(OSError):
            destination = folder / QUARANTINE_DIR
            self._make_private_dir(destination)
            os.rename(path, destination / f"index.{_file_stamp()}{_JSONL}")
        with self._cache_lock:
            self._index_cache.pop(str(path), None)
        return _Index(None)

    # --- moving files aside ----------------------------------------------------------------------

    def _move_aside(self, folder: Path, conversation_id: str, path: Path, area: str) -> Path:
        """Rename the file into ``trash/`` or ``quarantine/``, then drop it from the index."""
        destination = folder / area
        self._make_private_dir(destination)
        target = destination / f"{conversation_id}.{_file_stamp()}{_JSONL}"
        os.rename(path, target)
        self._cache_drop(path)
        deleted = {"type": "deleted", "id": conversation_id, "at": self._clock()}
        self._append_index(folder, lambda _: [deleted])
        return target

    def _quarantine(
        self, folder: Path, conversation_id: str, path: Path, problem: Exception
    ) -> NoReturn:
        """Move the file to ``quarantine/`` and raise CorruptConversationError.

        Callers hold the file lock when they can, so no writer appends to it while it moves.
        """
        reason = _describe(problem)
        logger.warning("conversation %s is corrupt or unreadable: %s", conversation_id, reason)
        try:
            with _process_lock(path):
                target = self._move_aside(folder, conversation_id, path, QUARANTINE_DIR)
        except OSError as exc:
            logger.error(
                "conversation %s could not be moved aside: %s", conversation_id, _describe(exc)
            )
            raise CorruptConversationError(
                "This conversation could not be read, nor moved aside; it was left in place.", path
            ) from problem
        logger.warning("conversation %s moved to %s/", conversation_id, target.parent.name)
        raise CorruptConversationError(
            "This conversation could not be read. It was kept aside for an administrator, "
            f"and a new one can be started. ({reason})",
            target,
        ) from problem

    def _gone_during_read(self, folder: Path, conversation_id: str) -> list[Message]:
        """The file vanished between our two reads: deleted ([]) or quarantined by someone else."""
        quarantined = sorted((folder / QUARANTINE_DIR).glob(f"{conversation_id}.*{_JSONL}"))
        if quarantined:
            raise CorruptConversationError(
                "This conversation could not be read and was kept aside for an administrator.",
                quarantined[-1],
            )
        return []

    # --- parse cache -----------------------------------------------------------------------------

    def _cache_get(self, path: Path) -> _Parsed | None:
        with self._cache_lock:
            state = self._cache.get(str(path))
            if state is not None:
                self._cache.move_to_end(str(path))
            return state

    def _cache_put(self, path: Path, state: _Parsed) -> None:
        with self._cache_lock:
            _keep(self._cache, str(path), state, _CACHE_MAX_BYTES)

    def _cache_drop(self, path: Path) -> None:
        with self._cache_lock:
            self._cache.pop(str(path), None)
