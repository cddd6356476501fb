"""Shared fixtures for the template's tests: baking the template into temporary folders.

Fixtures only: helpers and constants live in ``tests/support/``, which test modules import.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

from benchmarks.project import project_env
from tests.support.bakery import TEMPLATE_ROOT, Baker


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a figure a test measured into the run's own output, so CI logs show it (print alone
    is captured and shown only when the test fails)."""

    def emit(line: str) -> None:
        with capsys.disabled():
            print(line)

    return emit


@pytest.fixture(scope="session")
def bake(tmp_path_factory: pytest.TempPathFactory) -> Baker:
    """Return a function that bakes the template with extra answers and returns the project dir.

    Bakes are cached per set of answers for the whole test session: baking is cheap, but the
    checks that follow (uv sync, image builds) are not, and they never modify the baked tree.
    """
    cache: dict[str, Path] = {}

    def _bake(**answers: Any) -> Path:
        key = repr(sorted(answers.items()))
        if key not in cache:
            out = tmp_path_factory.mktemp("bake")
            cache[key] = Path(
                cookiecutter(
                    str(TEMPLATE_ROOT), no_input=True, output_dir=str(out), extra_context=answers
                )
            )
        return cache[key]

    return _bake


@pytest.fixture(scope="session")
def default_project(bake: Baker) -> Path:
    """The project baked with every default answer."""
    return bake()


@pytest.fixture(scope="session")
def synced_default_project(default_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the default bake with its locked dependencies installed (.venv).

    A copy, because installing creates .venv and other template tests scan the baked tree. One per
    test session: the browser tests share it and never modify it.
    """
    path = tmp_path_factory.mktemp("e2e") / default_project.name
    shutil.copytree(default_project, path)
    sync = subprocess.run(
        ["uv", "sync", "--locked"],
        cwd=path,
        env=project_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert sync.returncode == 0, f"uv sync --locked failed:\n{sync.stdout}\n{sync.stderr}"
    return path
