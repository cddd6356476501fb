"""Retention: what the purge removes, keeps and skips. Time is injected (``now``), file times are
set with ``os.utime``, and the writer holding a lock is a real second process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import purge
from core.messages import Message
from core.purge import DAY_SECONDS, Windows
from core.sessions import SessionStore, new_session_key

NOW = datetime(2030, 6, 1, tzinfo=UTC).timestamp()
WINDOWS = Windows(conversations=365, trash=30, quarantine=90)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
"""


def age(path: Path, days: float) -> None:
    """Make ``path`` look last written ``days`` before NOW."""
    when = NOW - days * DAY_SECONDS
    os.utime(path, (when, when))


def moved_name(conversation_id: str, days_ago: float) -> str:
    """A kept-aside file name as core/sessions.py writes it, moved ``days_ago`` before NOW."""
    moved = datetime.fromtimestamp(NOW, UTC) - timedelta(days=days_ago)
    return f"{conversation_id}.{moved.strftime('%Y%m%dT%H%M%S.%f')}Z.0123abcd.jsonl"


def conversation(store: SessionStore, key: str, text: str) -> Path:
    conversation_id = store.create_conversation(key, text)
    store.append_messages(key, conversation_id, [Message("user", text)])
    return store.root / key / f"{conversation_id}.jsonl"


def test_each_area_keeps_what_is_inside_its_window(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    key, other = new_session_key(), new_session_key()
    old, recent = conversation(store, key, "old"), conversation(store, key, "recent")
    age(old, 366)
    age(recent, 364)
    elsewhere = conversation(store, other, "someone else's old one")
    age(elsewhere, 400)
    for area, (kept_days, gone_days) in {"trash": (29, 31), "quarantine": (89, 91)}.items():
        (tmp_path / key / area).mkdir(exist_ok=True)
        for days in (kept_days, gone_days):
            (tmp_path / key / area / moved_name(new_session_key(), days)).write_text("{}\n")
    # Old file time, recent name: the name (when it was deleted) is what counts.
    recently_trashed = tmp_path / key / "trash" / moved_name(new_session_key(), 1)
    recently_trashed.write_text("{}\n")
    age(recently_trashed, 1000)

    counts = purge.purge(tmp_path, WINDOWS, now=NOW)

    assert (counts["conversations"], counts["trash"], counts["quarantine"]) == (2, 1, 1)
    assert not old.exists() and not elsewhere.exists() and recent.exists()
    assert len(list((tmp_path / key / "trash").iterdir())) == 2
    assert len(list((tmp_path / key / "quarantine").iterdir())) == 1
    assert [s.title for s in SessionStore(tmp_path).list_conversations(key)] == ["recent"]


def test_zero_keeps_conversations_forever(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    ancient = conversation(store, new_session_key(), "ancient")
    age(ancient, 10_000)
    counts = purge.purge(tmp_path, Windows(0, 30, 90), now=NOW)
    assert ancient.exists() and counts["conversations"] == 0


def test_a_conversation_whose_lock_a_writer_holds_is_kept(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    key = new_session_key()
    held, free = conversation(store, key, "held"), conversation(store, key, "free")
    age(held, 400)
    age(free, 400)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(held)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "locked\n"
        counts = purge.purge(tmp_path, WINDOWS, now=NOW)
        assert (counts["conversations"], counts["busy"]) == (1, 1)
        assert held.exists() and not free.exists()
    finally:
        writer.communicate("done\n", timeout=60)
    assert purge.purge(tmp_path, WINDOWS, now=NOW)["conversations"] == 1  # released: next run
    assert not held.exists()


def test_only_store_folders_are_visited_and_links_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / f"{new_session_key()}.jsonl"
    victim.write_text("{}\n")
    age(victim, 5000)
    root.mkdir()
    (root / new_session_key()).symlink_to(outside, target_is_directory=True)
    (root / ".erasing-leftover").mkdir()
    stray = root / ".erasing-leftover" / f"{new_session_key()}.jsonl"
    stray.write_text("{}\n")
    age(stray, 5000)
    key = new_session_key()
    (root / key).mkdir()
    (root / key / "trash").symlink_to(outside, target_is_directory=True)

    assert sum(purge.purge(root, Windows(1, 1, 1), now=NOW).values()) == 0
    assert victim.exists() and stray.exists()


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"TRASH_RETENTION_DAYS": "0"}, "TRASH_RETENTION_DAYS='0'"),
        ({"QUARANTINE_RETENTION_DAYS": "-1"}, "QUARANTINE_RETENTION_DAYS='-1'"),
        ({"CONVERSATION_RETENTION_DAYS": "1.5"}, "CONVERSATION_RETENTION_DAYS='1.5'"),
        ({"CONVERSATION_RETENTION_DAYS": "99999999"}, "CONVERSATION_RETENTION_DAYS="),
    ],
)
def test_bad_windows_are_refused_by_name(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        purge.windows_from_env(env)


def test_defaults_keep_conversations_and_erase_trash_after_30_days() -> None:
    assert purge.windows_from_env({}) == Windows(conversations=0, trash=30, quarantine=90)


def test_the_command_logs_counts_never_names_or_contents(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    key = new_session_key()
    doomed = conversation(store, key, "a very private title")
    os.utime(doomed, (0, 0))
    env = {**os.environ, "SESSIONS_DIR": str(tmp_path), "CONVERSATION_RETENTION_DAYS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "core.purge"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert line["event"] == "purge" and line["removed_conversations"] == 1
    for secret in (key, "private", doomed.stem):
        assert secret not in done.stdout
