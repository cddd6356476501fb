"""A generated repository receives later template changes through cruft, and keeps its own.

As a user would: a git copy of this template is commit A; the project is baked from that
checkout with plain cookiecutter (so the post-generation hook writes .cruft.json), committed, and
changed by its owner; then the template gets commit B and the pinned cruft updates the project.
Everything is local (the template is cloned from a folder), so no network is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
CRUFT = Path(sys.executable).parent / "cruft"
# A name other than the default, to prove the update renders B with the recorded answers.
ANSWERS = {"project_name": "Update Test Bot", "project_slug": "update-test-bot"}
OWNER_LINE = "# The owner's change: kept through every template update."
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,  # the developer's own git settings play no part
    "GIT_CONFIG_NOSYSTEM": "1",
}


def run(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def commit_all(repo: Path, message: str) -> str:
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-q", "-m", message, cwd=repo)
    return run("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()


def edit_first_line(path: Path, new_first_line: str) -> None:
    _, rest = path.read_text().split("\n", 1)
    path.write_text(f"{new_first_line}\n{rest}")


def cruft_check(project: Path) -> bool:
    """`cruft check`: True when up to date, False when behind; anything else fails the test."""
    result = run(CRUFT, "check", cwd=project, check=False)
    output = result.stdout + result.stderr
    if result.returncode == 0:
        assert "SUCCESS" in output, output
        return True
    assert result.returncode == 1 and "FAILURE" in output, output
    return False


def cruft_update(project: Path) -> str:
    """`cruft update` as the scheduled workflow runs it: no prompts."""
    result = run(CRUFT, "update", "--skip-apply-ask", "--allow-untracked-files", cwd=project)
    return result.stdout + result.stderr


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A git repository holding the template as it is in this checkout: commit A."""
    repo = tmp_path / "template"
    listed = run(
        "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=TEMPLATE_ROOT
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = TEMPLATE_ROOT / name
        if source.is_file():  # a tracked file deleted in this checkout is not part of it
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    run("git", "init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "A")
    return repo


def bake_and_commit(template: Path, output_dir: Path) -> Path:
    """Bake from the template checkout with plain cookiecutter, then commit it as its owner."""
    baked = cookiecutter(
        str(template), no_input=True, output_dir=str(output_dir), extra_context=ANSWERS
    )
    project = Path(baked)
    run("git", "init", "-q", "-b", "main", cwd=project)
    commit_all(project, "Generated from the template")
    return project


def test_the_hook_records_the_template_commit_and_answers(template: Path, tmp_path: Path) -> None:
    project = bake_and_commit(template, tmp_path / "out")
    commit_a = run("git", "rev-parse", "HEAD", cwd=template).stdout.strip()

    state = json.loads((project / ".cruft.json").read_text())
    answers = state["context"]["cookiecutter"]
    assert (state["template"], state["commit"], state["checkout"], state["directory"]) == (
        str(template),
        commit_a,
        None,
        None,
    )
    assert answers["project_name"] == ANSWERS["project_name"]
    assert (answers["_template"], answers["_commit"]) == (str(template), commit_a)
    # Nothing of the machine that baked it: those paths mean nothing anywhere else.
    assert not {"_output_dir", "_repo_dir", "_checkout"} & set(answers)
    assert cruft_check(project)


def test_a_template_change_arrives_and_the_owners_change_survives(
    template: Path, tmp_path: Path
) -> None:
    project = bake_and_commit(template, tmp_path / "out")
    with (project / "app.py").open("a") as app:
        app.write(f"\n{OWNER_LINE}\n")
    commit_all(project, "The owner's change")

    # Template commit B: a line in a file the owner did not touch, and a new rendered file.
    with (template / TEMPLATE_DIR / ".gitignore").open("a") as ignore:
        ignore.write("# Added by template commit B\n*.template-b\n")
    (template / TEMPLATE_DIR / "TEMPLATE_B.md").write_text("# {{ cookiecutter.project_name }}\n")
    # uv.lock is skipped ([tool.cruft] in pyproject.toml): the workflow re-locks instead.
    with (template / TEMPLATE_DIR / "uv.lock").open("a") as lock:
        lock.write("# Added by template commit B\n")
    lock_before = (project / "uv.lock").read_text()
    commit_b = commit_all(template, "B")
    assert not cruft_check(project)

    output = cruft_update(project)

    assert "Good work!" in output, output
    assert (project / ".gitignore").read_text().endswith("*.template-b\n")
    assert (project / "TEMPLATE_B.md").read_text() == "# Update Test Bot\n"
    assert (project / "app.py").read_text().endswith(f"\n{OWNER_LINE}\n")
    assert (project / "uv.lock").read_text() == lock_before
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == state["context"]["cookiecutter"]["_commit"] == commit_b
    assert state["context"]["cookiecutter"]["project_name"] == ANSWERS["project_name"]
    assert not list(project.rglob("*.rej"))
    assert cruft_check(project)


def forget_history(project: Path) -> None:
    """Keep the files but not the generated versions of them, as in a shallow CI checkout."""
    shutil.rmtree(project / ".git")
    run("git", "init", "-q", "-b", "main", cwd=project)
    commit_all(project, "The owner's project, history not available")


@pytest.mark.parametrize("history", ["full", "shallow"])
def test_a_conflicting_template_change_is_left_for_review(
    template: Path, tmp_path: Path, history: str
) -> None:
    """Template and owner change the same line: the owner's text stays and the template's change
    is set beside it for a person to resolve, never applied over it. With the generated file in
    the repository's history git merges three ways and writes conflict markers; without it
    (a shallow checkout) cruft falls back to a `.rej` file next to the untouched file."""
    project = bake_and_commit(template, tmp_path / "out")
    readme = project / "README.md"
    edit_first_line(readme, "# Update Test Bot, as its owners call it")
    commit_all(project, "The owner's change")
    if history == "shallow":
        forget_history(project)

    edit_first_line(template / TEMPLATE_DIR / "README.md", "# {{ cookiecutter.project_name }} (B)")
    commit_b = commit_all(template, "B")

    output = cruft_update(project)

    text = readme.read_text()
    rejects = sorted(path.relative_to(project).as_posix() for path in project.rglob("*.rej"))
    if history == "full":
        assert rejects == []
        assert text.startswith(
            "<<<<<<< ours\n"
            "# Update Test Bot, as its owners call it\n"
            "=======\n"
            "# Update Test Bot (B)\n"
            ">>>>>>> theirs\n"
        ), text[:300]
    else:
        assert rejects == ["README.md.rej"], output
        assert text.startswith("# Update Test Bot, as its owners call it\n")
        reject = (project / "README.md.rej").read_text()
        assert "-# Update Test Bot\n+# Update Test Bot (B)\n" in reject
    assert json.loads((project / ".cruft.json").read_text())["commit"] == commit_b
