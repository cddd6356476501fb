"""End to end in a real browser: the baked chatbot is stateful the way production needs it.

Two Streamlit server processes of the baked project share one SESSIONS_DIR behind a real nginx,
as two ECS tasks share EFS behind the ALB. Driven through Debian's chromium, a conversation
survives a reload, the death of the server that served it (SIGKILL, as a crashed task) and a
restart of every server, while the browser holds nothing but its session key. Then the Bedrock
path runs once against a local endpoint that streams real event-stream frames.

On failure, a screenshot and the page's HTML are saved under the test's tmp dir, and their paths
and the server and nginx log folders are printed and attached to the error.
"""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import TIMEOUT_MS, artifacts_on_failure, chromium, new_page
from tests.support.chat import (
    CHAT_MESSAGE,
    ChatMessage,
    chat_messages,
    local_storage,
    open_chat,
    send_message,
    server_identity,
)
from tests.support.fake_bedrock import FakeBedrock, estimate_tokens, request_tokens
from tests.support.servers import Processes, StreamlitServer, streamlit_env

pytestmark = pytest.mark.slow

FIRST = "Hello from the browser test: does this survive a crash? ✓"
SECOND = "A second question, after every server was replaced."


@pytest.fixture(scope="module")
def project(synced_default_project: Path) -> Path:
    """The default bake with its locked dependencies installed (tests/conftest.py)."""
    return synced_default_project


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path / "logs") as started:
        yield started


def reload_chat(page: Page) -> None:
    page.reload()
    open_chat(page, page.url)


def expect_conversation(page: Page, user_messages: list[str]) -> list[ChatMessage]:
    """Wait for the whole conversation to be on screen: each user message, then its reply."""
    expect(page.locator(CHAT_MESSAGE)).to_have_count(2 * len(user_messages), timeout=TIMEOUT_MS)
    messages = chat_messages(page)
    assert [m.role for m in messages] == ["user", "assistant"] * len(user_messages)
    assert [m.text for m in messages[0::2]] == user_messages
    for question, reply in zip(user_messages, messages[1::2], strict=True):
        assert reply.text.startswith("Echo from "), reply
        assert question in reply.text, reply
    return messages


def stored_messages(sessions_dir: Path, session_key: str) -> list[dict[str, object]]:
    """Every message of the session's one conversation, read straight from the JSON Lines file."""
    files = sorted((sessions_dir / session_key).glob("*.jsonl"))
    # index.jsonl is the sidebar's index of the session's conversations, not a conversation.
    (conversation,) = [path for path in files if path.name != "index.jsonl"]
    records = [json.loads(line) for line in conversation.read_text().splitlines()]
    return [m for r in records if r.get("type") == "messages" for m in r["messages"]]


def test_conversation_survives_reload_crash_and_restart(
    project: Path, processes: Processes, tmp_path: Path
) -> None:
    sessions_dir = tmp_path / "sessions"
    env = streamlit_env(sessions_dir, LLM_PROVIDER="echo")
    servers = [processes.streamlit(project, env), processes.streamlit(project, env)]
    proxy = processes.nginx([s.port for s in servers])

    with chromium() as browser:
        page = new_page(browser)
        with artifacts_on_failure([page], tmp_path / "artifacts", [processes.log_dir]):
            open_chat(page, proxy.url)
            reply = send_message(page, FIRST)
            assert reply.text.startswith("Echo from ") and FIRST in reply.text
            first = server_identity(page)

            # A reload is a new Streamlit session: only the key in localStorage links it back.
            reload_chat(page)
            expect_conversation(page, [FIRST])
            assert server_identity(page).session_key == first.session_key

            # The server that rendered the page dies without a chance to flush anything.
            served = server_identity(page)
            (victim,) = [s for s in servers if s.pid == served.pid]
            (survivor,) = [s for s in servers if s is not victim]
            victim.kill()
            reload_chat(page)
            expect_conversation(page, [FIRST])
            after_crash = server_identity(page)
            assert after_crash.pid != victim.pid
            assert after_crash.pid == survivor.pid
            assert after_crash.session_key == first.session_key

            # Every server replaced (a deploy, or the whole service restarted): only the shared
            # directory carries the conversation over.
            survivor.kill()
            fresh = [processes.streamlit(project, env), processes.streamlit(project, env)]
            proxy.restart([s.port for s in fresh])
            reload_chat(page)
            expect_conversation(page, [FIRST])
            after_restart = server_identity(page)
            assert after_restart.pid in {s.pid for s in fresh}
            assert after_restart.session_key == first.session_key

            send_message(page, SECOND)
            expect_conversation(page, [FIRST, SECOND])
            on_disk = stored_messages(sessions_dir, first.session_key)
            assert [(m["role"], m["content"]) for m in on_disk[0::2]] == [
                ("user", FIRST),
                ("user", SECOND),
            ]
            assert [m["role"] for m in on_disk[1::2]] == ["assistant", "assistant"]
            assert FIRST in str(on_disk[1]["content"]) and SECOND in str(on_disk[3]["content"])

            # The browser keeps the key and nothing else: no conversation text client-side.
            storage = local_storage(page)
            storage_key = f"{project.name}-session-key"
            assert storage_key in storage, storage
            stored = json.loads(storage[storage_key])
            # streamlit-local-storage wraps values as {"<item>": value}.
            key = stored.get(storage_key) if isinstance(stored, dict) else stored
            assert key == first.session_key
            assert uuid.UUID(key).version == 4 and str(uuid.UUID(key)) == key
            session_storage = page.evaluate("() => JSON.stringify(window.sessionStorage)")
            client_side = json.dumps(storage, ensure_ascii=False) + session_storage
            client_side += json.dumps(page.context.cookies(), ensure_ascii=False)
            for text in (FIRST, SECOND, "Echo from"):
                assert text not in client_side


def emf_checker(project: Path) -> Callable[[dict[str, Any]], list[str]]:
    """The baked project's own Embedded Metric Format checker (tests/emf.py)."""
    spec = importlib.util.spec_from_file_location("baked_emf", project / "tests" / "emf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.emf_problems


def test_bedrock_path_end_to_end(project: Path, processes: Processes, tmp_path: Path) -> None:
    """One question through the real stack: boto3 streams the fake's frames, the reply and its
    usage (from the metadata event) are stored and shown with an estimated cost, and the server
    writes one JSON turn line whose embedded metrics CloudWatch would accept."""
    question = "What is the capital of France?"
    chunks = ["Paris ", "is the ", "capital ", "of France, ", "says the fake Bedrock."]
    sessions_dir = tmp_path / "sessions"
    with FakeBedrock(reply_chunks=chunks) as fake:
        env = streamlit_env(
            sessions_dir,
            LLM_PROVIDER="bedrock",
            BEDROCK_MODEL_IDS="us.amazon.nova-pro-v1:0,us.amazon.nova-lite-v1:0",
            AWS_ENDPOINT_URL_BEDROCK_RUNTIME=fake.endpoint_url,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="AKIAFAKEFAKEFAKEFAKE",
            AWS_SECRET_ACCESS_KEY="fake-secret-access-key",  # noqa: S106 (a fake, by design)
            # Nothing but the fake may answer: no profile files, no instance metadata service.
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
        )
        server: StreamlitServer = processes.streamlit(project, env)

        with chromium() as browser:
            page = new_page(browser)
            with artifacts_on_failure([page], tmp_path / "artifacts", [processes.log_dir]):
                open_chat(page, server.url)
                reply = send_message(page, question)
                assert "".join(chunks) in reply.text
                session_key = server_identity(page).session_key

        (request,) = fake.recorded()
        assert request.model_id == "us.amazon.nova-pro-v1:0"
        first_turn = request.body["messages"][0]
        assert first_turn["role"] == "user"
        assert first_turn["content"] == [{"text": question}]

    # The usage the fake reported, as the page shows it, the store keeps it and the log counts it.
    tokens_in, tokens_out = request_tokens(request.body), estimate_tokens("".join(chunks))
    assert f"{tokens_in:,} tokens in · {tokens_out:,} out · ≈ " in reply.text
    stored = stored_messages(sessions_dir, session_key)[-1]
    usage = stored["usage"]
    assert isinstance(usage, dict)
    assert (usage["input_tokens"], usage["output_tokens"]) == (tokens_in, tokens_out)
    assert usage["source"] == "bedrock" and usage["latency_ms"] >= 1

    log = server.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    (turn,) = [line for line in lines if line.get("event") == "turn"]
    assert (turn["outcome"], turn["Model"]) == ("ok", "us.amazon.nova-pro-v1:0")
    assert (turn["InputTokens"], turn["OutputTokens"]) == (tokens_in, tokens_out)
    assert turn["BedrockLatencyMs"] == usage["latency_ms"]
    assert turn["TimeToFirstTokenMs"] <= turn["TotalMs"]
    assert emf_checker(project)(turn) == []
    for secret in (question, "Paris", session_key, "fake-secret-access-key"):
        assert secret not in log, f"the server log carries {secret!r}"


def test_export_and_delete_all_from_the_sidebar(
    project: Path, processes: Processes, tmp_path: Path
) -> None:
    """The sidebar's data buttons in a real browser: both downloads arrive with the conversation
    in them, and "Delete all my conversations" asks first, then moves everything to trash."""
    sessions_dir = tmp_path / "sessions"
    server = processes.streamlit(project, streamlit_env(sessions_dir, LLM_PROVIDER="echo"))
    sidebar_button = "[data-testid='stSidebar'] button"

    with chromium() as browser:
        page = new_page(browser)
        with artifacts_on_failure([page], tmp_path / "artifacts", [processes.log_dir]):
            open_chat(page, server.url)
            send_message(page, FIRST)
            session_key = server_identity(page).session_key

            with page.expect_download() as markdown_download:
                page.locator(sidebar_button, has_text="Download this conversation").click()
            markdown = Path(markdown_download.value.path()).read_text(encoding="utf-8")
            assert markdown_download.value.suggested_filename == "conversation.md"
            assert markdown.startswith("# ") and f"\n{FIRST}\n" in markdown
            assert "\n## Assistant (" in markdown

            with page.expect_download() as all_download:
                page.locator(sidebar_button, has_text="Download all conversations").click()
            lines = Path(all_download.value.path()).read_text(encoding="utf-8").splitlines()
            (record,) = [json.loads(line) for line in lines]
            assert record["messages"][0]["content"] == FIRST
            assert record["messages"][1]["model"]

            page.locator(sidebar_button, has_text="Delete all my conversations").click()
            expect(page.locator("[data-testid='stSidebar']")).to_contain_text(
                "Delete all 1 of your conversations?"
            )
            page.locator(sidebar_button, has_text="Delete all").filter(
                has_not_text="my conversations"
            ).click()
            expect(page.get_by_text("Deleted all your conversations (1).")).to_be_visible()
            expect(page.locator(CHAT_MESSAGE)).to_have_count(0)

    assert len(list((sessions_dir / session_key / "trash").iterdir())) == 1
    assert not list((sessions_dir / session_key).glob("*-*.jsonl"))
