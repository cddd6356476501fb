"""scripts/probe.py: what a visitor's page run is classified as, and how failures read.

The probe against real servers (the app directly, behind nginx, behind a proxy that refuses
websocket upgrades) is tested by the template's tests/test_probe.py. Here the classifier runs on
constructed ForwardMsgs, the messages a Streamlit server sends for one script run, including the
signed-out page of the sign-in contract (title, "Sign in to continue.", a "Sign in" button).
"""

from __future__ import annotations

import importlib
import socket
import sys
from pathlib import Path

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))
probe = importlib.import_module("probe")


def element(kind: str, **fields: str) -> ForwardMsg:
    message = ForwardMsg()
    target = getattr(message.delta.new_element, kind)
    for name, value in fields.items():
        setattr(target, name, value)
    if kind == "chat_input":
        target.placeholder = "Your message"
    return message


def finished(status: int = ForwardMsg.FINISHED_SUCCESSFULLY) -> ForwardMsg:
    message = ForwardMsg()
    message.script_finished = status  # type: ignore[assignment]
    return message


def new_session() -> ForwardMsg:
    message = ForwardMsg()
    message.new_session.name = "app"
    return message


SIGN_IN_PAGE = [
    new_session(),
    element("heading", body="Company Chat"),
    element("markdown", body="Sign in to continue."),
    element("button", label="Sign in"),
    finished(),
]


def test_sign_in_page_is_signin() -> None:
    assert probe.classify(SIGN_IN_PAGE).result == "signin"


def test_a_chat_input_is_chat_even_next_to_a_sign_in_button() -> None:
    page = [*SIGN_IN_PAGE[:-1], element("chat_input"), finished()]
    assert probe.classify(page).result == "chat"


def test_a_lone_sign_in_button_is_not_the_sign_in_page() -> None:
    page = [new_session(), element("button", label="Sign in"), finished()]
    result = probe.classify(page)
    assert result.result == "error" and "neither" in result.detail


def test_an_exception_on_the_page_is_an_error_naming_it() -> None:
    page = [new_session(), element("exception", type="KeyError", message="'x'"), finished()]
    result = probe.classify(page)
    assert result.result == "error" and "KeyError" in result.detail


def test_an_unfinished_run_is_an_error() -> None:
    result = probe.classify([new_session(), element("chat_input")])
    assert result.result == "error" and "did not finish" in result.detail


def test_only_the_run_that_finishes_counts() -> None:
    page = [
        new_session(),
        element("chat_input"),
        finished(ForwardMsg.FINISHED_EARLY_FOR_RERUN),
        *SIGN_IN_PAGE,
    ]
    assert probe.classify(page).result == "signin"


def test_stream_url_and_origin_follow_the_page_url() -> None:
    assert probe.stream_url("https://chat.example.com/") == (
        "wss://chat.example.com/_stcore/stream",
        "https://chat.example.com",
    )
    assert probe.stream_url("http://127.0.0.1:8501/app") == (
        "ws://127.0.0.1:8501/app/_stcore/stream",
        "http://127.0.0.1:8501",
    )


def test_unreachable_and_malformed_urls_are_errors() -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = probe.probe(f"http://127.0.0.1:{port}", timeout=5)
    assert result.result == "error" and "unreachable" in result.detail
    assert probe.probe("ftp://example.invalid/").result == "error"
    assert probe.main(["ftp://example.invalid/"]) == 1
