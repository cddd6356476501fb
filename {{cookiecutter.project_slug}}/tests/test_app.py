"""The page, driven by Streamlit's AppTest: no browser, no server, no AWS.

The browser's localStorage is a ``FakeBrowser`` (the real component waits for a browser that
AppTest does not have); conversations go to a temporary SESSIONS_DIR through the real store; the
model is the echo provider unless a test swaps in a failing one. A "reload" is a new AppTest with
the same browser and the same SESSIONS_DIR: exactly what survives a page reload in real life.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import app
import browser_session
from core import llm
from core.llm import AccessDeniedError, ThrottledError
from core.messages import Message, Usage
from core.sessions import INDEX_FILE, SessionStore
from tests.fakes import FakeBrowser, ScriptedProvider

APP = Path(__file__).resolve().parent.parent / "app.py"
MODEL_A = "us.amazon.nova-lite-v1:0"
MODEL_B = "us.amazon.nova-pro-v1:0"

Page = Callable[[], AppTest]


@pytest.fixture
def sessions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sessions"
    monkeypatch.setenv("SESSIONS_DIR", str(path))
    monkeypatch.setenv("LLM_PROVIDER", "echo")
    monkeypatch.setenv("BEDROCK_MODEL_IDS", f"{MODEL_A},{MODEL_B}")
    # Settings, store and provider are cached per process; each test brings its own environment.
    st.cache_resource.clear()
    yield path
    st.cache_resource.clear()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> FakeBrowser:
    fake = FakeBrowser()
    monkeypatch.setattr(browser_session, "make_key_store", lambda: fake)
    return fake


@pytest.fixture(autouse=True)
def keep_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest installs the script as sys.modules["__main__"] and leaves it there; restore it so
    later tests that spawn processes (multiprocessing re-imports __main__) are not affected."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


@pytest.fixture
def open_page(sessions_dir: Path, browser: FakeBrowser) -> Page:
    """Open (or reload) the page in the fake browser and check the run raised nothing."""

    def _open() -> AppTest:
        page = AppTest.from_file(str(APP), default_timeout=30)
        page.run()
        assert not page.exception, page.exception
        return page

    return _open


def send(page: AppTest, text: str) -> AppTest:
    page.chat_input[0].set_value(text).run()
    assert not page.exception, page.exception
    return page


def transcript(page: AppTest) -> list[tuple[str, str]]:
    """(role, text) of every chat message on the page."""
    return [
        (message.name, " ".join(block.value for block in message.markdown))
        for message in page.chat_message
    ]


def sidebar_texts(page: AppTest) -> list[str]:
    return [element.value for element in page.sidebar.text]


def conversation_titles(page: AppTest) -> list[str]:
    return [b.label for b in page.sidebar.button if (b.key or "").startswith("open-")]


def session_shown(page: AppTest) -> str:
    (line,) = [t for t in sidebar_texts(page) if t.startswith("Session: ")]
    return line.removeprefix("Session: ")


def test_first_visit_mints_a_session_key_and_shows_where_it_runs(
    open_page: Page, browser: FakeBrowser
) -> None:
    page = open_page()
    key = browser.stored
    assert isinstance(key, str)
    assert uuid.UUID(key).version == 4
    assert session_shown(page) == key
    assert any(re.fullmatch(r"Server: \S+ · pid \d+", t) for t in sidebar_texts(page))
    assert page.title[0].value
    assert "echo model" in page.info[0].value
    assert transcript(page) == []


def test_a_message_gets_a_streamed_reply_that_survives_a_reload(
    open_page: Page, browser: FakeBrowser
) -> None:
    page = send(open_page(), "Hello there")
    expected = [("user", "Hello there"), ("assistant", f"Echo from {MODEL_A}: Hello there")]
    assert transcript(page) == expected
    assert conversation_titles(page) == ["Hello there"]

    reloaded = open_page()
    assert transcript(reloaded) == expected
    assert session_shown(reloaded) == browser.stored
    assert conversation_titles(reloaded) == ["Hello there"]


@pytest.mark.parametrize(
    "stored",
    [
        "not-a-uuid",
        ["0f8fad5b-d9cb-469f-a165-70867728950e"],
        {"key": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        42,
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",  # a uuid1: valid uuid, wrong version
        "../../etc/passwd",
    ],
)
def test_anything_but_a_uuid4_starts_a_new_session(
    open_page: Page, browser: FakeBrowser, stored: object
) -> None:
    browser.stored = stored
    page = open_page()
    key = session_shown(page)
    assert uuid.UUID(key).version == 4
    assert browser.writes[-1] == key


def test_switching_model_changes_who_answers(open_page: Page) -> None:
    page = open_page()
    page.sidebar.selectbox(key="model_id").set_value(MODEL_B).run()
    send(page, "Which model?")
    assert transcript(page)[-1] == ("assistant", f"Echo from {MODEL_B}: Which model?")
    assert MODEL_B in [caption.value for caption in page.caption]


def test_new_conversation_then_switch_back(open_page: Page) -> None:
    page = send(open_page(), "First topic")
    page.sidebar.button[0].click().run()  # "New conversation"
    assert transcript(page) == []
    send(page, "Second topic")
    assert conversation_titles(page) == ["Second topic", "First topic"]

    first = next(b for b in page.sidebar.button if b.label == "First topic")
    first.click().run()
    assert transcript(page)[0] == ("user", "First topic")

    # A reload opens the conversation used last.
    assert transcript(open_page())[0] == ("user", "Second topic")


def test_a_long_conversation_shows_the_latest_messages_and_every_earlier_one_on_demand(
    open_page: Page, sessions_dir: Path
) -> None:
    key = session_shown(open_page())
    store = SessionStore(sessions_dir)
    conversation_id = store.create_conversation(key, "Long")
    stored = [Message("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(45)]
    store.append_messages(key, conversation_id, stored)
    everything = [(m.role, m.content) for m in stored]

    page = open_page()
    assert transcript(page) == everything[-app.MESSAGE_WINDOW :]
    earlier = page.button(key="show-earlier-messages")
    assert earlier.label == f"Show earlier messages ({45 - app.MESSAGE_WINDOW} more)"
    earlier.click().run()
    assert transcript(page) == everything[-2 * app.MESSAGE_WINDOW :]
    page.button(key="show-earlier-messages").click().run()
    assert transcript(page) == everything  # nothing is out of reach
    assert "show-earlier-messages" not in [b.key for b in page.button]

    send(page, "and one more")
    reply = f"Echo from {MODEL_A}: and one more"
    assert transcript(page)[-2:] == [("user", "and one more"), ("assistant", reply)]
    assert len(transcript(page)) == 47  # the window opened by the person stays open


def test_many_conversations_list_the_latest_and_the_rest_on_demand(
    open_page: Page, sessions_dir: Path
) -> None:
    key = session_shown(open_page())
    ticks = iter(range(1000))  # distinct, increasing times: the list's order is deterministic
    store = SessionStore(sessions_dir, clock=lambda: f"2030-01-01T00:{next(ticks):05.2f}")
    titles = [f"Topic {i}" for i in range(app.CONVERSATION_WINDOW + 5)]
    for title in titles:
        store.create_conversation(key, title)
    newest_first = titles[::-1]

    page = open_page()
    assert conversation_titles(page) == newest_first[: app.CONVERSATION_WINDOW]
    more = page.sidebar.button(key="show-more-conversations")
    assert more.label == "Show more conversations (5 more)"
    more.click().run()
    assert conversation_titles(page) == newest_first
    assert "show-more-conversations" not in [b.key for b in page.sidebar.button]


def test_delete_asks_first_and_keeps_the_data(open_page: Page, sessions_dir: Path) -> None:
    page = send(open_page(), "Remember the milk")
    (open_button,) = [b for b in page.sidebar.button if b.label == "Remember the milk"]
    conversation_id = (open_button.key or "").removeprefix("open-")

    page.sidebar.button(key=f"delete-{conversation_id}").click().run()
    assert "Delete “Remember the milk”?" in page.sidebar.warning[0].value
    page.sidebar.button(key=f"cancel-delete-{conversation_id}").click().run()
    assert conversation_titles(page) == ["Remember the milk"]

    page.sidebar.button(key=f"delete-{conversation_id}").click().run()
    page.sidebar.button(key=f"confirm-delete-{conversation_id}").click().run()
    assert not page.exception
    assert conversation_titles(page) == []
    assert transcript(page) == []
    assert "Deleted" in page.success[0].value
    assert conversation_titles(open_page()) == []
    # Soft delete: the words are still on disk, out of the user's sight.
    stored = [p for p in sessions_dir.rglob("*") if p.is_file()]
    assert any("Remember the milk" in p.read_text(errors="replace") for p in stored)


def test_an_error_mid_reply_keeps_the_partial_text_marked_incomplete(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = ScriptedProvider(["Half an "], ThrottledError("Amazon Bedrock is throttling."))
    monkeypatch.setattr(llm, "make_provider", lambda settings: failing)
    page = send(open_page(), "Tell me everything")
    assert transcript(page)[-1] == ("assistant", "Half an")
    assert "Incomplete reply" in page.warning[0].value
    assert "Amazon Bedrock is throttling." in page.warning[0].value

    reloaded = open_page()
    assert transcript(reloaded) == [("user", "Tell me everything"), ("assistant", "Half an")]
    assert "Incomplete reply" in reloaded.warning[0].value


def test_access_denied_explains_the_fix_on_the_page(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = ScriptedProvider([], AccessDeniedError("Enable it in the Amazon Bedrock console."))
    monkeypatch.setattr(llm, "make_provider", lambda settings: denied)
    page = send(open_page(), "Hi")
    assert "Enable it in the Amazon Bedrock console." in page.error[0].value
    assert transcript(page)[0] == ("user", "Hi")  # the question is kept


def test_a_corrupt_conversation_starts_a_fresh_one(open_page: Page, sessions_dir: Path) -> None:
    send(open_page(), "Soon unreadable")
    # Damage a record in the middle of the conversation file (JSON Lines, see core/sessions.py):
    # what a disk or a bad manual edit does. The last line would only count as a torn write.
    (damaged,) = [p for p in sessions_dir.glob("*/*.jsonl") if p.name != INDEX_FILE]
    lines = damaged.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = "this is not JSON\n"
    damaged.write_text("".join(lines), encoding="utf-8")

    page = open_page()
    assert "could not be read" in page.error[0].value
    assert transcript(page) == []
    send(page, "Fresh start")
    assert transcript(page)[0] == ("user", "Fresh start")
    # Nothing was deleted: the damaged file is still under SESSIONS_DIR, set aside.
    kept = [p for p in sessions_dir.rglob("*") if p.is_file() and p != damaged]
    assert any("this is not JSON" in p.read_text(errors="replace") for p in kept)


def test_a_configuration_error_is_explained(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HISTORY_MAX_MESSAGES", "many")
    page = AppTest.from_file(str(APP), default_timeout=30).run()  # open_page would fail: error
    assert "HISTORY_MAX_MESSAGES='many'" in page.error[0].value


def test_the_real_local_storage_wrapper_reads_and_writes_the_key(sessions_dir: Path) -> None:
    """Without the fake: the component's first-run browser read is replaced by seeding the values
    it would have returned (its documented state key), the rest is the real wrapper."""
    key = "0f8fad5b-d9cb-469f-a165-70867728950e"
    page = AppTest.from_file(str(APP), default_timeout=30)
    page.session_state["storage_init"] = {browser_session.STORAGE_ITEM: key, "undefined": None}
    page.run()
    assert not page.exception, page.exception
    assert session_shown(page) == key

    fresh = AppTest.from_file(str(APP), default_timeout=30)
    fresh.session_state["storage_init"] = {browser_session.STORAGE_ITEM: ["tampered"]}
    fresh.run()
    assert not fresh.exception, fresh.exception
    minted = session_shown(fresh)
    assert minted != key
    assert fresh.session_state["storage_init"][browser_session.STORAGE_ITEM] == minted


def captions(page: AppTest) -> list[str]:
    return [caption.value for caption in page.main.caption]


def test_each_reply_shows_its_tokens_and_cost_and_the_sidebar_adds_them_up(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    priced = ScriptedProvider(["Paris."], usage=Usage(1000, 1000, latency_ms=300))
    monkeypatch.setattr(llm, "make_provider", lambda settings: priced)
    page = send(open_page(), "Capital of France?")
    # Nova Lite's table price: 1,000 tokens in and out cost 0.00006 + 0.00024 USD.
    assert "1,000 tokens in · 1,000 out · ≈ 0.0003 USD" in captions(page)
    sidebar = [caption.value for caption in page.sidebar.caption]
    assert "This conversation: 2,000 tokens ≈ 0.0003 USD" in sidebar
    assert "Today (UTC): 2,000 tokens ≈ 0.0003 USD" in sidebar
    reloaded = open_page()
    assert "1,000 tokens in · 1,000 out · ≈ 0.0003 USD" in captions(reloaded)


def test_a_model_without_a_price_shows_tokens_without_cost(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEDROCK_MODEL_IDS", "eu.example.unpriced-v1:0")
    unpriced = ScriptedProvider(["Hi."], usage=Usage(10, 5))
    monkeypatch.setattr(llm, "make_provider", lambda settings: unpriced)
    page = send(open_page(), "Hello")
    assert "10 tokens in · 5 out" in captions(page)
    assert not any("USD" in text for text in captions(page))


def test_the_echo_model_shows_estimated_tokens(open_page: Page) -> None:
    page = send(open_page(), "Hello there")
    assert any(text.endswith("(estimated)") for text in captions(page))


def test_past_the_daily_allowance_the_turn_is_refused_and_the_text_kept(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAILY_TOKEN_LIMIT", "10")
    page = send(open_page(), "A first question that spends the allowance")
    page = send(page, "My second question")
    assert "resets at midnight UTC" in page.error[0].value
    assert transcript(page)[-2:] == [("user", "My second question"), ("assistant", "")]
    reloaded = open_page()
    assert ("user", "My second question") in transcript(reloaded)
    sidebar = [caption.value for caption in reloaded.sidebar.caption]
    assert any(text.startswith("Today (UTC): ") and " of 10 tokens" in text for text in sidebar)


def test_an_unreadable_usage_file_leaves_the_page_working(
    open_page: Page, browser: FakeBrowser, sessions_dir: Path
) -> None:
    key = str(uuid.uuid4())
    browser.stored = key
    (sessions_dir / key).mkdir(parents=True)
    (sessions_dir / key / "usage").write_text("a file where the usage folder belongs")
    page = send(open_page(), "Still there?")
    assert transcript(page)[-1][1].startswith("Echo from")
    sidebar = [caption.value for caption in page.sidebar.caption]
    assert "Today (UTC): usage unavailable" in sidebar


def download_labels(page: AppTest) -> list[str]:
    return [element.proto.label for element in page.sidebar.get("download_button")]


def test_export_buttons_offer_the_open_conversation_and_all_of_them(open_page: Page) -> None:
    page = open_page()
    assert download_labels(page) == ["Download all conversations"]  # nothing open yet
    page = send(page, "Hello there")
    assert download_labels(page) == ["Download this conversation", "Download all conversations"]


def test_delete_all_asks_first_then_moves_everything_to_trash(
    open_page: Page, sessions_dir: Path, browser: FakeBrowser
) -> None:
    page = send(open_page(), "first")
    page.sidebar.button[0].click().run()  # "New conversation"
    page = send(page, "second")
    page.sidebar.button(key="delete-all").click().run()
    (warning,) = page.sidebar.warning
    assert "Delete all 2 of your conversations?" in warning.value
    assert "trash" in warning.value and "erases them for good" in warning.value
    page.sidebar.button(key="cancel-delete-all").click().run()
    assert conversation_titles(page) and not page.sidebar.warning

    page.sidebar.button(key="delete-all").click().run()
    page.sidebar.button(key="confirm-delete-all").click().run()
    assert not page.exception, page.exception
    assert conversation_titles(page) == []
    assert "Deleted all your conversations (2)." in page.success[0].value
    assert len(list((sessions_dir / str(browser.stored) / "trash").iterdir())) == 2
    assert transcript(open_page()) == []
