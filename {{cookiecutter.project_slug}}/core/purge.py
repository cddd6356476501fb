"""Retention: erase conversations, trash and quarantine older than their windows, for good.

Run as a scheduled one-off ECS task with the app's task definition (infra/app.yaml, the purge
schedule), or by hand: ``python -m core.purge``. Windows, in whole days, from the environment:

    CONVERSATION_RETENTION_DAYS  a conversation not written to for this long (0, the default: kept)
    TRASH_RETENTION_DAYS         a deleted conversation, counted from its deletion (default 30)
    QUARANTINE_RETENTION_DAYS    a file set aside as unreadable, from when it was set aside (90)

Age: a conversation's is the time of its last write (the file's modification time); a file in
``trash/`` or ``quarantine/`` carries the time it was moved in its name (core/sessions.py), and
its modification time stands in if the name has none.

A conversation is removed only with its ``fcntl`` lock, taken without waiting: one a writer holds
is skipped (counted as busy) and looked at again on the next run. With the lock held the file is
checked again (still the same file, still old) before it goes, so a message appended meanwhile
keeps it. The index needs no update: the store notices the file is gone the next time it lists.
Only folders whose name is a store key are visited, nothing is followed through a symlink, and the
log carries counts, never names or contents.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import stat
import sys
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core import telemetry
from core.config import DEFAULT_SESSIONS_DIR
from core.sessions import INDEX_FILE, QUARANTINE_DIR, TRASH_DIR, is_store_key, parse_session_key

__all__ = ["Windows", "main", "purge", "windows_from_env"]

logger = logging.getLogger("core.purge")

DAY_SECONDS = 86_400
MAX_DAYS = 36_500  # a hundred years: anything longer is a typo
DEFAULTS = {
    "CONVERSATION_RETENTION_DAYS": 0,
    "TRASH_RETENTION_DAYS": 30,
    "QUARANTINE_RETENTION_DAYS": 90,
}
# "<id>.<20301231T235959.123456Z>.<8 hex>.jsonl", as core/sessions.py names kept-aside files.
_MOVED_AT = re.compile(r"\.(\d{8}T\d{6}\.\d{6})Z\.[0-9a-f]{8}\.jsonl")


@dataclass(frozen=True)
class Windows:
    """Retention windows in days; ``conversations == 0`` keeps conversations forever."""

    conversations: int
    trash: int
    quarantine: int


def windows_from_env(env: Mapping[str, str]) -> Windows:
    """The windows from the environment; raises ValueError naming every bad variable.

    Trash and quarantine must be at least a day: 0 would erase a deletion before anyone could undo
    it, which is what ``python -m core.erase`` is for.
    """
    values: dict[str, int] = {}
    problems: list[str] = []
    for name, default in DEFAULTS.items():
        raw = env.get(name, "").strip()
        lowest = 0 if name == "CONVERSATION_RETENTION_DAYS" else 1
        if not raw:
            values[name] = default
        elif raw.isdigit() and lowest <= int(raw) <= MAX_DAYS:
            values[name] = int(raw)
        else:
            problems.append(f"{name}={raw!r}: expected whole days from {lowest} to {MAX_DAYS}")
    if problems:
        raise ValueError("; ".join(problems))
    return Windows(
        values["CONVERSATION_RETENTION_DAYS"],
        values["TRASH_RETENTION_DAYS"],
        values["QUARANTINE_RETENTION_DAYS"],
    )


def _moved_at(name: str, info: os.stat_result) -> float:
    """When a kept-aside file was moved there (its name), else its modification time."""
    match = _MOVED_AT.search(name)
    if match is None:
        return info.st_mtime
    moved = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    return moved.timestamp()


def _purge_area(area: Path, cutoff: float, counts: Counter[str], label: str) -> None:
    """Remove regular files in ``trash/`` or ``quarantine/`` moved there before ``cutoff``.

    The folder is opened without following a symlink, and its files are listed and removed
    relative to that open folder, so a link put in its place leads nowhere.
    """
    try:
        fd = os.open(area, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink: refused
            return
        raise
    try:
        with os.scandir(fd) as entries:
            for entry in list(entries):
                with suppress(FileNotFoundError):  # removed meanwhile (an erase): nothing to do
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(info.st_mode) and _moved_at(entry.name, info) < cutoff:
                        os.unlink(entry.name, dir_fd=fd)
                        counts[label] += 1
    finally:
        os.close(fd)


def _purge_conversation(path: Path, cutoff: float, counts: Counter[str]) -> None:
    """Remove one conversation not written since ``cutoff``, unless a writer holds its lock."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    except OSError as error:  # a symlink (ELOOP) or a file we may not open: not ours to judge
        if error.errno != errno.ELOOP:
            counts["unreadable"] += 1
        return
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or opened.st_mtime >= cutoff:
            return
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EAGAIN):
                counts["busy"] += 1
                return
            raise
        # Locked: is the path still this file (not moved to trash meanwhile), and still old?
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return
        same = (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)
        if same and os.fstat(fd).st_mtime < cutoff:
            os.unlink(path)
            counts["conversations"] += 1
    finally:
        os.close(fd)  # also releases the lock


def purge(root: Path, windows: Windows, *, now: float) -> Counter[str]:
    """Remove what is older than its window under every person's folder; returns counts.

    ``now`` is seconds since the epoch (tests pass a fixed time). Counts: ``conversations``,
    ``trash``, ``quarantine`` (removed), ``busy`` (a writer held the lock: kept), ``unreadable``.
    """
    counts: Counter[str] = Counter()
    for entry in os.scandir(root):
        if not is_store_key(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        if windows.conversations:
            cutoff = now - windows.conversations * DAY_SECONDS
            try:
                names = os.listdir(folder)
            except FileNotFoundError:  # erased meanwhile
                continue
            for name in names:
                stem = name.removesuffix(".jsonl")
                if name != INDEX_FILE and name.endswith(".jsonl") and parse_session_key(stem):
                    _purge_conversation(folder / name, cutoff, counts)
        _purge_area(folder / TRASH_DIR, now - windows.trash * DAY_SECONDS, counts, "trash")
        cutoff = now - windows.quarantine * DAY_SECONDS
        _purge_area(folder / QUARANTINE_DIR, cutoff, counts, "quarantine")
    return counts


def main() -> int:
    """The scheduled task's command; exits non-zero on a bad setting or a failed run, so the
    schedule's failure shows in ECS and in the production review."""
    telemetry.configure_logging()
    try:
        windows = windows_from_env(os.environ)
    except ValueError as error:
        logger.error("purge not run: %s", error)
        return 2
    root = Path(os.environ.get("SESSIONS_DIR", "").strip() or DEFAULT_SESSIONS_DIR).expanduser()
    if not root.is_dir():
        logger.error("purge not run: the sessions folder does not exist (SESSIONS_DIR)")
        return 2
    counts = purge(root, windows, now=time.time())
    logger.info(
        "purge done",
        extra={
            "fields": {
                "event": "purge",
                "removed_conversations": counts["conversations"],
                "removed_trash": counts["trash"],
                "removed_quarantine": counts["quarantine"],
                "kept_busy": counts["busy"],
                "unreadable": counts["unreadable"],
                "conversation_retention_days": windows.conversations,
                "trash_retention_days": windows.trash,
                "quarantine_retention_days": windows.quarantine,
            }
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
