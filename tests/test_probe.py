"""The generated project's websocket probe (scripts/probe.py) tells a working page from a dead one.

Issue 9, item 9: the deploy smoke check and the live review used to GET /_stcore/health, which
answers 200 while the page's websocket cannot connect. The probe opens /_stcore/stream as a
browser does and runs the page once. Here it runs as users run it (`python scripts/probe.py
URL`, the bake's own interpreter) against real servers on 127.0.0.1: the baked app (anonymous,
so ``chat``), the same app behind the e2e nginx (``chat``), and behind that nginx configured
without the Upgrade headers, as a proxy that refuses websockets (``error``). The ``signin``
verdict is tested in the generated project (tests/test_probe.py) on constructed ForwardMsgs: the
sign-in page (helper auth-app) is not on this branch yet.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import servers
from tests.support.servers import Processes, streamlit_env


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path / "logs") as started:
        yield started


def run_probe(project_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(project_dir / ".venv/bin/python"), "scripts/probe.py", url, "--timeout", "60"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.slow
def test_probe_reaches_the_chat_directly_through_nginx_and_not_without_upgrades(
    synced_default_project: Path,
    processes: Processes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = synced_default_project
    server = processes.streamlit(project, streamlit_env(tmp_path / "sessions"))
    direct = run_probe(project, server.url)
    assert (direct.returncode, direct.stdout.split(":")[0]) == (0, "chat"), direct

    proxy = processes.nginx([server.port])
    proxied = run_probe(project, proxy.url)
    assert (proxied.returncode, proxied.stdout.split(":")[0]) == (0, "chat"), proxied

    # The same nginx without "proxy_set_header Upgrade/Connection": the page and
    # /_stcore/health still load (NginxProxy waits for the health check), the websocket cannot.
    upgrade_lines = (
        "            proxy_set_header Upgrade $http_upgrade;\n",
        "            proxy_set_header Connection $connection_upgrade;\n",
    )
    conf = servers._NGINX_CONF
    for line in upgrade_lines:
        assert line in conf
        conf = conf.replace(line, "")
    monkeypatch.setattr(servers, "_NGINX_CONF", conf)
    refusing = processes.nginx([server.port])
    refused = run_probe(project, refusing.url)
    assert refused.returncode == 1, refused
    assert refused.stdout.startswith("error: websocket upgrade refused"), refused.stdout
