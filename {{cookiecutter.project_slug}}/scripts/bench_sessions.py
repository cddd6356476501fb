"""Measure what one chat turn costs the session store as a conversation grows.

    uv run python scripts/bench_sessions.py [--dir /mnt/efs/bench] [--repeat 30]

For conversations of 10, 100, 1,000 and 10,000 messages it times one append (a ~500-byte message,
fsync included), the incremental read that follows it, the sidebar listing, and, for contrast, a
cold read of the whole file by a fresh store (what every page view would cost without the cache).
Times are medians; the ratios compare each size with the 10-message baseline of the same run, so
they hold on any machine. Appends and incremental reads should stay near 1x; the cold read grows
with the conversation. Run it with ``--dir`` on the EFS mount to see network file system costs.
This is a measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.messages import Message
from core.sessions import SessionStore, new_session_key

SIZES = (10, 100, 1_000, 10_000)
FILL_BATCH = 50  # messages per append while filling: fewer fsyncs, same file size
TEXT = "A typical chat message of about five hundred bytes. " * 10


def median_microseconds(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        action()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def timed_ns(action: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    action()
    return time.perf_counter_ns() - start


def cold_read(root: Path, key: str, conversation: str) -> None:
    """A fresh store has no cache: it parses the whole file, like a newly started task."""
    SessionStore(root).read_messages(key, conversation)


def fill(store: SessionStore, key: str, size: int) -> str:
    conversation = store.create_conversation(key, f"{size} messages")
    for start in range(0, size, FILL_BATCH):
        batch = [
            Message(role="user" if i % 2 == 0 else "assistant", content=f"{i} {TEXT}")
            for i in range(start, min(size, start + FILL_BATCH))
        ]
        store.append_messages(key, conversation, batch)
    store.read_messages(key, conversation)  # the page has read it once already
    return conversation


def measure(root: Path, repeat: int) -> dict[int, dict[str, float]]:
    store = SessionStore(root)
    keys = {size: new_session_key() for size in SIZES}
    conversations = {size: fill(store, keys[size], size) for size in SIZES}
    appends: dict[int, list[int]] = {size: [] for size in SIZES}
    reads: dict[int, list[int]] = {size: [] for size in SIZES}
    # Round robin over the sizes, so disk noise (fsync latency varies) hits them all alike.
    for i in range(repeat):
        for size in SIZES:
            key, conversation = keys[size], conversations[size]
            message = Message(role="user", content=f"extra {i} {TEXT}")
            appends[size].append(
                timed_ns(partial(store.append_messages, key, conversation, [message]))
            )
            reads[size].append(timed_ns(partial(store.read_messages, key, conversation)))
    results = {}
    for size in SIZES:
        key, conversation = keys[size], conversations[size]
        results[size] = {
            "bytes": (store.root / key / f"{conversation}.jsonl").stat().st_size,
            "append": statistics.median(appends[size]) / 1000,
            "read": statistics.median(reads[size]) / 1000,
            "list": median_microseconds(partial(store.list_conversations, key), repeat),
            "cold": median_microseconds(
                partial(cold_read, root, key, conversation), max(3, repeat // 5)
            ),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=30, help="samples per measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        results = measure(Path(scratch), args.repeat)

    base = results[SIZES[0]]
    columns = ("append", "read", "list", "cold")
    titles = ("append 1 msg", "incremental read", "list sidebar", "cold full read")
    print(f"{'messages':>9} {'file':>9}  " + "  ".join(f"{t:>22}" for t in titles))
    for size, row in results.items():
        cells = [f"{row[c]:9.0f} us {row[c] / base[c]:6.1f}x" for c in columns]
        print(f"{size:>9} {row['bytes'] / 1024:7.0f}KB  " + "  ".join(f"{c:>22}" for c in cells))
    print(
        "\nRatios are against the 10-message conversation of this run. Appends write only the new"
        "\nrecord and read nothing back; incremental reads parse only the new bytes (they still"
        "\ncopy the list of message references, which is why they creep up at 10,000 messages)."
    )


if __name__ == "__main__":
    main()
