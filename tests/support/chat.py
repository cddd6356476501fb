"""Driving the chat page like a person: type, wait for the reply, read what is on screen.

Selectors are Streamlit's own ``data-testid`` attributes. "Idle" is Streamlit's own signal: the
app root carries ``data-test-script-state`` (``notRunning`` once a script run has finished) and
``data-test-connection-state`` (``CONNECTED`` while the websocket is up).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from time import monotonic

from playwright.sync_api import Page, expect

from tests.support.browser import TIMEOUT_MS

APP_IDLE = (
    '[data-testid="stApp"][data-test-script-state="notRunning"]'
    '[data-test-connection-state="CONNECTED"]'
)
CHAT_INPUT = '[data-testid="stChatInputTextArea"]'
CHAT_MESSAGE = '[data-testid="stChatMessage"]'
CHAT_MESSAGE_CONTENT = '[data-testid="stChatMessageContent"]'
SIDEBAR = '[data-testid="stSidebar"]'
# Pause between two reads of the chat when checking that the page has settled.
SETTLE_MS = 250


# The sidebar lines the app renders to show which server answered and which session it is.
# Numbered groups only: Playwright hands these patterns to the browser's RegExp as well.
_SERVER_LINE = re.compile(r"Server:\s*(\S+)\s*·\s*pid\s*(\d+)")
_SESSION_LINE = re.compile(
    r"Session:\s*([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
)


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "user" or "assistant", from the message's accessible label
    text: str


@dataclass(frozen=True)
class ServerIdentity:
    """What the sidebar says about who rendered the page."""

    hostname: str
    pid: int
    session_key: str


def wait_until_idle(page: Page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until the websocket is connected and no script run is in progress."""
    page.locator(APP_IDLE).wait_for(state="attached", timeout=timeout_ms)


def open_chat(page: Page, url: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Load (or reload) the app and wait until it can take a message."""
    page.goto(url)
    expect(page.locator(CHAT_INPUT)).to_be_editable(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms)


def _messages_on_screen(page: Page) -> list[ChatMessage]:
    messages = []
    for content in page.locator(CHAT_MESSAGE_CONTENT).all():
        label = content.get_attribute("aria-label") or ""
        role = label.removeprefix("Chat message from ").strip()
        messages.append(ChatMessage(role=role, text=content.inner_text().strip()))
    return messages


def chat_messages(page: Page, timeout_ms: int = TIMEOUT_MS) -> list[ChatMessage]:
    """Every chat message on screen, top to bottom, once the page has settled.

    The script-state flag turns to ``notRunning`` a moment before the browser has finished
    applying the run's last changes (``st.write_stream`` swaps its streamed element for the final
    one), so a single read can catch a reply without its text. Two identical reads of an idle page,
    a quarter of a second apart, are what "on screen" means here.
    """
    deadline = monotonic() + timeout_ms / 1000
    previous: list[ChatMessage] | None = None
    while True:
        wait_until_idle(page, timeout_ms)
        current = _messages_on_screen(page)
        if current == previous:
            return current
        if monotonic() > deadline:
            raise AssertionError(f"the chat did not settle within {timeout_ms} ms: {current}")
        previous = current
        page.wait_for_timeout(SETTLE_MS)


def send_message(page: Page, text: str, timeout_ms: int = TIMEOUT_MS) -> ChatMessage:
    """Type ``text`` into the chat input, submit it, and return the finished assistant reply.

    Done means: the user message and a reply are on screen and the script run that streamed
    the reply has finished (the reply is complete, not a prefix of it).
    """
    wait_until_idle(page, timeout_ms)
    before = page.locator(CHAT_MESSAGE).count()
    box = page.locator(CHAT_INPUT)
    box.fill(text)
    box.press("Enter")
    expect(page.locator(CHAT_MESSAGE)).to_have_count(before + 2, timeout=timeout_ms)
    wait_until_idle(page, timeout_ms)
    messages = chat_messages(page, timeout_ms)
    if len(messages) < 2 or messages[-1].role != "assistant" or messages[-2].text != text:
        raise AssertionError(f"expected {text!r} then a reply at the end of the chat: {messages}")
    return messages[-1]


def server_identity(page: Page, timeout_ms: int = TIMEOUT_MS) -> ServerIdentity:
    """Read ``Server: <hostname> · pid <pid>`` and ``Session: <uuid>`` from the sidebar."""
    sidebar = page.locator(SIDEBAR)
    expect(sidebar).to_contain_text(_SESSION_LINE, timeout=timeout_ms)
    expect(sidebar).to_contain_text(_SERVER_LINE, timeout=timeout_ms)
    text = sidebar.inner_text()
    server, session = _SERVER_LINE.search(text), _SESSION_LINE.search(text)
    if server is None or session is None:
        raise AssertionError(f"sidebar lacks the server or session line:\n{text}")
    return ServerIdentity(hostname=server[1], pid=int(server[2]), session_key=session[1])


def local_storage(page: Page) -> dict[str, str]:
    """The page origin's localStorage (the storage component's iframe shares the origin)."""
    return page.evaluate("() => Object.fromEntries(Object.entries(window.localStorage))")
