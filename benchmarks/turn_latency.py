"""How long does one chat turn take as the conversation grows?

One Streamlit server of the default bake (or ``--project``) on the offline echo model, Debian's
chromium through Playwright. For each size (default 4, 400 and 1,000 stored messages) a browser
session gets a conversation of that many messages, written through the project's own store, and
opens it. Then, in rounds that visit every size in turn (so a busy moment of the machine hits every
size alike), each session sends one message; a turn is timed from Enter until the reply is
complete on screen and the script run has finished. The first turn of each session warms it up
and is not counted. It prints the median and the worst turn per size and the ratio to the smallest
size, all from this one run: the ratios hold on any machine, the seconds do not.

    uv run python -m benchmarks.turn_latency [--sizes 4,400,1000] [--turns 5] [--project PATH]

A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page

from benchmarks.project import prepare_project, seed_conversations
from tests.support.browser import TIMEOUT_MS, chromium, new_page
from tests.support.chat import CHAT_INPUT, open_chat, server_identity, wait_until_idle
from tests.support.servers import Processes, streamlit_env

# True once the run that answered ``prompt`` has finished and the last message on screen is the
# assistant's complete echo of it (the echo model's reply repeats the prompt, which ends with a
# unique number, and the model's name follows it as a caption). Evaluated in the
# page, so the check costs the same whatever the length of the chat.
REPLY_DONE = """(prompt) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const all = document.querySelectorAll('[data-testid="stChatMessageContent"]');
  const last = all[all.length - 1];
  if (!last || !(last.getAttribute('aria-label') || '').includes('assistant')) return false;
  return last.innerText.includes(prompt);
}"""


def timed_turn(page: Page, prompt: str) -> float:
    """Seconds from pressing Enter to the complete reply on screen with the run finished."""
    wait_until_idle(page)
    box = page.locator(CHAT_INPUT)
    box.fill(prompt)
    start = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(REPLY_DONE, arg=prompt, timeout=TIMEOUT_MS, polling="raf")
    return time.perf_counter() - start


def measure(project: Path, sizes: list[int], turns: int, workdir: Path) -> dict[int, list[float]]:
    """Turn times per conversation size, ``turns`` each, after one warm-up turn."""
    sessions_dir = workdir / "sessions"
    times: dict[int, list[float]] = {size: [] for size in sizes}
    with Processes(workdir / "logs") as processes, chromium() as browser:
        server = processes.streamlit(project, streamlit_env(sessions_dir, LLM_PROVIDER="echo"))
        pages: dict[int, Page] = {}
        for size in sizes:
            page = new_page(browser)
            open_chat(page, server.url)
            key = server_identity(page).session_key
            seed_conversations(project, sessions_dir, key, 1, size)
            open_chat(page, server.url)  # a reload opens the newest conversation: the seeded one
            timed_turn(page, f"warm-up {size}")
            pages[size] = page
        for round_number in range(turns):
            for size in sizes:
                prompt = f"turn {round_number} at size {size} {time.monotonic_ns()}"
                times[size].append(timed_turn(pages[size], prompt))
        print(f"server log: {server.log_path}")
    return times


def report(times: dict[int, list[float]]) -> None:
    base_size = min(times)
    base = statistics.median(times[base_size])
    print(f"{'messages':>9} {'median s':>9} {'max s':>7} {'x ' + str(base_size):>7}")
    for size, samples in sorted(times.items()):
        median = statistics.median(samples)
        print(f"{size:>9} {median:>9.3f} {max(samples):>7.3f} {median / base:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,400,1000", help="comma-separated message counts")
    parser.add_argument("--turns", type=int, default=5, help="timed turns per size")
    parser.add_argument("--project", type=Path, help="an already baked project (default: bake)")
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.sizes.split(",") if n.strip()})
    with tempfile.TemporaryDirectory(prefix="turn-latency-") as tmp:
        workdir = Path(tmp)
        project = prepare_project(workdir, args.project)
        print(f"project: {project}")
        report(measure(project, sizes, args.turns, workdir))


if __name__ == "__main__":
    main()
