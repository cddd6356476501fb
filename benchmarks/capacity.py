"""How many people chatting at once can one Fargate-sized task serve?

Builds the generated project's real image exactly as tests/test_container.py does (buildah on a
debootstrap stand-in for the Python base image), then, for each number of people N, starts a fresh
container at the default ECS task size with podman::

    podman run --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \\
        --cpus 0.25 --memory 512m --network host IMAGE

(host networking only so that the server listens on 127.0.0.1 of this machine), on the echo model
made to stream like a real model (ECHO_WORDS_PER_SECOND, default 40 words/s, about 50 tokens/s,
in the range Bedrock's models stream at). N people, each a headless chromium context of its own
(its own session key), open the page and then, until the measuring time is over, send a message of
``--prompt-words`` words, wait for the complete reply, and think for ``--think`` seconds (+-50 %,
seeded) before the next. Their first turn warms up and is not counted. A turn is timed from Enter
until the reply is complete on screen and the script run has finished, so it includes the reply's
streaming time (about ``(prompt words + 4) / words per second``). The container's CPU (as a share
of its 0.25 vCPU quota) and memory (without the kernel's file cache, as ECS reports it) are sampled
from its cgroup every second.

It prints, per N: turns measured, p50 and p95 turn latency, p50 time to the first word, mean and
peak CPU, peak memory, and how many people gave up (a page that did not load, or a reply that did
not come, within 90 s); then the largest N measured with p95 < 2 s and peak memory < 80 % of the
task, and the memory each extra browser session costs. Figures depend on the machine (the load
generator shares it), which is why the table in the READMEs names the command that produced it.

    uv run python -m benchmarks.capacity [--people 1,5,8,10,20,40] [--duration 60] [--think 5]
        [--words-per-second 40] [--prompt-words 20] [--project PATH]

Needs buildah, debootstrap, podman and runc (Debian packages) and root, as the container test
does. A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

from benchmarks.project import prepare_project
from benchmarks.turn_latency import REPLY_DONE
from tests.support.browser import CHROMIUM_ARGS, CHROMIUM_PATH, TIMEOUT_MS, VIEWPORT
from tests.support.chat import CHAT_INPUT
from tests.support.container import (
    Buildah,
    make_stand_ins,
    require_tools,
    without_digests,
)
from tests.support.servers import STARTUP_TIMEOUT_S, free_port

TASK_CPUS = 0.25
TASK_MEMORY_MB = 512
P95_LIMIT_S = 2.0
MEMORY_LIMIT = 0.80
SESSIONS_MOUNT = "/data/sessions"
APP_UID = APP_GID = 10001  # the image's user; the EFS access point's POSIX user
_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")

# True once the last message is the assistant's and its first word is on screen; the end of the
# turn is benchmarks/turn_latency.py's REPLY_DONE (the whole echo, the run finished).
_REPLY_STARTED = """(prompt) => {
  const all = document.querySelectorAll('[data-testid="stChatMessageContent"]');
  const last = all[all.length - 1];
  return !!last && (last.getAttribute('aria-label') || '').includes('assistant')
    && last.innerText.includes('Echo from');
}"""


# --- the image and the container ---------------------------------------------------------------


def build_image(project: Path, workdir: Path) -> tuple[Buildah, str]:
    """The project's image, built as tests/test_container.py builds it."""
    require_tools("buildah", "debootstrap", "chroot", "tar", "uv", "podman", "runc")
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    buildah = Buildah(storage=workdir / "storage", log=logs / "build.log")
    dockerfile = (project / "Dockerfile").read_text()
    make_stand_ins(buildah, dockerfile, workdir)
    local_dockerfile = workdir / "Dockerfile.local"
    local_dockerfile.write_text(without_digests(dockerfile))
    context = workdir / "context" / project.name
    shutil.copytree(project, context, ignore=shutil.ignore_patterns(".venv", ".git", ".sessions"))
    image = f"localhost/{project.name}:capacity"
    buildah.build(context, local_dockerfile, image)
    return buildah, image


def podman(buildah: Buildah, *args: str, check: bool = True) -> str:
    """podman on buildah's private image store (the two share containers/storage)."""
    command = ["podman", *buildah.prefix()[1:], *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:8])} ... failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


@dataclass
class Container:
    """One app container at the Fargate task size, listening on 127.0.0.1:``port``."""

    buildah: Buildah
    name: str
    port: int

    @classmethod
    def start(
        cls, buildah: Buildah, image: str, sessions: Path, words_per_second: float
    ) -> Container:
        sessions.mkdir(parents=True)
        os.chown(sessions, APP_UID, APP_GID)
        port = free_port()
        name = f"capacity-{port}"
        podman(
            buildah,
            "run", "--detach", "--pull=never", "--name", name,
            "--runtime", "runc",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            "--cpus", str(TASK_CPUS), "--memory", f"{TASK_MEMORY_MB}m",
            "--network", "host",
            "--volume", f"{sessions}:{SESSIONS_MOUNT}",
            "--env", "LLM_PROVIDER=echo",
            "--env", f"ECHO_WORDS_PER_SECOND={words_per_second}",
            "--env", "STREAMLIT_SERVER_ADDRESS=127.0.0.1",
            "--env", f"STREAMLIT_SERVER_PORT={port}",
            image,
        )  # fmt: skip
        container = cls(buildah, name, port)
        container.wait_until_healthy()
        return container

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_healthy(self) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer:\n{self.logs()}")

    def cgroup(self, controller: str) -> Path:
        """The container's cgroup folder for ``controller`` (cgroup v1), else its v2 folder."""
        pid = podman(self.buildah, "inspect", "--format", "{{.State.Pid}}", self.name)
        unified = Path("/sys/fs/cgroup")
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return Path("/sys/fs/cgroup", controller) / path.lstrip("/")
            if controllers == "":
                unified = unified / path.lstrip("/")
        return unified

    def logs(self) -> str:
        return podman(self.buildah, "logs", "--tail", "30", self.name, check=False)

    def remove(self) -> None:
        podman(self.buildah, "rm", "--force", "--time", "10", self.name, check=False)


class Sampler:
    """CPU share of the quota and memory without file cache, read from the cgroup every second."""

    def __init__(self, container: Container) -> None:
        self.cpu_file = _first_existing(
            container.cgroup("cpuacct") / "cpuacct.usage", container.cgroup("cpu") / "cpu.stat"
        )
        memory = container.cgroup("memory")
        self.memory_files = (
            _first_existing(memory / "memory.usage_in_bytes", memory / "memory.current"),
            memory / "memory.stat",
        )
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, CPU share, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_seconds(self) -> float:
        text = self.cpu_file.read_text()
        if self.cpu_file.name == "cpuacct.usage":
            return int(text) / 1e9
        usage = dict(line.split() for line in text.splitlines())
        return int(usage["usage_usec"]) / 1e6

    def memory_now(self) -> float:
        usage = int(self.memory_files[0].read_text())
        stat = dict(line.split() for line in self.memory_files[1].read_text().splitlines())
        inactive = int(stat.get("total_inactive_file", stat.get("inactive_file", 0)))
        return (usage - inactive) / 2**20

    def _run(self) -> None:
        last_cpu, last_time = self.cpu_seconds(), time.monotonic()
        while not self._stop.wait(1.0):
            cpu, now = self.cpu_seconds(), time.monotonic()
            share = (cpu - last_cpu) / (now - last_time) / TASK_CPUS
            self.samples.append((now, share, self.memory_now()))
            last_cpu, last_time = cpu, now


def _first_existing(*paths: Path) -> Path:
    for path in paths:
        if path.exists():
            return path
    raise RuntimeError(f"none of {paths} exists: cannot read the container's usage")


# --- the people --------------------------------------------------------------------------------


@dataclass
class Results:
    """What the people saw, and when the measuring window ran (time.monotonic())."""

    people: int
    duration: float
    turns: list[float] = field(default_factory=list)
    first_words: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    arrived: int = 0
    start: float = 0.0
    all_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self) -> None:
        """One more person has loaded the page and had a first turn (or gave up trying)."""
        self.arrived += 1
        if self.arrived == self.people:
            self.start = time.monotonic()
            self.all_arrived.set()

    @property
    def until(self) -> float:
        return self.start + self.duration


def prompt_for(person: int, turn: int, words: int) -> str:
    filler = " ".join(_FILLER[i % len(_FILLER)] for i in range(words - 1))
    return f"{filler} p{person}t{turn}x{time.monotonic_ns()}"


async def timed_turn(page: Page, prompt: str) -> tuple[float, float]:
    """(time to the first word of the reply, time to the complete reply), from Enter."""
    await page.locator(CHAT_INPUT).fill(prompt)
    start = time.perf_counter()
    await page.locator(CHAT_INPUT).press("Enter")
    # The previous reply is also an assistant message: first wait for the new user message.
    await page.wait_for_function(
        """(prompt) => {
          const all = document.querySelectorAll('[data-testid="stChatMessageContent"]');
          return Array.from(all).slice(-2).some((m) => m.innerText.includes(prompt));
        }""",
        arg=prompt,
        timeout=TIMEOUT_MS,
        polling=50,
    )
    await page.wait_for_function(_REPLY_STARTED, arg=prompt, timeout=TIMEOUT_MS, polling=50)
    first = time.perf_counter() - start
    await page.wait_for_function(REPLY_DONE, arg=prompt, timeout=TIMEOUT_MS, polling=50)
    return first, time.perf_counter() - start


async def person(
    browser: Browser, url: str, number: int, args: argparse.Namespace, out: Results
) -> None:
    """Load the page, warm up with one turn, wait for everybody, then chat until the window ends."""
    rng = random.Random(number)  # noqa: S311 (think times, not secrets)
    context = await browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    try:
        try:
            await page.goto(url)
            await page.locator(CHAT_INPUT).wait_for(state="visible")
            await timed_turn(page, prompt_for(number, 0, args.prompt_words))
        finally:
            out.arrive()
        await out.all_arrived.wait()
        await asyncio.sleep(args.think * rng.uniform(0, 1))  # not all at the same moment
        turn = 1
        while time.monotonic() < out.until:
            first, total = await timed_turn(page, prompt_for(number, turn, args.prompt_words))
            out.first_words.append(first)
            out.turns.append(total)
            turn += 1
            await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))
    except Exception as error:  # a person who gave up is a result, not a crash of the benchmark
        out.failures.append(f"person {number}: {type(error).__name__}: {str(error)[:200]}")
    finally:
        await context.close()


async def load(url: str, people: int, args: argparse.Namespace) -> Results:
    out = Results(people, args.duration)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            # People arrive over a few seconds rather than in one burst of page loads.
            tasks = []
            for number in range(people):
                tasks.append(asyncio.create_task(person(browser, url, number, args, out)))
                await asyncio.sleep(0.5)
            await asyncio.gather(*tasks)
        finally:
            await browser.close()
    return out


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Level:
    people: int
    results: Results
    cpu: list[float]
    memory_mb: list[float]

    @property
    def p95(self) -> float:
        return percentile(self.results.turns, 95)

    @property
    def peak_memory(self) -> float:
        return max(self.memory_mb, default=float("nan"))

    @property
    def fits(self) -> bool:
        return (
            bool(self.results.turns)
            and not self.results.failures
            and self.p95 < P95_LIMIT_S
            and self.peak_memory < MEMORY_LIMIT * TASK_MEMORY_MB
        )


def percentile(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def measure(
    buildah: Buildah, image: str, people: int, args: argparse.Namespace, workdir: Path
) -> Level:
    container = Container.start(
        buildah, image, workdir / f"sessions-{people}", args.words_per_second
    )
    try:
        with Sampler(container) as sampler:
            results = asyncio.run(load(container.url, people, args))
        # CPU while everybody chats; memory's peak at any moment, page loads included.
        window = [s for s in sampler.samples if results.start <= s[0] <= results.until]
        cpu = [share for _, share, _ in window]
        return Level(people, results, cpu, [mb for _, _, mb in sampler.samples])
    finally:
        container.remove()


def report_row(level: Level) -> None:
    r = level.results
    cpu = level.cpu or [float("nan")]
    print(
        f"{level.people:>6} {len(r.turns):>6} {percentile(r.turns, 50):>7.2f} {level.p95:>7.2f} "
        f"{percentile(r.first_words, 50):>9.2f} {statistics.mean(cpu):>8.0%} {max(cpu):>8.0%} "
        f"{level.peak_memory:>8.0f} {level.peak_memory / TASK_MEMORY_MB:>6.0%} "
        f"{len(r.failures):>7}{'' if level.fits else '  over'}",
        flush=True,
    )
    if r.failures:
        print(f"{'':>6} first of them: {r.failures[0].splitlines()[0]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="1,5,8,10,20,40", help="comma-separated counts")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load per count")
    parser.add_argument("--think", type=float, default=5, help="mean seconds between turns")
    parser.add_argument("--words-per-second", type=float, default=40, help="echo model's pace")
    parser.add_argument("--prompt-words", type=int, default=20, help="words per message")
    parser.add_argument("--project", type=Path, help="an already baked project (default: bake)")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.people.split(",") if n.strip()})
    with tempfile.TemporaryDirectory(prefix="capacity-", dir="/var/tmp") as tmp:
        workdir = Path(tmp)
        project = prepare_project(workdir, args.project)
        buildah, image = build_image(project, workdir)
        print(
            f"image {image}; {TASK_CPUS} vCPU, {TASK_MEMORY_MB} MB; echo at "
            f"{args.words_per_second:g} words/s; {args.prompt_words}-word messages; think "
            f"{args.think:g} s; {args.duration:g} s per count"
        )
        print(
            f"{'people':>6} {'turns':>6} {'p50 s':>7} {'p95 s':>7} {'1st word':>9} "
            f"{'CPU mean':>8} {'CPU max':>8} {'mem MB':>8} {'mem %':>6} {'gave up':>7}"
        )
        levels = []
        try:
            for people in counts:
                levels.append(measure(buildah, image, people, args, workdir))
                report_row(levels[-1])
        finally:
            shutil.rmtree(workdir / "storage", ignore_errors=True)
        summarize(levels)


def summarize(levels: list[Level]) -> None:
    fitting = [level.people for level in levels if level.fits]
    print(
        f"\nlargest N measured with p95 < {P95_LIMIT_S:g} s and memory < {MEMORY_LIMIT:.0%}: "
        f"{max(fitting) if fitting else 'none'}"
    )
    measured = [level for level in levels if level.memory_mb]
    if len(measured) >= 2:
        low, high = measured[0], measured[-1]
        per = (high.peak_memory - low.peak_memory) / (high.people - low.people)
        print(f"memory per extra browser session ({low.people} -> {high.people}): {per:+.2f} MB")


if __name__ == "__main__":
    main()
