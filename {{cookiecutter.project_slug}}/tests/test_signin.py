"""Sign-in on the page (AUTH_MODE=oidc), driven by AppTest.

AppTest has no identity provider and no browser: ``AppTest.user`` plays the claims Streamlit
verified and keeps in its identity cookie (what ``st.user`` reads), ``{"is_logged_in": False}`` is
a visitor without a valid cookie, and a dict without ``is_logged_in`` is a server started without
its ``[auth]`` settings. The browser's localStorage and the store are rigged to fail the test if
a page that should not touch them does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext
from streamlit.testing.v1 import AppTest

import browser_session
from core import sessions
from core.config import MIN_COOKIE_SECRET_LENGTH
from core.identity import owner_id_for
from tests.fakes import FakeBrowser

APP = Path(__file__).resolve().parent.parent / "app.py"
ISSUER = "https://login.example.com/"
ALICE = {"is_logged_in": True, "iss": ISSUER, "sub": "alice-sub", "email": "alice@example.com"}
BOB = {"is_logged_in": True, "iss": ISSUER, "sub": "bob-sub", "email": "bob@example.com"}
SIGNED_OUT = {"is_logged_in": False}
LOGOUT_URL = "https://login.example.com/logout?client_id=chat-client"

Page = Callable[..., AppTest]


class Untouchable:
    """A key store that fails the test if the page so much as asks for it."""

    def read(self) -> object:
        raise AssertionError("the signed-out page read the browser's local storage")

    def write(self, value: str) -> None:
        raise AssertionError("the signed-out page wrote the browser's local storage")


@pytest.fixture
def oidc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    sessions_dir = tmp_path / "sessions"
    for name, value in {
        "SESSIONS_DIR": str(sessions_dir),
        "LLM_PROVIDER": "echo",
        "AUTH_MODE": "oidc",
        "OIDC_SERVER_METADATA_URL": "https://login.example.com/.well-known/openid-configuration",
        "OIDC_CLIENT_ID": "chat-client",
        "OIDC_CLIENT_SECRET": "client-secret-value",
        "OIDC_REDIRECT_URI": "https://chat.example.com/oauth2callback",
        "STREAMLIT_SERVER_COOKIE_SECRET": "k" * MIN_COOKIE_SECRET_LENGTH,
    }.items():
        monkeypatch.setenv(name, value)
    # AppTest leaves the script installed as __main__; keep the real one for later tests.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    st.cache_resource.clear()
    yield sessions_dir
    st.cache_resource.clear()


@pytest.fixture
def open_page(oidc_env: Path, monkeypatch: pytest.MonkeyPatch) -> Page:
    """Open the page as ``user`` (the claims st.user holds) and check the run raised nothing."""

    def _open(user: dict[str, Any], browser: object | None = None) -> AppTest:
        store = browser if browser is not None else FakeBrowser()
        monkeypatch.setattr(browser_session, "make_key_store", lambda: store)
        page = AppTest.from_file(str(APP), default_timeout=30)
        page.user = dict(user)
        page.run()
        assert not page.exception, page.exception
        return page

    return _open


@pytest.fixture
def no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open the conversation store fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the page opened the conversation store")

    monkeypatch.setattr(sessions.SessionStore, "__init__", refuse)


def page_text(page: AppTest) -> str:
    """Every text-bearing element's value and every button label, main area and sidebar."""
    parts = [
        e.value
        for kind in ("title", "markdown", "text", "caption", "error")
        for e in getattr(page, kind)
    ]
    parts += [
        e.value for kind in ("text", "markdown", "caption") for e in getattr(page.sidebar, kind)
    ]
    parts += [b.label for b in page.button]
    return "\n".join(str(p) for p in parts)


def send(page: AppTest, text: str) -> AppTest:
    page.chat_input[0].set_value(text).run()
    assert not page.exception, page.exception
    return page


def transcript(page: AppTest) -> list[str]:
    return [" ".join(b.value for b in m.markdown) for m in page.chat_message]


def titles(page: AppTest) -> list[str]:
    return [b.label for b in page.sidebar.button if (b.key or "").startswith("open-")]


# --- signed out ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_store")
def test_signed_out_sees_only_the_sign_in_page(open_page: Page, oidc_env: Path) -> None:
    page = open_page(SIGNED_OUT, browser=Untouchable())
    assert [t.value for t in page.title] and page.title[0].value
    assert [m.value for m in page.markdown] == ["Sign in to continue."]
    assert [b.label for b in page.button] == ["Sign in"]
    assert len(page.chat_input) == 0
    assert len(page.selectbox) == 0
    assert len(page.sidebar.children) == 0
    assert not oidc_env.exists()


@pytest.mark.usefixtures("no_store")
def test_a_server_without_its_auth_settings_shows_only_the_error(open_page: Page) -> None:
    page = open_page({"email": "test@example.com"}, browser=Untouchable())
    (error,) = page.error
    assert error.value.startswith("Sign-in is misconfigured")
    assert "serve.py" in error.value
    assert len(page.title) == len(page.button) == len(page.chat_input) == 0


@pytest.mark.usefixtures("no_store")
def test_bad_sign_in_settings_show_only_the_error_even_to_a_signed_in_person(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OIDC_REDIRECT_URI", "http://chat.example.com/oauth2callback")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "")
    page = open_page(ALICE, browser=Untouchable())
    (error,) = page.error
    assert error.value.startswith("Sign-in is misconfigured")
    assert "OIDC_REDIRECT_URI" in error.value and "OIDC_CLIENT_SECRET" in error.value
    assert "k" * MIN_COOKIE_SECRET_LENGTH not in error.value
    assert len(page.title) == len(page.button) == len(page.chat_input) == 0


@pytest.mark.usefixtures("no_store")
def test_a_refused_person_gets_the_reason_and_a_way_out_not_the_chat(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_EMAIL_DOMAINS", "example.org")
    page = open_page(ALICE, browser=Untouchable())
    (error,) = page.error
    assert "example.org" in error.value and "alice@example.com" in error.value
    assert [b.label for b in page.button] == ["Sign out"]
    assert len(page.chat_input) == 0 and len(page.sidebar.children) == 0


# --- signed in ----------------------------------------------------------------------------------


def test_a_signed_in_person_chats_in_their_own_folder_and_never_sees_a_key(
    open_page: Page, oidc_env: Path
) -> None:
    browser = FakeBrowser()
    page = send(open_page(ALICE, browser), "Alice's question")
    assert transcript(page)[0] == "Alice's question"
    owner_id = owner_id_for(ISSUER, "alice-sub")
    assert [p.name for p in oidc_env.iterdir()] == [owner_id]
    sidebar = [t.value for t in page.sidebar.text]
    assert "Signed in as alice@example.com" in sidebar
    assert not any(line.startswith("Session:") for line in sidebar)
    assert [b.label for b in page.sidebar.button if b.label == "Sign out"] == ["Sign out"]
    assert owner_id not in page_text(page)
    assert browser.writes == [] and browser.stored is None  # no anonymous key minted


def test_the_same_person_on_another_device_sees_the_same_conversation_and_others_none(
    open_page: Page,
) -> None:
    send(open_page(ALICE), "Only for Alice")
    elsewhere = open_page(ALICE)  # another browser: a fresh, empty localStorage
    assert titles(elsewhere) == ["Only for Alice"]
    assert transcript(elsewhere)[0] == "Only for Alice"

    bob = open_page(BOB)
    assert titles(bob) == [] and transcript(bob) == []
    assert "Only for Alice" not in page_text(bob)


def test_the_same_subject_at_another_issuer_is_someone_else(open_page: Page) -> None:
    send(open_page(ALICE), "Issuer-scoped")
    impostor = open_page({**ALICE, "iss": "https://other.example.com/"})
    assert titles(impostor) == []


def test_a_browser_key_cannot_reach_a_persons_folder(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(open_page(ALICE), "Private")
    owner_id = owner_id_for(ISSUER, "alice-sub")
    monkeypatch.setenv("AUTH_MODE", "none")  # the same store, served anonymously
    browser = FakeBrowser(owner_id)  # a localStorage value naming Alice's folder
    page = open_page({}, browser=browser)
    assert titles(page) == []
    assert browser.writes and browser.writes[-1] != owner_id


def test_sign_out_returns_to_the_sign_in_page(open_page: Page) -> None:
    page = send(open_page(ALICE), "Before signing out")
    (sign_out,) = [b for b in page.sidebar.button if b.label == "Sign out"]
    sign_out.click().run()
    assert not page.exception, page.exception
    assert [m.value for m in page.markdown] == ["Sign in to continue."]
    assert len(page.chat_input) == 0 and len(page.sidebar.children) == 0


def test_sign_out_with_a_logout_url_sends_the_tab_there(
    open_page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OIDC_LOGOUT_URL", LOGOUT_URL)
    redirects: list[str] = []
    enqueue = ScriptRunContext.enqueue

    def spy(self: ScriptRunContext, message: Any) -> None:
        if message.HasField("auth_redirect"):
            redirects.append(message.auth_redirect.url)
        enqueue(self, message)

    monkeypatch.setattr(ScriptRunContext, "enqueue", spy)
    page = open_page(ALICE)
    (sign_out,) = [b for b in page.sidebar.button if b.label == "Sign out"]
    sign_out.click().run()
    assert not page.exception, page.exception
    assert redirects == [LOGOUT_URL]
