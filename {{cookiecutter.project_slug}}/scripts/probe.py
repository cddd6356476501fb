"""Open the app the way a browser does and say what a visitor gets: the chat, sign-in, or an error.

    uv run python scripts/probe.py https://chat.example.com

Why not just GET /_stcore/health: the health check answers 200 while the page itself is dead when
the websocket to /_stcore/stream cannot be opened (a proxy that drops the Upgrade headers, a load
balancer or CDN without websocket support), and it cannot tell a signed-out visitor's sign-in page
from an open chat. This probe opens that websocket with the headers a browser sends (Streamlit
refuses it unless the Origin's host equals the Host), asks for one script run as the page does
on load (a BackMsg with ``rerun_script``), reads the ForwardMsgs until the run has finished and
classifies what was drawn:

- ``chat``: a chat input was rendered;
- ``signin``: a "Sign in" button and the text "Sign in to continue.", and no chat input;
- ``error``: anything else, with why (upgrade refused, no script run, an exception drawn).

Prints ``<result>: <detail>`` and exits 0 for ``chat`` and ``signin``, 1 for ``error``; callers
that need one of the two (the deploy smoke check, the live review) compare the word.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException
from websockets.sync.client import connect

STREAM_PATH = "/_stcore/stream"
SIGN_IN_TEXT = "Sign in to continue."
SIGN_IN_LABEL = "Sign in"
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProbeResult:
    """What a visitor gets: ``chat``, ``signin`` or ``error``, and a sentence saying why."""

    result: str
    detail: str

    def __str__(self) -> str:
        return f"{self.result}: {self.detail}"


def stream_url(page_url: str) -> tuple[str, str]:
    """The websocket URL of a page URL, and the Origin a browser on that page would send."""
    parts = urlsplit(page_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{page_url!r} is not an http(s) URL")
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + STREAM_PATH
    origin = f"{parts.scheme}://{parts.netloc}"
    return urlunsplit((scheme, parts.netloc, path, "", "")), origin


def rerun_request(page_url: str, component_ids: Iterable[str] = ()) -> bytes:
    """The BackMsg the frontend sends on load: run the script. Components already drawn get the
    value a fresh browser's would send back: ``{}`` (the localStorage component of
    browser_session.py waits for its answer, as it waits for a real browser's)."""
    message = BackMsg()
    message.rerun_script.query_string = urlsplit(page_url).query
    message.rerun_script.page_script_hash = ""
    for component_id in component_ids:
        state = message.rerun_script.widget_states.widgets.add()
        state.id = component_id
        state.json_value = "{}"
    return message.SerializeToString()


def classify(messages: Iterable[ForwardMsg]) -> ProbeResult:
    """Decide from the ForwardMsgs of one script run what the visitor sees."""
    chat_input = sign_in_button = sign_in_text = finished = False
    exceptions: list[str] = []
    for message in messages:
        if message.WhichOneof("type") == "new_session":  # a new run: only the last one counts
            chat_input = sign_in_button = sign_in_text = finished = False
            exceptions = []
        if message.WhichOneof("type") == "script_finished":
            finished = message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
        if message.WhichOneof("type") != "delta" or not message.delta.HasField("new_element"):
            continue
        element = message.delta.new_element
        kind = element.WhichOneof("type")
        if kind == "chat_input":
            chat_input = True
        elif kind == "button" and element.button.label == SIGN_IN_LABEL:
            sign_in_button = True
        elif kind == "markdown" and SIGN_IN_TEXT in element.markdown.body:
            sign_in_text = True
        elif kind == "exception":
            exceptions.append(f"{element.exception.type}: {element.exception.message}")
    if exceptions:
        return ProbeResult("error", f"the page shows an exception ({exceptions[0]})")
    if not finished:
        return ProbeResult("error", "the script run did not finish")
    if chat_input:
        return ProbeResult("chat", "the page shows the chat input")
    if sign_in_button and sign_in_text:
        return ProbeResult("signin", "the page asks the visitor to sign in")
    return ProbeResult("error", "the page shows neither the chat input nor the sign-in page")


def probe(page_url: str, timeout: float = DEFAULT_TIMEOUT_S) -> ProbeResult:
    """Open the page's websocket, run the script once, and classify what it drew."""
    try:
        url, origin = stream_url(page_url)
    except ValueError as error:
        return ProbeResult("error", str(error))
    messages: list[ForwardMsg] = []
    try:
        with connect(
            url,
            origin=origin,  # type: ignore[arg-type]
            subprotocols=["streamlit"],  # type: ignore[list-item]
            open_timeout=timeout,
            close_timeout=2,
            max_size=None,
        ) as websocket:
            websocket.send(rerun_request(page_url))
            answered: set[str] = set()
            while True:
                raw = websocket.recv(timeout=timeout)
                if isinstance(raw, str):
                    continue
                message = ForwardMsg()
                message.ParseFromString(raw)
                messages.append(message)
                kind = message.WhichOneof("type")
                element = message.delta.new_element
                component = element.component_instance.id
                if (
                    kind == "delta"
                    and element.HasField("component_instance")
                    and component not in answered
                ):
                    answered.add(component)
                    websocket.send(rerun_request(page_url, sorted(answered)))
                if kind == "script_finished" and (
                    message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
                ):
                    break
    except InvalidStatus as error:
        status = error.response.status_code
        return ProbeResult("error", f"websocket upgrade refused: HTTP {status} from {url}")
    except InvalidHandshake as error:
        return ProbeResult("error", f"websocket upgrade refused: {error}")
    except TimeoutError:
        ran = "no script run" if not messages else "the script run did not finish"
        return ProbeResult("error", f"{ran} within {timeout:.0f} s on {url}")
    except (OSError, WebSocketException) as error:
        return ProbeResult("error", f"{url} unreachable: {error}")
    return classify(messages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the page URL people open, e.g. the stack's AppUrl output")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args(argv)
    result = probe(args.url, args.timeout)
    print(result)
    return 0 if result.result in ("chat", "signin") else 1


if __name__ == "__main__":
    sys.exit(main())
