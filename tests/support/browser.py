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

CHROMIUM_PATH = "/usr/bin/chromium"
# No sandbox (CI runs as root in a container), no GPU, and nothing that phones home: the test
# must produce no traffic to any address but 127.0.0.1.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
# Wide enough that Streamlit shows the sidebar expanded (it collapses it on narrow screens).
VIEWPORT = {"width": 1280, "height": 900}


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
    return context.new_page()


@contextmanager
def artifacts_on_failure(
    pages: Sequence[Page], out_dir: Path, logs: Sequence[Path]
) -> Iterator[None]:
    """On any exception in the block, save a screenshot and the HTML of each page into
    ``out_dir``, and name them and the server logs in the error, then let it propagate."""
    try:
        yield
    except BaseException as error:
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
        saved += [str(path) for path in logs]
        note = "Debug artifacts:\n  " + "\n  ".join(saved)
        print(note)
        error.add_note(note)
        raise
