"""How much server memory does one more chat session cost?

On a 0.5 GB Fargate task this figure decides how many people one task can hold before the memory
alarm (and the autoscaling memory backstop) fires. The script bakes the default project (or uses
``--project``), starts ONE Streamlit server of it on the offline echo model, then opens browser
sessions one after another in Debian's chromium (each in its own context, so each has its own
session key, and each sends a message so the session has done a full turn) and prints the
server's resident memory (and its peak so far) after 1, 5, 10 and 20 open sessions, with the
marginal MB per session.

It prints figures and asserts nothing: memory depends on the machine, the Python build and the
conversation sizes. Run it from the template's root, after ``uv sync``:

    uv run python -m benchmarks.memory_per_session [--sessions 1,5,10,20] [--project PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.project import prepare_project
from tests.support.browser import chromium, new_page
from tests.support.chat import open_chat, send_message
from tests.support.servers import Processes, streamlit_env

TASK_MEMORY_MB = 512  # the default Fargate task size of the generated app stack
# Pause before each reading so the server has finished the runs the last pages triggered.
SETTLE_S = 3.0


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of a process from /proc (Linux): ``VmRSS`` now, ``VmHWM`` its peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def measure(project: Path, steps: list[int], workdir: Path) -> list[tuple[int, float]]:
    """RSS after each number of open sessions in ``steps`` (0 = the idle server)."""
    readings: list[tuple[int, float]] = []
    with Processes(workdir / "logs") as processes, chromium() as browser:
        server = processes.streamlit(
            project, streamlit_env(workdir / "sessions", LLM_PROVIDER="echo")
        )
        time.sleep(SETTLE_S)
        readings.append((0, memory_mb(server.pid)))
        print(f"{0:>9} {readings[-1][1]:>9.1f} {memory_mb(server.pid, 'VmHWM'):>9.1f}   (idle)")
        pages = []
        for target in steps:
            while len(pages) < target:
                page = new_page(browser)
                open_chat(page, server.url)
                send_message(page, f"Hello from benchmark session {len(pages) + 1}")
                pages.append(page)
            time.sleep(SETTLE_S)
            readings.append((target, memory_mb(server.pid)))
            previous_n, previous_mb = readings[-2]
            note = ""
            if previous_n > 0:
                per = (readings[-1][1] - previous_mb) / (target - previous_n)
                note = f"   {per:+.2f} MB per session since {previous_n}"
            peak = memory_mb(server.pid, "VmHWM")
            print(f"{target:>9} {readings[-1][1]:>9.1f} {peak:>9.1f}{note}")
        print(f"server log: {server.log_path}")
    return readings


def summarize(readings: list[tuple[int, float]]) -> None:
    with_sessions = [(n, mb) for n, mb in readings if n > 0]
    if len(with_sessions) < 2:
        return
    (first_n, first_mb), (last_n, last_mb) = with_sessions[0], with_sessions[-1]
    per_session = (last_mb - first_mb) / (last_n - first_n)
    print(
        f"\nmarginal memory per extra session ({first_n} -> {last_n}): {per_session:+.2f} MB; "
        f"base with one session: {first_mb:.0f} MB"
    )
    if per_session < 0.1:
        # The allocator returns and reuses memory in steps of megabytes: a tiny or negative
        # slope means sessions cost less than that noise (conversations live on disk).
        print(
            "per-session cost is below the measurement noise: memory does not limit sessions here"
        )
    else:
        # Leave a quarter of the task for the runtime's spikes (imports, a long reply, GC).
        budget = TASK_MEMORY_MB * 0.75 - first_mb
        print(
            f"rough capacity of a {TASK_MEMORY_MB} MB task at 75 % memory: "
            f"{first_n + budget / per_session:.0f} open sessions (echo model, short chats)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,5,10,20", help="comma-separated session counts")
    parser.add_argument("--project", type=Path, help="an already baked project (default: bake)")
    args = parser.parse_args()
    steps = sorted({int(n) for n in args.sessions.split(",") if n.strip()})
    with tempfile.TemporaryDirectory(prefix="memory-per-session-") as tmp:
        workdir = Path(tmp)
        project = prepare_project(workdir, args.project)
        print(f"project: {project}\n{'sessions':>9} {'RSS MB':>9} {'peak MB':>9}")
        summarize(measure(project, steps, workdir))


if __name__ == "__main__":
    main()
