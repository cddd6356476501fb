"""A real OpenID Connect provider on loopback for sign-in tests, and the Streamlit wire helpers.

The provider is ``oidc-provider-mock`` (a template dev dependency): a complete OIDC provider
(discovery document, signed ID tokens, PKCE, an end-session endpoint) whose sign-in form lets the
test pick a predefined person. Nothing about it is faked in the app: Streamlit's own st.login
talks to it exactly as it would talk to Cognito, Entra ID or Okta.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.servers import STARTUP_TIMEOUT_S, free_port, stop_process, wait_until_healthy

WIRE_SCRIPT = Path(__file__).with_name("streamlit_wire.py")


@dataclass
class OidcProvider:
    """``oidc-provider-mock`` on 127.0.0.1, with ``users`` (claims, each with a ``sub``)."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, users: Sequence[Mapping[str, Any]], *, log_dir: Path) -> OidcProvider:
        port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "oidc-provider.log"
        command = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        for claims in users:
            command += ["--user-claims", json.dumps(dict(claims))]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        provider = cls(port=port, log_path=log_path, process=process)
        try:
            wait_until_healthy(
                provider.metadata_url,
                process=process,
                log_path=log_path,
                timeout=STARTUP_TIMEOUT_S,
            )
        except BaseException:
            provider.stop()
            raise
        return provider

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def issuer(self) -> str:
        """The ``iss`` its ID tokens carry, from its discovery document."""
        with urllib.request.urlopen(self.metadata_url, timeout=10) as response:  # noqa: S310
            return str(json.load(response)["issuer"])

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class PageRun:
    """What one raw websocket page run received."""

    frames: int
    bytes: int
    finished: bool
    found: list[str]


def _wire(project: Path, *args: str) -> dict[str, Any]:
    python = project / ".venv" / "bin" / "python"
    result = subprocess.run(
        [str(python), str(WIRE_SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(f"{WIRE_SCRIPT.name} {args[0]} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def run_page(
    project: Path,
    base_url: str,
    needles: Sequence[str],
    *,
    cookies: Mapping[str, str] | None = None,
    xsrf_token: str = "",
) -> PageRun:
    """One script run over a raw websocket to ``base_url`` (http://127.0.0.1:port), as a browser
    on that origin would open it, with ``cookies`` (none by default)."""
    ws_url = base_url.replace("http://", "ws://", 1) + "/_stcore/stream"
    cookie_header = "; ".join(f"{name}={value}" for name, value in (cookies or {}).items())
    answer = _wire(project, "run-page", ws_url, base_url, cookie_header, xsrf_token, *needles)
    return PageRun(**answer)


def resign_cookie(project: Path, secret: str, name: str, value: str, age_seconds: int) -> str:
    """``value`` (a signed Streamlit cookie) signed again with ``secret`` ``age_seconds`` ago."""
    return str(_wire(project, "resign", secret, name, value, str(age_seconds))["value"])
