"""Debian's chromium driven by Python Playwright, and what to keep when a browser test fails.

Playwright's own browser downloads come from the internet at ``playwright install`` time; the
distribution's chromium needs no download and is what CI installs, so it is launched by path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.support.servers import log_tail

CHROMIUM_PATH = "/usr/bin/chromium"
# No sandbox (CI runs as root in a container), no GPU, and nothing that phones home: the test
# must produce no traffic to any address but 127.0.0.1. Shared memory goes to /tmp, because a
# container's /dev/shm is 64 MB by default and chromium's renderers crash when it fills up.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
# Wide enough that Streamlit shows the sidebar expanded (it collapses it on narrow screens).
VIEWPORT = {"width": 1280, "height": 900}
# Upper bound for any page action or wait (a first load runs the app's imports, a few seconds on
# an idle machine, much more on a loaded CI runner): a failure, never a timing expectation.
TIMEOUT_MS = 90_000
LOG_TAIL_LINES = 25


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch chromium headless. Playwright gives every launch a fresh temporary profile
    (user-data-dir) and deletes it on close, so no state leaks from one test to the next."""
    if shutil.which(CHROMIUM_PATH) is None:
        raise RuntimeError(f"{CHROMIUM_PATH} is missing (apt-get install chromium)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM_PATH, args=list(CHROMIUM_ARGS), headless=True
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    """A running chromium for the duration of a ``with`` block."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser) -> Page:
    """A page in its own context: a separate localStorage, so a separate chat session."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context.new_page()


def _log_files(logs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in logs:
        files += sorted(path.rglob("*.log")) if path.is_dir() else [path]
    return files


@contextmanager
def artifacts_on_failure(
    pages: Sequence[Page], out_dir: Path, logs: Sequence[Path]
) -> Iterator[None]:
    """On an exception in the block, save a screenshot and the HTML of each page in ``out_dir``,
    print their paths and the logs' (files, or folders searched for ``*.log``), and attach the
    tail of every log to the error: on CI the tmp dir is gone by the time anyone looks."""
    try:
        yield
    except Exception as error:
        out_dir.mkdir(parents=True, exist_ok=True)
        saved: list[str] = []
        for index, page in enumerate(pages):
            if page.is_closed():
                continue
            try:
                shot = out_dir / f"page-{index}.png"
                page.screenshot(path=shot, full_page=True)
                html = out_dir / f"page-{index}.html"
                html.write_text(page.content())
                saved += [str(shot), str(html)]
            except Exception as capture_error:  # the page may be why we failed
                saved.append(f"(page {index} could not be captured: {capture_error})")
        log_files = _log_files(logs)
        print("Debug artifacts:\n  " + "\n  ".join(saved + [str(path) for path in log_files]))
        for path in log_files:
            error.add_note(f"--- {path} (last lines) ---\n{log_tail(path, LOG_TAIL_LINES)}")
        raise
