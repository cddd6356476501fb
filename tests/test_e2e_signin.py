"""End to end in a real browser: with AUTH_MODE=oidc the chatbot is private, and each person's
conversations are theirs alone, on any browser.

A real OpenID Connect provider (oidc-provider-mock) runs on loopback with three people on file.
Two app servers start through serve.py (the container's entrypoint, which writes Streamlit's
[auth] secrets) with one SESSIONS_DIR behind nginx, as two ECS tasks behind the load balancer.
Debian's chromium, through Playwright, proves:

- a browser that has not signed in sees the sign-in page and nothing else: no chat input, no
  conversation titles, no model output;
- a raw websocket page run without a valid identity cookie receives nothing from the store (its
  frames are searched byte for byte), while the same run with Alice's cookie does (the control
  that shows the search would see a leak);
- Alice signs in and chats; in a second, fresh browser she sees the same conversation; Bob sees
  none of it; an address outside ALLOWED_EMAIL_DOMAINS is refused;
- a tampered identity cookie (one character changed) and an expired one (signed with the right
  secret, dated past Streamlit's limit) are refused, while the same cookie re-signed now is
  accepted;
- signing out (through the provider's end-session page) returns to the sign-in page and removes
  the identity cookie.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import TIMEOUT_MS, VIEWPORT, artifacts_on_failure, chromium
from tests.support.chat import CHAT_INPUT, SIDEBAR, chat_messages, send_message, wait_until_idle
from tests.support.oidc import OidcProvider, PageRun, resign_cookie, run_page
from tests.support.servers import SERVE_PY, Processes, free_port, streamlit_env

pytestmark = pytest.mark.slow

# The page texts the generated app promises (signin.py; CONTRACT for probes and the review).
SIGN_IN_PROMPT = "Sign in to continue."
SIGN_IN = "Sign in"
SIGN_OUT = "Sign out"
USER_COOKIE = "_streamlit_user"
XSRF_COOKIE = "_streamlit_xsrf"
# Streamlit accepts an identity cookie for 30 days plus a day of grace.
EXPIRED_AGE_S = 40 * 24 * 3600

PEOPLE = [
    {"sub": "alice", "email": "alice@example.com", "email_verified": True, "name": "Alice"},
    {"sub": "bob", "email": "bob@example.com", "email_verified": True, "name": "Bob"},
    {"sub": "mallory", "email": "mallory@elsewhere.test", "email_verified": True},
]
ALICE_TEXT = "Alice only: the tulip plan 7f3a"


def owner_id(issuer: str, subject: str) -> str:
    """The contract's store key of a person (core/identity.py), computed independently."""
    return hashlib.sha256(json.dumps([issuer, subject]).encode()).hexdigest()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path / "logs") as started:
        yield started


def new_context(browser: Browser) -> BrowserContext:
    """A fresh browser profile: no cookies, no local storage."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context


def expect_signed_out(page: Page) -> None:
    """The sign-in page and nothing else: no chat, no sidebar, nothing of anyone's."""
    expect(page.get_by_text(SIGN_IN_PROMPT, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=SIGN_IN, exact=True)).to_be_visible()
    wait_until_idle(page)
    assert page.locator(CHAT_INPUT).count() == 0
    assert page.locator(SIDEBAR).count() == 0
    assert ALICE_TEXT not in page.content()


def sign_in(page: Page, url: str, subject: str) -> None:
    """From the sign-in page through the provider's form (pick ``subject``) back to the chat."""
    page.goto(url)
    expect(page.get_by_text(SIGN_IN_PROMPT, exact=True)).to_be_visible()
    page.get_by_role("button", name=SIGN_IN, exact=True).click()
    page.get_by_role("button", name=subject, exact=True).click()  # the provider's page
    expect(page.locator(CHAT_INPUT)).to_be_editable()
    wait_until_idle(page)


def conversation_titles(page: Page) -> list[str]:
    """Labels of the sidebar's conversation buttons: Streamlit marks a widget with key K by the
    class ``st-key-K`` (the app keys them ``open-<conversation id>``)."""
    wait_until_idle(page)
    buttons = page.locator(f'{SIDEBAR} [class*="st-key-open-"] button').all()
    return [button.inner_text().strip() for button in buttons]


def cookie(context: BrowserContext, name: str) -> str:
    (value,) = [c["value"] for c in context.cookies() if c["name"] == name]
    return value


def with_cookie(browser: Browser, url: str, name: str, value: str) -> BrowserContext:
    context = new_context(browser)
    context.add_cookies([{"name": name, "value": value, "url": url}])
    return context


def tamper(value: str) -> str:
    """``value`` with one character in the middle replaced by another valid one."""
    middle = len(value) // 2
    replacement = "A" if value[middle] != "A" else "B"
    return value[:middle] + replacement + value[middle + 1 :]


def test_sign_in_keeps_the_app_private_and_each_persons_conversations_theirs(
    synced_default_project: Path,
    processes: Processes,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    project = synced_default_project
    sessions_dir = tmp_path / "sessions"
    shots = tmp_path / "screenshots"
    proxy_port = free_port()
    base_url = f"http://127.0.0.1:{proxy_port}"
    with OidcProvider.start(PEOPLE, log_dir=processes.log_dir) as provider:
        issuer = provider.issuer()
        env = streamlit_env(
            sessions_dir,
            LLM_PROVIDER="echo",
            AUTH_MODE="oidc",
            OIDC_SERVER_METADATA_URL=provider.metadata_url,
            OIDC_CLIENT_ID="e2e-chat",
            OIDC_CLIENT_SECRET='e2e "client" secret \\ with quotes',  # noqa: S106 (test value)
            OIDC_REDIRECT_URI=f"{base_url}/oauth2callback",
            ALLOWED_EMAIL_DOMAINS="example.com",
        )
        cookie_secret = env["STREAMLIT_SERVER_COOKIE_SECRET"]
        servers = []
        for name in ("a", "b"):
            runtime_dir = tmp_path / f"runtime-{name}"
            servers.append(
                processes.streamlit(
                    project, {**env, "RUNTIME_DIR": str(runtime_dir)}, entrypoint=SERVE_PY
                )
            )
            assert (runtime_dir / "secrets.toml").stat().st_mode & 0o777 == 0o600
        proxy = processes.nginx([s.port for s in servers], port=proxy_port)
        assert proxy.url == base_url

        with chromium() as browser:
            pages: list[Page] = []

            def open_page(context: BrowserContext) -> Page:
                page = context.new_page()
                pages.append(page)
                return page

            with artifacts_on_failure(pages, tmp_path / "artifacts", [processes.log_dir]):
                # Nobody signed in: the sign-in page only, before and after Alice has chatted.
                stranger = open_page(new_context(browser))
                stranger.goto(base_url)
                expect_signed_out(stranger)
                shots.mkdir()
                stranger.screenshot(path=shots / "signed-out.png")

                alice_context = new_context(browser)
                alice = open_page(alice_context)
                sign_in(alice, base_url, "alice")
                expect(alice.locator(SIDEBAR)).to_contain_text("Signed in as alice@example.com")
                reply = send_message(alice, ALICE_TEXT)
                assert reply.text.startswith("Echo from ") and ALICE_TEXT in reply.text
                assert conversation_titles(alice) == [ALICE_TEXT]
                sidebar = alice.locator(SIDEBAR).inner_text()
                assert "Session:" not in sidebar
                alice_id = owner_id(issuer, "alice")
                assert alice_id not in alice.content()
                alice.screenshot(path=shots / "signed-in.png")
                # Her folder is named by issuer + subject, nothing else was created.
                assert [p.name for p in sessions_dir.iterdir()] == [alice_id]

                stranger.reload()
                expect_signed_out(stranger)

                # The same person in another, fresh browser: the same conversation.
                alice_elsewhere = open_page(new_context(browser))
                sign_in(alice_elsewhere, base_url, "alice")
                assert conversation_titles(alice_elsewhere) == [ALICE_TEXT]
                texts = [m.text for m in chat_messages(alice_elsewhere)]
                assert texts[0] == ALICE_TEXT and ALICE_TEXT in texts[1]

                # Someone else: none of it.
                bob = open_page(new_context(browser))
                sign_in(bob, base_url, "bob")
                expect(bob.locator(SIDEBAR)).to_contain_text("Signed in as bob@example.com")
                assert conversation_titles(bob) == []
                assert chat_messages(bob) == []
                assert ALICE_TEXT not in bob.content()

                # An address outside ALLOWED_EMAIL_DOMAINS: refused, with the reason.
                mallory = open_page(new_context(browser))
                mallory.goto(base_url)
                mallory.get_by_role("button", name=SIGN_IN, exact=True).click()
                mallory.get_by_role("button", name="mallory", exact=True).click()
                expect(mallory.get_by_text("open only to e-mail addresses at")).to_be_visible()
                wait_until_idle(mallory)
                assert mallory.locator(CHAT_INPUT).count() == 0
                assert ALICE_TEXT not in mallory.content()

                # Below the browser: raw websocket page runs without a valid identity.
                identity = cookie(alice_context, USER_COOKIE)
                xsrf = cookie(alice_context, XSRF_COOKIE)
                expired = resign_cookie(
                    project, cookie_secret, USER_COOKIE, identity, EXPIRED_AGE_S
                )
                fresh = resign_cookie(project, cookie_secret, USER_COOKIE, identity, 0)
                needles = [ALICE_TEXT, "tulip", SIGN_IN_PROMPT]
                refused_runs: dict[str, PageRun] = {
                    "no cookie": run_page(project, base_url, needles),
                    "no cookie, a valid XSRF token": run_page(
                        project, base_url, needles, cookies={XSRF_COOKIE: xsrf}, xsrf_token=xsrf
                    ),
                    "tampered cookie": run_page(
                        project,
                        base_url,
                        needles,
                        cookies={USER_COOKIE: tamper(identity), XSRF_COOKIE: xsrf},
                        xsrf_token=xsrf,
                    ),
                    "expired cookie": run_page(
                        project,
                        base_url,
                        needles,
                        cookies={USER_COOKIE: expired, XSRF_COOKIE: xsrf},
                        xsrf_token=xsrf,
                    ),
                }
                for why, run in refused_runs.items():
                    assert run.finished, (why, run)
                    assert run.found == [SIGN_IN_PROMPT], (why, run)
                control = run_page(
                    project,
                    base_url,
                    needles,
                    cookies={USER_COOKIE: identity, XSRF_COOKIE: xsrf},
                    xsrf_token=xsrf,
                )
                assert control.finished and ALICE_TEXT in control.found, control
                assert SIGN_IN_PROMPT not in control.found, control

                # The same cookies in a browser: refused, while a fresh signature is accepted.
                tampered_page = open_page(
                    with_cookie(browser, base_url, USER_COOKIE, tamper(identity))
                )
                tampered_page.goto(base_url)
                expect_signed_out(tampered_page)
                expired_page = open_page(with_cookie(browser, base_url, USER_COOKIE, expired))
                expired_page.goto(base_url)
                expect_signed_out(expired_page)
                resigned = open_page(with_cookie(browser, base_url, USER_COOKIE, fresh))
                resigned.goto(base_url)
                expect(resigned.locator(SIDEBAR)).to_contain_text("Signed in as alice@example.com")

                # Signing out passes the provider's end-session page and ends on the sign-in page.
                alice.locator(SIDEBAR).get_by_role("button", name=SIGN_OUT, exact=True).click()
                alice.get_by_role("button", name="End session").click()
                expect_signed_out(alice)
                assert USER_COOKIE not in {c["name"] for c in alice_context.cookies()}
                alice.reload()
                expect_signed_out(alice)

    frames = sum(run.frames for run in refused_runs.values())
    leaks = sum(len(set(run.found) - {SIGN_IN_PROMPT}) for run in refused_runs.values())
    contexts = len({page.context for page in pages})
    report(
        f"\n[sign-in] isolation: {contexts} browsers, 2 people (+1 refused), {leaks} leaks in "
        f"{frames} frames of {len(refused_runs)} raw websocket runs without a valid identity; "
        f"control: Alice's cookie carried her text in {control.frames} frames"
    )
    report(f"[sign-in] screenshots: {shots / 'signed-out.png'} {shots / 'signed-in.png'}")
