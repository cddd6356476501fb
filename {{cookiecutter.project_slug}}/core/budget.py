"""Per-person daily token allowance, shared by every task through the sessions file system.

Each person (the store key: today the browser's session key, a signed-in person's owner id once
sign-in exists; validated by the store's own rule) has one usage file per UTC day::

    <SESSIONS_DIR>/<key>/usage/<YYYY-MM-DD>.jsonl
    {"at":"<ISO 8601>","model":"us.amazon.nova-lite-v1:0","input_tokens":812,"output_tokens":95,
     "source":"bedrock"}

It lives beside the person's conversations, so erasing a person's folder erases their usage too.
A new day is a new file: the allowance resets at midnight UTC without anybody rewriting anything.

Concurrency follows core/sessions.py, with the same file rules (core/files.py): a writer holds an
exclusive ``fcntl`` lock on the file (EFS implements POSIX locks across hosts) and appends one
line at the end it saw under that lock, durably; an in-process lock guards every open and close
of a file, because closing any descriptor drops the process's POSIX locks.
Readers take no file lock and count only complete lines that parse, so a line torn by a crash is
skipped (and the next writer starts on a fresh line rather than gluing onto it).

Enforcement is checked before Bedrock is called, against what is already recorded. The tokens of a
reply are only known when it ends, so turns that start at the same moment may overshoot the
allowance by one reply each; the turn after that is refused.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from core.files import append_lines, opened, private_dir, regular_file_stat
from core.messages import Usage, utc_now
from core.sessions import is_store_key

logger = logging.getLogger(__name__)

USAGE_DIR = "usage"
_READ_LIMIT = 16 * 1024 * 1024  # a day of one person is kilobytes; refuse to slurp a huge file
_LOCKS = tuple(threading.Lock() for _ in range(16))


def utc_clock() -> datetime:
    return datetime.now(UTC)


class BudgetExceededError(Exception):
    """The person has used today's allowance; ``user_message`` says how much and when it resets."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class UsageRecord:
    """One reply's usage as kept in the usage file."""

    model: str
    usage: Usage


def next_reset(now: datetime) -> datetime:
    """The next midnight UTC after ``now``."""
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC)


def describe_wait(now: datetime) -> str:
    """``"in 3 h 12 min"``: how long until the reset, rounded up to the minute."""
    minutes = max(1, -(-int((next_reset(now) - now).total_seconds()) // 60))
    hours, minutes = divmod(minutes, 60)
    return f"in {hours} h {minutes} min" if hours else f"in {minutes} min"


class DailyAllowance:
    """Counts each person's tokens per UTC day and refuses turns beyond ``limit`` (0 = no limit).

    ``is_valid_key`` is the store's key rule (``core.sessions.is_store_key``): a person's
    usage folder is named by the key, so the same rule keeps it inside ``root``.
    """

    def __init__(
        self,
        root: Path,
        limit: int,
        *,
        clock: Callable[[], datetime] = utc_clock,
        is_valid_key: Callable[[object], bool] = is_store_key,
    ) -> None:
        if limit < 0:
            raise ValueError("the daily token limit cannot be negative")
        self.root = Path(root).resolve()
        self.limit = limit
        self._clock = clock
        self._is_valid_key = is_valid_key

    # --- public API ------------------------------------------------------------------------------

    def records_today(self, person: str) -> list[UsageRecord]:
        """Everything recorded for ``person`` on the current UTC day, oldest first.

        Raises ``OSError`` when the file exists but cannot be read; callers decide what that
        means (core/chat.py lets the turn go ahead, the page shows no total).
        """
        path = self._day_file(person, self._clock().date(), create=False)
        with _lock_for(path):
            try:
                with opened(path, os.O_RDONLY) as fd:
                    regular_file_stat(fd)
                    data = os.pread(fd, _READ_LIMIT, 0)
            except FileNotFoundError:
                return []
        return [r for line in data.split(b"\n")[:-1] if (r := _parse(line)) is not None]

    def used_today(self, person: str) -> int:
        return sum(r.usage.total_tokens for r in self.records_today(person))

    def check(self, person: str) -> None:
        """Raise ``BudgetExceededError`` when ``person`` may not start another turn today."""
        if self.limit == 0:
            return
        used = self.used_today(person)
        if used >= self.limit:
            now = self._clock()
            raise BudgetExceededError(
                f"You have used today's allowance of {self.limit:,} tokens ({used:,} used). It "
                f"resets at midnight UTC ({describe_wait(now)}). Your message is kept in this "
                "conversation: send it again after the reset."
            )

    def record(self, person: str, model: str, usage: Usage) -> None:
        """Append one reply's usage to today's file (always, even with no limit: the page shows
        today's total from it)."""
        line = json.dumps(
            {
                "at": utc_now(),
                "model": model,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "source": usage.source,
            },
            separators=(",", ":"),
        ).encode("utf-8")
        path = self._day_file(person, self._clock().date(), create=True)
        with _lock_for(path), opened(path, os.O_RDWR | os.O_CREAT) as fd:
            regular_file_stat(fd)
            fcntl.lockf(fd, fcntl.LOCK_EX)  # released when the descriptor closes
            append_lines(fd, line + b"\n")

    # --- paths -----------------------------------------------------------------------------------

    def _day_file(self, person: str, day: date, *, create: bool) -> Path:
        if not self._is_valid_key(person):
            # The key is not echoed: it is a bearer secret and may be attacker-controlled.
            raise ValueError("a person's usage is addressed by a valid store key")
        # Symlinks are refused, never followed (core/files.py). Resolving the usage folder checks
        # the person's folder too; a reader pays nothing for a folder that is not there.
        person_folder = self.root / person
        usage_folder = person_folder / USAGE_DIR
        if create:
            private_dir(person_folder, create=True)
        if create or usage_folder.exists():
            private_dir(usage_folder, create=create)
        return usage_folder / f"{day.isoformat()}.jsonl"


def _parse(line: bytes) -> UsageRecord | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None  # a line torn by a crash: skipped
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        return None
    usage = Usage.from_dict({**data, "latency_ms": None})
    return None if usage is None else UsageRecord(data["model"], usage)


def _lock_for(path: Path) -> threading.Lock:
    return _LOCKS[hash(str(path)) % len(_LOCKS)]


__all__ = [
    "USAGE_DIR",
    "BudgetExceededError",
    "DailyAllowance",
    "UsageRecord",
    "describe_wait",
    "next_reset",
]
