"""Real server processes for end-to-end tests: Streamlit servers of a baked project, and nginx.

Everything listens on 127.0.0.1 on a port the kernel picked, writes its logs into a folder the
test owns (so a failure can point at them), and is stopped by the test that started it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

# Generous upper bounds, not expectations: a first start on a busy 2-core CI machine can be slow.
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0

# Host settings that must not leak into the app under test: a developer's AWS profile or region
# would turn the offline echo run into a real Bedrock call, and their Streamlit settings would
# change what is being tested.
_SCRUBBED_ENV_PREFIXES = (
    "AWS_",
    "STREAMLIT_",
    "LLM_",
    "BEDROCK_",
    "SESSIONS_",
    "SYSTEM_PROMPT",
    "AUTH_MODE",
    "OIDC_",
    "ALLOWED_EMAIL_DOMAINS",
    "RUNTIME_DIR",
)
# How a server starts: Streamlit itself, or the container's entrypoint (serve.py), which writes
# the sign-in secrets file first and then becomes Streamlit with the same arguments.
STREAMLIT_RUN = ("-m", "streamlit", "run", "app.py")
SERVE_PY = ("serve.py",)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for error messages that explain themselves. Requests for the
    page's static assets are left out: in nginx's access log they bury everything else."""
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log at {path}: {error})"
    kept = [line for line in text.splitlines() if "GET /static/" not in line]
    return "\n".join(kept[-lines:])


def wait_until_healthy(
    url: str, *, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    """Poll ``url`` until it answers 200; fail early, with the log, if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"process {process.pid} exited with {process.returncode} before {url} answered; "
                f"log {log_path}:\n{log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local http)
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s; log {log_path}")
        time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes], first_signal: signal.Signals) -> None:
    """Send ``first_signal``; if the process has not exited after a while, SIGKILL it."""
    if process.poll() is not None:
        return
    process.send_signal(first_signal)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class StreamlitServer:
    """One ``streamlit run app.py`` process of a baked project whose ``.venv`` is synced.

    The interpreter of the project's virtual environment is started directly (not through
    ``uv run``), so ``pid`` is the server itself: the pid the app shows in its sidebar, and the
    process that SIGKILL takes down, as when a container dies.
    """

    project_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls,
        project_dir: Path,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        name: str,
        entrypoint: Sequence[str] = STREAMLIT_RUN,
    ) -> StreamlitServer:
        """Start the server with ``env`` on top of a scrubbed copy of this process's environment.

        Returns once ``/_stcore/health`` answers (the only health endpoint that reflects the
        server's state; ``/healthz`` serves the HTML page whatever happens).
        """
        port = free_port()
        python = project_dir / ".venv" / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"{python} is missing: run `uv sync --locked` in {project_dir}")
        full_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_SCRUBBED_ENV_PREFIXES)
        }
        full_env.update({"PYTHONUNBUFFERED": "1", **env})
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        command = [
            str(python),
            *entrypoint,
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.headless=true",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
        ]
        with log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=project_dir,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C aimed at pytest is not delivered to it
            )
        server = cls(project_dir=project_dir, port=port, log_path=log_path, process=process)
        try:
            wait_until_healthy(
                f"{server.url}/_stcore/health",
                process=process,
                log_path=log_path,
                timeout=STARTUP_TIMEOUT_S,
            )
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing; what a crashed task looks like."""
        if self.running:
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL if it does not exit."""
        stop_process(self.process, signal.SIGTERM)


_NGINX_CONF = """\
# Written by tests/support/servers.py: a reverse proxy in front of several Streamlit servers.
daemon off;
master_process on;
worker_processes 1;
{user_line}
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    log_format upstream '$remote_addr [$time_local] "$request" $status '
                        'upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {workdir}/access.log upstream;

    client_body_temp_path {workdir}/tmp/client_body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    # Stickiness, as the ALB's lb_cookie gives in AWS: a browser's first request picks a server
    # by the hash of a fresh random id, which the reply sets as a cookie; every later request of
    # that browser hashes the same id to the same server. Without it, plain round robin breaks the
    # app: a Streamlit component's iframe (/component/...) is served only by a server that has
    # already run the script, so a fresh replica answers it 404 and the page never gets past the
    # local-storage component. When the chosen server is down, nginx fails over to the other one
    # (proxy_next_upstream), as the ALB re-routes from an unhealthy target.
    map $cookie_e2e_lb $lb_key {{
        ''      $request_id;
        default $cookie_e2e_lb;
    }}
    map $cookie_e2e_lb $lb_set_cookie {{
        ''      "e2e_lb=$request_id; Path=/; HttpOnly; SameSite=Lax";
        default '';
    }}

    upstream streamlit {{
        hash $lb_key;
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};

        # Streamlit accepts the websocket only when the Origin's host equals the Host header, so
        # pass the Host header the browser sent, port included ($http_host, not $host).
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_http_version 1.1;
        proxy_buffering off;
        proxy_next_upstream error timeout;
        add_header Set-Cookie $lb_set_cookie always;

        # The app's websocket: upgrade headers, and no idle timeout on a quiet conversation.
        location /_stcore/stream {{
            proxy_pass http://streamlit;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}

        # Everything else: the page, static assets, /_stcore/* and /component/* (the
        # local-storage iframe; if it cannot load, the app never gets past its first run).
        location / {{
            proxy_pass http://streamlit;
        }}
    }}
}}
"""


@dataclass
class NginxProxy:
    """Debian's nginx as a foreground process with its own prefix, config, pid and logs, in
    front of several servers with cookie stickiness and failover (see the generated config).

    ``restart`` points it at new upstream servers while keeping its port, so a browser page open
    on the proxy's URL survives the replacement of every server behind it.
    """

    workdir: Path
    port: int
    upstream_ports: list[int] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls, upstream_ports: Sequence[int], *, workdir: Path, port: int | None = None
    ) -> NginxProxy:
        """``port``: one picked earlier with ``free_port``, when the servers behind the proxy
        must know its address before it starts (a sign-in redirect URI); else a fresh one."""
        if shutil.which("nginx") is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        (workdir / "tmp").mkdir(parents=True, exist_ok=True)
        proxy = cls(workdir=workdir, port=port or free_port())
        proxy._launch(upstream_ports)
        return proxy

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def log_paths(self) -> list[Path]:
        return [self.workdir / "error.log", self.workdir / "access.log"]

    def restart(self, upstream_ports: Sequence[int]) -> None:
        """Stop, rewrite the upstream list, start again on the same port."""
        self.stop()
        self._launch(upstream_ports)

    def stop(self) -> None:
        """SIGQUIT is nginx's graceful shutdown; open websockets are closed by it."""
        if self.process is not None:
            stop_process(self.process, signal.SIGQUIT)
            self.process = None

    def _launch(self, upstream_ports: Sequence[int]) -> None:
        if not upstream_ports:
            raise ValueError("nginx needs at least one upstream server")
        self.upstream_ports = list(upstream_ports)
        # As root, nginx would run its worker as "nobody", which cannot enter the test's private
        # temporary folder; keep the worker as the user running the tests.
        user_line = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        self.conf_path.write_text(
            _NGINX_CONF.format(
                workdir=self.workdir,
                port=self.port,
                user_line=user_line,
                servers="\n".join(f"        server 127.0.0.1:{p};" for p in upstream_ports),
            )
        )
        nginx = shutil.which("nginx") or "nginx"
        prefix = f"{self.workdir}/"
        # -e: the error log before the config is read (else nginx tries /var/log/nginx first).
        base = [nginx, "-p", prefix, "-c", str(self.conf_path), "-e", str(self.log_paths[0])]
        check = subprocess.run([*base, "-t"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.conf_path}:\n{check.stderr}")
        console_log = self.workdir / "console.log"
        with console_log.open("ab") as log:
            self.process = subprocess.Popen(
                base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_healthy(
            f"{self.url}/_stcore/health",
            process=self.process,
            log_path=self.log_paths[0],
            timeout=STARTUP_TIMEOUT_S,
        )


def streamlit_env(sessions_dir: Path, **extra: str) -> dict[str, str]:
    """The environment shared by every replica in a test: one store, one cookie secret."""
    return {
        "SESSIONS_DIR": str(sessions_dir),
        # Replicas behind one load balancer must share the cookie secret (ECS injects it from
        # Secrets Manager); a fixed test value is fine on 127.0.0.1.
        "STREAMLIT_SERVER_COOKIE_SECRET": "e2e-test-cookie-secret-shared-by-every-replica",
        **extra,
    }


class Processes:
    """Starts Streamlit servers and nginx proxies for one test and stops all of them on exit,
    whatever happened, so a failing test leaves no server behind. Logs go to ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._started: list[StreamlitServer | NginxProxy] = []
        self._names = 0

    def streamlit(
        self,
        project_dir: Path,
        env: Mapping[str, str],
        *,
        entrypoint: Sequence[str] = STREAMLIT_RUN,
    ) -> StreamlitServer:
        self._names += 1
        server = StreamlitServer.start(
            project_dir,
            env=env,
            log_dir=self.log_dir,
            name=f"streamlit-{self._names}",
            entrypoint=entrypoint,
        )
        self._started.append(server)
        return server

    def nginx(self, upstream_ports: Sequence[int], *, port: int | None = None) -> NginxProxy:
        self._names += 1
        proxy = NginxProxy.start(
            upstream_ports, workdir=self.log_dir / f"nginx-{self._names}", port=port
        )
        self._started.append(proxy)
        return proxy

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        errors: list[Exception] = []
        for process in reversed(self._started):
            try:
                process.stop()
            except Exception as error:  # stop the others anyway, then report
                errors.append(error)
        if errors:
            raise ExceptionGroup("could not stop every process", errors)
