"""How many file operations does one page run cost as a person's conversations pile up?

On EFS every file operation under ``SESSIONS_DIR`` is a network round trip, so this count, not
CPU, is what a page run costs there. For each number of conversations (default 1, 100 and 1,000,
each of 4 messages, written through the project's own store by another process), the project's
interpreter runs the page twice with Streamlit's AppTest, exactly as the server's script runner
runs it (the same ``app.py``, the real store, the real localStorage wrapper with its browser read
seeded), under ``strace -f -y``. Every system call whose path, or whose file descriptor's path
(``-y``), lies under ``SESSIONS_DIR`` counts: opens, stats, reads, writes, locks, closes, renames.
Marker calls on a path that does not exist split the trace into the first run of a fresh process
(empty caches, as on a newly started task) and the next run (a rerun: every click and every turn).

Why strace on AppTest rather than on the server: the trace then holds exactly one page run
between two markers, with nothing of the browser's timing in it, and it counts what the kernel
sees, including calls the store does not make itself. The server adds only the websocket.

    uv run python -m benchmarks.file_ops [--conversations 1,100,1000] [--project PATH]

Needs ``strace`` (Debian package). A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from benchmarks.project import prepare_project, project_env, seed_conversations

MESSAGES_PER_CONVERSATION = 4
# The store compares a folder changed less than 2 s ago with its index again on every listing
# (timestamps are coarse: see _RACY_NS in core/sessions.py). Runs are measured once the seeded
# folder is older than that, as a person's folder is between their own turns.
QUIET_AFTER_SEEDING_S = 2.5
_MARK = "/nonexistent-file-ops-mark-"
# Run by the project's interpreter under strace: the page twice, with markers around each run.
_PAGE_RUNS = f"""
import os, sys
from streamlit.testing.v1 import AppTest
import browser_session

def mark(name):
    try:
        os.stat("{_MARK}" + name)
    except FileNotFoundError:
        pass

page = AppTest.from_file("app.py", default_timeout=120)
page.session_state["storage_init"] = {{browser_session.STORAGE_ITEM: sys.argv[1]}}
mark("first")
page.run()
mark("rerun")
page.run()
mark("end")
if page.exception:
    sys.exit(f"the page failed: {{page.exception}}")
"""
_CALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\(")


def count_calls(trace: Path, sessions_dir: Path) -> dict[str, Counter[str]]:
    """System calls on paths under ``sessions_dir`` per run, by call name."""
    runs: dict[str, Counter[str]] = {"first": Counter(), "rerun": Counter()}
    current: str | None = None
    needle = str(sessions_dir)
    for line in trace.read_text(errors="replace").splitlines():
        if _MARK in line:
            name = line.split(_MARK, 1)[1].split('"', 1)[0]
            current = name if name in runs else None
            continue
        if current is None or needle not in line:
            continue
        match = _CALL.match(line)
        if match:
            runs[current][match[1]] += 1
    return runs


def measure(project: Path, conversations: int, workdir: Path) -> dict[str, Counter[str]]:
    sessions_dir = workdir / f"sessions-{conversations}"
    key = str(uuid.uuid4())
    seed_conversations(project, sessions_dir, key, conversations, MESSAGES_PER_CONVERSATION)
    time.sleep(QUIET_AFTER_SEEDING_S)
    trace = workdir / f"strace-{conversations}.txt"
    env = project_env() | {"SESSIONS_DIR": str(sessions_dir), "LLM_PROVIDER": "echo"}
    strace = shutil.which("strace") or "strace"  # main() checked that it is installed
    subprocess.run(  # noqa: S603 (our own command line)
        [
            strace,
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=%file,%desc",
            "-o",
            str(trace),
            str(project / ".venv" / "bin" / "python"),
            "-c",
            _PAGE_RUNS,
            key,
        ],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return count_calls(trace, sessions_dir.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", default="1,100,1000", help="comma-separated counts")
    parser.add_argument("--project", type=Path, help="an already baked project (default: bake)")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace is missing (apt-get install strace)")
    counts = sorted({int(n) for n in args.conversations.split(",") if n.strip()})
    with tempfile.TemporaryDirectory(prefix="file-ops-") as tmp:
        workdir = Path(tmp)
        project = prepare_project(workdir, args.project)
        print(f"project: {project}")
        print(
            f"{'conversations':>13} {'first run':>10} {'opens':>6} {'rerun':>7} {'opens':>6} "
            f"{'rerun x ' + str(counts[0]):>10}"
        )
        base: int | None = None
        for conversations in counts:
            runs = measure(project, conversations, workdir)
            first, rerun = runs["first"], runs["rerun"]
            total = sum(rerun.values())
            base = base or total
            print(
                f"{conversations:>13} {sum(first.values()):>10} {_opens(first):>6} {total:>7} "
                f"{_opens(rerun):>6} {total / base:>10.2f}"
            )
            print(f"{'':>13} rerun calls: {dict(rerun.most_common())}")


def _opens(calls: Counter[str]) -> int:
    return calls["open"] + calls["openat"]


if __name__ == "__main__":
    main()
