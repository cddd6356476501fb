"""Child processes for tests/test_sessions.py: independent writers, like tasks on other hosts.

Run as ``python -m tests.sessions_worker COMMAND ARGS...`` from the project folder. Separate
interpreters (not multiprocessing) so nothing is shared with the test process, not even imports.
A worker that must wait prints a line and blocks on stdin; the test answers or kills it.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import sys
import threading
from pathlib import Path

from core.messages import Message
from core.sessions import SessionStore


def say(line: str) -> None:
    print(line, flush=True)


def append_from_threads(root: str, session_key: str, conversation_id: str, worker: str) -> None:
    """Three writer threads and a reader thread in one process, as Streamlit serves sessions.

    The reader opens and closes the file the whole time: closing a descriptor drops the POSIX locks
    the process holds on that file, so this shows whether the in-process lock prevents that.
    """
    store = SessionStore(Path(root))
    done = threading.Event()

    def write(thread: int) -> None:
        for i in range(15):
            text = f"{worker}.{thread}.{i}"
            store.append_messages(session_key, conversation_id, [Message("user", text)])

    def read() -> None:
        while not done.is_set():
            store.read_messages(session_key, conversation_id)
            store.list_conversations(session_key)

    say("ready")
    sys.stdin.readline()  # "go": every worker starts at once
    writers = [threading.Thread(target=write, args=(thread,)) for thread in range(3)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()


def append_one(root: str, session_key: str, conversation_id: str, text: str) -> None:
    SessionStore(Path(root)).append_messages(session_key, conversation_id, [Message("user", text)])


def create_conversations(root: str, session_key: str, worker: str, count: str) -> None:
    """Create conversations titled ``<worker>.<i>``, starting when told (a task on another host)."""
    store = SessionStore(Path(root))
    say("ready")
    sys.stdin.readline()  # "go": every worker starts at once
    for i in range(int(count)):
        conversation_id = store.create_conversation(session_key, f"{worker}.{i}")
        store.append_messages(session_key, conversation_id, [Message("user", f"{worker}.{i}")])


def delete_one(root: str, session_key: str, conversation_id: str) -> None:
    SessionStore(Path(root)).delete_conversation(session_key, conversation_id)


def lock_write_half_and_hang(path: str, half_hex: str) -> None:
    """What a writer looks like when its task dies mid-write: lock held, record half written."""
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    os.pwrite(fd, bytes.fromhex(half_hex), os.fstat(fd).st_size)
    say("written")
    sys.stdin.readline()  # never answered: the test kills this process here


def lock_then_move(path: str, target: str) -> None:
    """What a delete in another task does: lock, move the file away, unlock (when told to)."""
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    say("locked")
    sys.stdin.readline()
    os.rename(path, target)
    os.close(fd)


def append_until_killed(root: str, session_key: str, conversation_id: str) -> None:
    store = SessionStore(Path(root))
    for i in itertools.count():
        # Large records make it likely that the kill lands in the middle of a write.
        text = f"{i}:" + "x" * 200_000
        store.append_messages(session_key, conversation_id, [Message("user", text)])
        if i == 0:
            say("started")


COMMANDS = {
    "append-from-threads": append_from_threads,
    "append-one": append_one,
    "create-conversations": create_conversations,
    "delete-one": delete_one,
    "lock-write-half-and-hang": lock_write_half_and_hang,
    "lock-then-move": lock_then_move,
    "append-until-killed": append_until_killed,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
