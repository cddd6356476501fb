"""Every supported bake is green on day one: it installs from its lock, passes its linters and
its own test suite, exactly as a new team would run them.

Each variation is copied out of the shared bake first: installing creates .venv and caches, and
other template tests scan the baked tree file by file. uv's cache is shared by every copy (and
with the machine's other uv runs), so after the first install the others only link packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bakery import VARIATIONS, Baker

# Variables of the developer's shell that would leak into the generated project's commands: the
# template's own virtualenv, and the app's settings (its tests must not depend on the caller's).
LEAKY_VARIABLES = (
    "VIRTUAL_ENV",
    "UV_PROJECT_ENVIRONMENT",
    "SESSIONS_DIR",
    "LLM_PROVIDER",
    "BEDROCK_MODEL_IDS",
    "SYSTEM_PROMPT",
    "HISTORY_MAX_MESSAGES",
)


@dataclass(frozen=True)
class Project:
    variation: str
    path: Path
    env: dict[str, str]

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )


Installed = tuple[Project, subprocess.CompletedProcess[str]]


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"`{' '.join(result.args)}` exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
    )


@pytest.fixture(scope="module", params=sorted(VARIATIONS))
def installed(
    request: pytest.FixtureRequest, bake: Baker, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """A private copy of the baked variation with its locked dependencies installed."""
    variation: str = request.param
    baked = bake(**VARIATIONS[variation])
    path = tmp_path_factory.mktemp(f"green-{variation}") / baked.name
    shutil.copytree(baked, path)
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES}
    # Copy out of the cache: the cache and the project may sit on different file systems.
    env["UV_LINK_MODE"] = "copy"
    project = Project(variation, path, env)
    return project, project.run("uv", "sync", "--locked")


def test_installs_from_its_lock(installed: Installed) -> None:
    _, sync = installed
    assert sync.returncode == 0, explain(sync)


@pytest.mark.parametrize(
    "command",
    [
        ("uv", "run", "--locked", "ruff", "check", "."),
        ("uv", "run", "--locked", "ruff", "format", "--check", "."),
        ("uv", "run", "--locked", "pytest", "-q", "-p", "no:cacheprovider"),
    ],
    ids=["ruff-check", "ruff-format", "pytest"],
)
def test_is_green(installed: Installed, command: tuple[str, ...]) -> None:
    project, sync = installed
    assert sync.returncode == 0, explain(sync)
    result = project.run(*command)
    assert result.returncode == 0, explain(result)
