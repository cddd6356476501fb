"""Files that every task shares over NFS (EFS): opened without following links, appended whole.

The conversation store (core/sessions.py) and the daily allowance (core/budget.py) keep their data
in append-only JSON Lines files under SESSIONS_DIR, where any task may write next. These are the
rules they share: a path is never followed through a symlink nor blocks on a FIFO; a write goes
to the end the writer saw under its ``fcntl`` lock (``O_APPEND`` is not atomic across NFS clients)
and is on disk before the lock is released; a line a crash left unfinished is sealed first, so
the next record starts on a line of its own. POSIX only.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

_READ_CHUNK = 1 << 20


class UnusableFile(OSError):
    """Not a regular file this process may open (a symlink, a folder, a FIFO, another owner's), or
    content its reader cannot use. Callers set such a file aside; they never delete it."""


class UnsafePathError(ValueError):
    """A folder under the root is a symlink or not a folder: refused rather than followed."""


def private_dir(folder: Path, *, create: bool) -> Path:
    """``folder`` (created 0o700 if asked), provided no part of it leads through a symlink.

    Callers build ``folder`` from a resolved root and validated names, so only a symlink can make
    it resolve elsewhere.
    """
    if create:
        with suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    if folder.resolve() != folder or (create and not folder.is_dir()):
        # No path in the message: it holds the session key, a bearer secret, and may reach a log.
        raise UnsafePathError("a folder in the store is a symlink or not a folder: refused")
    return folder


@contextmanager
def opened(path: Path, flags: int) -> Iterator[int]:
    """A descriptor of ``path``, never through a symlink nor blocking on a FIFO (check it with
    ``regular_file_stat``); new files are 0o600. Closing it drops this process's ``fcntl`` locks."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink, EISDIR: a folder, EACCES: not ours to read
        if not stat.S_ISREG(os.lstat(path).st_mode) or isinstance(exc, PermissionError):
            raise UnusableFile(f"the file cannot be opened ({exc.strerror})") from exc
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def regular_file_stat(fd: int) -> os.stat_result:
    """``fstat`` of an opened descriptor, refusing a FIFO or a device (``opened`` does not block
    on one, so its caller checks here, where it needs the size anyway)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnusableFile("not a regular file")
    return info


def sync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable; best effort (on NFS, creating already is)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def encode_line(record: dict[str, Any]) -> bytes:
    """One compact JSON line. A lone surrogate (a browser paste) is kept as a ``\\u`` escape."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        return json.dumps(record, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def read_range(fd: int, start: int, stop: int) -> bytes:
    """Bytes ``start``..``stop`` of the file, read in chunks (short reads happen on NFS)."""
    chunks: list[bytes] = []
    while start < stop and (chunk := os.pread(fd, min(stop - start, _READ_CHUNK), start)):
        chunks.append(chunk)
        start += len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` and make it durable before the caller unlocks."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    os.fsync(fd)


def ends_line(fd: int, offset: int) -> bool:
    """Whether ``offset`` is not inside a line (a crashed write leaves half a one)."""
    return offset == 0 or os.pread(fd, 1, offset - 1) == b"\n"


def append_lines(fd: int, data: bytes) -> None:
    """Append complete lines at the end of the locked file, sealing a crash's unfinished line."""
    size = os.fstat(fd).st_size
    write_all(fd, (b"" if ends_line(fd, size) else b"\n") + data, size)
