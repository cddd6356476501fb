"""Talk to a Streamlit server below the browser: a raw page run over the websocket, and identity
cookies signed the way Streamlit signs them.

This file runs as a script with the BAKED PROJECT's interpreter (``<project>/.venv/bin/python``),
because what it needs ships with the app's own dependencies and not with the template's: Streamlit's
protobuf messages (``streamlit.proto``), ``itsdangerous`` (which signs Streamlit's cookies) and the
``websockets`` client. It prints one JSON document on stdout. Imports only the standard library
and those packages; tests/support/oidc.py runs it and parses the answer.

    python streamlit_wire.py run-page WS_URL ORIGIN COOKIE_HEADER XSRF_TOKEN NEEDLE...
        Open WS_URL as a browser on ORIGIN would (cookies and XSRF token optional, "" for none),
        ask for one script run, read every frame until the run finishes, and report how many
        frames and bytes arrived, whether the run finished, and which NEEDLEs (UTF-8) occur in
        any frame's bytes.
    python streamlit_wire.py resign SECRET COOKIE_NAME SIGNED_VALUE AGE_SECONDS
        Verify SIGNED_VALUE with SECRET (any age), then sign its payload again as if it had been
        signed AGE_SECONDS ago. With the right secret and an age past Streamlit's limit, that is
        an expired identity cookie that nobody tampered with.
"""

from __future__ import annotations

import json
import sys
import time

# Upper bound for one page run to finish (a first run imports the app): a failure, not a timing.
RUN_TIMEOUT_S = 120.0


def run_page(ws_url: str, origin: str, cookie: str, xsrf: str, needles: list[str]) -> dict:
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    headers = {"Cookie": cookie} if cookie else {}
    # The browser passes its XSRF token as the second subprotocol entry.
    subprotocols = ["streamlit", xsrf] if xsrf else ["streamlit"]
    frames = 0
    total = 0
    found: set[str] = set()
    finished = False
    encoded = {needle: needle.encode("utf-8") for needle in needles}
    with connect(
        ws_url,
        origin=origin,
        additional_headers=headers,
        subprotocols=subprotocols,
        open_timeout=RUN_TIMEOUT_S,
        max_size=None,
    ) as socket:
        request = BackMsg()
        request.rerun_script.query_string = ""
        request.rerun_script.page_script_hash = ""
        socket.send(request.SerializeToString())
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not finished and time.monotonic() < deadline:
            data = socket.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(data, str):
                data = data.encode("utf-8")
            frames += 1
            total += len(data)
            found.update(needle for needle, raw in encoded.items() if raw in data)
            message = ForwardMsg()
            message.ParseFromString(data)
            finished = message.WhichOneof("type") == "script_finished"
    return {"frames": frames, "bytes": total, "finished": finished, "found": sorted(found)}


def resign(secret: str, cookie_name: str, signed_value: str, age_seconds: int) -> dict:
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    payload = URLSafeTimedSerializer(secret, salt=cookie_name).loads(signed_value)

    class BackdatedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    backdated = URLSafeTimedSerializer(secret, salt=cookie_name, signer=BackdatedSigner)
    return {"value": backdated.dumps(payload)}


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "run-page":
        ws_url, origin, cookie, xsrf, *needles = args
        result = run_page(ws_url, origin, cookie, xsrf, needles)
    elif command == "resign":
        secret, cookie_name, signed_value, age = args
        result = resign(secret, cookie_name, signed_value, int(age))
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
