"""A generated repository receives later template changes through cruft, and keeps its own.

As a user would: a git copy of this template is commit A; the project is baked from that
checkout with plain cookiecutter (so the post-generation hook writes .cruft.json), committed, and
changed by its owner; then the template gets commit B and the pinned cruft updates the project.
Everything is local (the template is cloned from a folder), so no network is needed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
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


def ci_conflict_check(project: Path) -> subprocess.CompletedProcess[str]:
    """ci.yml's step that keeps unresolved conflicts from being merged, run as GitHub would."""
    ci = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    [step] = [
        step
        for step in ci["jobs"]["lint"]["steps"]
        if step.get("name") == "No unresolved template-update conflicts"
    ]
    return run(
        "/bin/bash",
        "--noprofile",
        "--norc",
        "-eo",
        "pipefail",
        "-c",
        step["run"],
        cwd=project,
        check=False,
    )


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
    # cruft's own render from the recorded commit and answers is this bake, byte for byte: the
    # precondition for applying later template changes as clean diffs.
    diff = run(CRUFT, "diff", "--exit-code", cwd=project, check=False)
    assert (diff.returncode, diff.stdout) == (0, ""), diff.stdout + diff.stderr
    clean = ci_conflict_check(project)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_a_template_without_git_history_prints_how_to_link_instead(
    template: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A zip or a plain copy has no commit to record: no .cruft.json (a half-filled one would
    only make the weekly workflow fail later), and the hook prints the `cruft link` command with
    the answers, quoted for the shell."""
    copy = tmp_path / "copy"
    shutil.copytree(template, copy, ignore=shutil.ignore_patterns(".git"))

    project = Path(
        cookiecutter(
            str(copy), no_input=True, output_dir=str(tmp_path / "out"), extra_context=ANSWERS
        )
    )

    assert not (project / ".cruft.json").exists()
    [warning] = [line for line in capfd.readouterr().out.splitlines() if "WARNING" in line]
    assert f"the template at {copy} is not a git checkout" in warning
    command = shlex.split(warning.partition("run in the project: ")[2])
    workflow = yaml.safe_load((project / ".github/workflows/template-update.yml").read_text())
    version = workflow["env"]["CRUFT_VERSION"]
    assert command[:4] == ["uvx", f"cruft=={version}", "link", "--extra-context"]
    answers = json.loads(command[4])
    assert {key: answers[key] for key in ANSWERS} == ANSWERS
    assert not [key for key in answers if key.startswith("_")]


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
    if history == "shallow":
        # An owner who ignores *.rej: the pull request must carry them all the same.
        with (project / ".gitignore").open("a") as ignore:
            ignore.write("*.rej\n")
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

    # The workflow's pull request names the conflict for its reviewer.
    origin = tmp_path / "origin.git"
    run("git", "init", "-q", "--bare", "-b", "main", origin, cwd=tmp_path)
    run("git", "remote", "add", "origin", origin, cwd=project)
    run("git", "push", "-q", "origin", "main", cwd=project)
    result, calls = run_pr_step(project, project, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = {
        "full": "**Files with conflict markers:**\n- `README.md`\n",
        "shallow": "**Rejected changes (.rej files):**\n- `README.md.rej`\n",
    }
    assert listed[history] in calls[-1]["body"]
    pushed = run("git", "show", "--name-only", "--format=", "origin/template-update", cwd=project)
    changed = {"full": "README.md", "shallow": "README.md.rej"}
    assert pushed.stdout.splitlines() == sorted([".cruft.json", changed[history]])

    # Until someone resolves it, CI fails on the branch, naming what is left.
    blocked = ci_conflict_check(project)
    assert blocked.returncode == 1
    assert "::error::Unresolved conflicts from a template update" in blocked.stdout
    named = {"full": "README.md:1:<<<<<<< ours", "shallow": "README.md.rej"}
    assert named[history] in blocked.stdout.splitlines()


# --------------------------------------------------------------------------------------------------
# The workflow's pull-request step, run against a local "origin" and a stand-in for the gh CLI.

# Records each call; `gh pr list` answers FAKE_PR_NUMBER; a --body-file is copied into the log.
FAKE_GH = """
import json, os, sys
args = sys.argv[1:]
body = args[args.index("--body-file") + 1] if "--body-file" in args else None
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "body": open(body).read() if body else None}) + "\\n")
if args[:2] == ["pr", "list"]:
    print(os.environ.get("FAKE_PR_NUMBER", ""))
"""
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
OLD, NEW = "a" * 40, "b" * 40


def pr_step_script(project: Path) -> str:
    workflow = project / ".github" / "workflows" / "template-update.yml"
    [step] = [
        step
        for step in yaml.safe_load(workflow.read_text())["jobs"]["update"]["steps"]
        if step.get("name") == "Push the branch and open or update the pull request"
    ]
    return step["run"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository whose .cruft.json records OLD, cloned from a bare 'origin' as in a CI run."""
    origin = tmp_path / "origin.git"
    run("git", "init", "-q", "--bare", "-b", "main", origin, cwd=tmp_path)
    work = tmp_path / "work"
    run("git", "clone", "-q", origin, work, cwd=tmp_path)
    (work / ".cruft.json").write_text(
        json.dumps({"template": "https://example.com/t", "commit": OLD})
    )
    (work / "app.py").write_text("print('hello')\n")
    commit_all(work, "Generated")
    run("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
    return work


def fake_cruft_update(work: Path) -> None:
    """What `cruft update` leaves behind: .cruft.json at NEW and a change that did not apply."""
    run("git", "checkout", "-q", "--detach", "origin/main", cwd=work)
    run("git", "clean", "-fdq", cwd=work)
    (work / ".cruft.json").write_text(
        json.dumps({"template": "https://example.com/t", "commit": NEW})
    )
    (work / "app.py.rej").write_text("@@ -1 +1 @@\n-print('hello')\n+print('hello, B')\n")


def run_pr_step(
    project: Path, work: Path, tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "gh").write_text(f"#!{sys.executable}\n{FAKE_GH}")
    (fake_bin / "gh").chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(pr_step_script(project))
    log = tmp_path / "gh-calls.jsonl"
    log.unlink(missing_ok=True)
    result = subprocess.run(
        ["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=work,
        env={
            "PATH": f"{fake_bin}:/usr/bin:/bin",
            # No GIT_AUTHOR_*: the step must name its own author, as on a runner.
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "BRANCH": "template-update",
            "BOT_NAME": "github-actions[bot]",
            "BOT_EMAIL": BOT_EMAIL,
            "CRUFT_VERSION": "2.16.0",
            "BASE": "main",
            "GH_TOKEN": "not-a-real-token",
            "RUNNER_TEMP": str(tmp_path),
            "FAKE_GH_LOG": str(log),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def branch_head(work: Path) -> str:
    return run("git", "ls-remote", "origin", "refs/heads/template-update", cwd=work).stdout


def test_the_update_is_pushed_to_one_branch_and_offered_as_one_pull_request(
    default_project: Path, checkout: Path, tmp_path: Path
) -> None:
    fake_cruft_update(checkout)
    result, calls = run_pr_step(default_project, checkout, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    pushed = run("git", "show", "origin/template-update:.cruft.json", cwd=checkout).stdout
    assert json.loads(pushed)["commit"] == NEW
    assert run("git", "show", "origin/template-update:app.py.rej", cwd=checkout).returncode == 0
    author = run("git", "log", "-1", "--format=%ae", "origin/template-update", cwd=checkout)
    assert author.stdout.strip() == BOT_EMAIL
    assert [call["args"][:2] for call in calls] == [["pr", "list"], ["pr", "create"]]
    create = calls[1]["args"]
    title = f"Template update: {OLD[:12]} to {NEW[:12]}"
    assert create[create.index("--base") + 1] == "main"
    assert create[create.index("--head") + 1] == "template-update"
    assert create[create.index("--title") + 1] == title
    body = calls[1]["body"]
    assert "**Rejected changes (.rej files):**\n- `app.py.rej`\n" in body
    assert "**Files with conflict markers:**\nnone\n" in body
    assert "close and reopen this pull request" in body

    # The next week, the same update: the branch already holds it, so nothing is pushed again.
    before = branch_head(checkout)
    fake_cruft_update(checkout)
    result, calls = run_pr_step(default_project, checkout, tmp_path, FAKE_PR_NUMBER="7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "template-update already holds this update" in result.stdout
    assert (branch_head(checkout), calls) == (before, [])


def test_an_open_pull_request_is_edited_in_place(
    default_project: Path, checkout: Path, tmp_path: Path
) -> None:
    fake_cruft_update(checkout)
    run_pr_step(default_project, checkout, tmp_path)
    fake_cruft_update(checkout)
    (checkout / "NEW_IN_B.md").write_text("another template change\n")

    result, calls = run_pr_step(default_project, checkout, tmp_path, FAKE_PR_NUMBER="7")

    assert result.returncode == 0, result.stdout + result.stderr
    assert [call["args"][:3] for call in calls] == [["pr", "list", "--head"], ["pr", "edit", "7"]]
    assert run("git", "show", "origin/template-update:NEW_IN_B.md", cwd=checkout).returncode == 0


def test_commits_people_added_to_the_branch_are_never_overwritten(
    default_project: Path, checkout: Path, tmp_path: Path
) -> None:
    fake_cruft_update(checkout)
    run_pr_step(default_project, checkout, tmp_path)
    # Someone resolves the conflict on the branch.
    run("git", "checkout", "-q", "-B", "resolve", "origin/template-update", cwd=checkout)
    (checkout / "app.py.rej").unlink()
    commit_all(checkout, "Resolve the conflict")
    run("git", "push", "-q", "origin", "HEAD:refs/heads/template-update", cwd=checkout)
    resolved = branch_head(checkout)

    fake_cruft_update(checkout)
    (checkout / "NEW_IN_B.md").write_text("another template change\n")
    result, calls = run_pr_step(default_project, checkout, tmp_path, FAKE_PR_NUMBER="7")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "template-update has commits by people" in result.stdout
    assert (branch_head(checkout), calls) == (resolved, [])
