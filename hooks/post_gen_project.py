"""Record where the project came from in .cruft.json, then print the next steps.

`cruft update` (run weekly by .github/workflows/template-update.yml) needs the template's URL, the
template commit the project was generated from and the answers; `cruft create` writes them to
.cruft.json, but plain `cookiecutter` does not. Cookiecutter 2.7 hands this hook the template as
typed (`_template`), the folder it rendered from (`_repo_dir`, a clone for a URL) and the
`--checkout` value, so the hook reads the commit and URL from that checkout with read-only `git`
and writes the same file cruft would.

When cruft itself renders the template (create, update, diff) its context carries `_commit` and
cruft writes .cruft.json on its own, so the hook writes nothing (the file never shows up in the
diffs cruft applies) and prints to stderr (`cruft diff` prints its patch on stdout).

Cookiecutter runs this with its own interpreter: standard library only, no network, nothing
random; the same answers and commit give the same file.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The whole context as ordered [key, value] pairs (Jinja's tojson would sort a mapping's keys).
# Answers are read as JSON data, never pasted into code.
CONTEXT: dict[str, Any] = dict(json.loads(r"""{{ cookiecutter.items() | list | tojson }}"""))

CRUFT_FILE = ".cruft.json"
CRUFT_VERSION = "2.16.0"  # the one .github/workflows/template-update.yml runs
# What cookiecutter adds to the context while it runs: local paths of this machine and the
# --checkout value. None of them is an answer, and cruft does not record them.
RUN_TIME_KEYS = ("_template", "_output_dir", "_repo_dir", "_checkout")

NEXT_STEPS = """
Created {project_slug}/

Run it on your laptop (offline echo model unless AWS credentials are configured):
  cd {project_slug}
  uv sync
  uv run streamlit run app.py

Run its checks:
  uv run ruff check . && uv run ruff format --check . && uv run pytest

Ship it to AWS ({aws_region}): create the bootstrap stack {bootstrap_stack} once, copy its
DeployRoleArn output into the GitHub repository variable AWS_DEPLOY_ROLE_ARN, replace the
placeholder AlarmEmail in infra/app-parameters.json with whoever is on call, then push to main.
README.md, section "Deploy to AWS", has the commands; PRODUCTION_CHECKLIST.md is the review to pass
before real users arrive.
"""


@dataclass(frozen=True)
class TemplateSource:
    """Where the template came from, in cruft's terms."""

    template: str  # what `git clone` needs: a URL, or an absolute path for a local checkout
    commit: str
    directory: str | None  # the template's folder inside that repository, if not its root


class NoSource(Exception):
    """The template's commit cannot be known; the message says what to do instead."""


def git(repo_dir: str, *args: str) -> str | None:
    """Run a read-only git command in `repo_dir`; its output, or None if it failed."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            ["git", "-C", repo_dir, *args],  # noqa: S607 - git from PATH, as cookiecutter does
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def template_source(context: dict[str, Any]) -> tuple[TemplateSource, list[str]]:
    """Find the template's URL, commit and folder; warnings for a source CI cannot reach."""
    typed, repo_dir = str(context["_template"]), str(context["_repo_dir"])
    if not os.path.isabs(repo_dir):
        raise NoSource(
            f"the template was given as the relative path {typed!r}, and a hook cannot tell "
            "relative to what; generate from an absolute path or the git URL"
        )
    commit = git(repo_dir, "rev-parse", "--verify", "HEAD")
    toplevel = git(repo_dir, "rev-parse", "--show-toplevel")
    prefix = git(repo_dir, "rev-parse", "--show-prefix")
    if not (commit and toplevel and prefix is not None):
        raise NoSource(
            f"the template at {repo_dir} is not a git checkout (a zip file or a copy?), so no "
            "template commit can be recorded"
        )
    warnings = []
    if git(repo_dir, "status", "--porcelain", "--untracked-files=no", "--", ".") not in ("", None):
        warnings.append(
            f"the template checkout has uncommitted changes; {CRUFT_FILE} records its last commit "
            f"{commit[:12]}, so the first `cruft update` will treat those changes as yours"
        )
    origin = git(repo_dir, "remote", "get-url", "origin")
    if os.path.isabs(os.path.expanduser(typed)):
        # A local checkout: recorded as a path, as `cruft create` would, and useless anywhere else.
        template = toplevel
        hint = f" (this checkout's origin is {origin})" if origin else ""
        warnings.append(
            f'{CRUFT_FILE} records the local path {template}: point its "template" at the '
            f"template's git URL{hint}, or the weekly workflow cannot clone it"
        )
    else:
        # A URL or abbreviation (gh:owner/name): cookiecutter cloned it, so origin is the URL.
        if not origin:
            raise NoSource(f"the template clone at {repo_dir} has no 'origin' remote")
        template = origin
    return TemplateSource(template, commit, prefix.rstrip("/") or None), warnings


def cruft_state(context: dict[str, Any], source: TemplateSource) -> dict[str, Any]:
    """The .cruft.json `cruft create` would write: same keys, same order, same private keys."""
    answers = {key: value for key, value in context.items() if key not in RUN_TIME_KEYS}
    return {
        "template": source.template,
        "commit": source.commit,
        "checkout": context.get("_checkout"),
        "context": {
            "cookiecutter": {**answers, "_template": source.template, "_commit": source.commit}
        },
        "directory": source.directory,
    }


def link_command(context: dict[str, Any]) -> str:
    """The `cruft link` command that records these answers once the template URL is known."""
    answers = {key: value for key, value in context.items() if not key.startswith("_")}
    extra = json.dumps(answers, ensure_ascii=False)
    return (
        f"uvx cruft=={CRUFT_VERSION} link --extra-context {shlex.quote(extra)} <template git URL>"
    )


def record_source(context: dict[str, Any], project_dir: Path) -> list[str]:
    """Write .cruft.json unless cruft is rendering or the file exists; the warnings to print."""
    if "_commit" in context:
        return []  # cruft is rendering: it writes (or keeps) .cruft.json itself.
    try:
        source, warnings = template_source(context)
    except NoSource as reason:
        return [
            f"{CRUFT_FILE} was not written: {reason}. Template updates need it; to record it, "
            f"run in the project: {link_command(context)}"
        ]
    text = json.dumps(cruft_state(context, source), ensure_ascii=False, indent=2) + "\n"
    path = project_dir / CRUFT_FILE
    if path.exists() and path.read_text(encoding="utf-8") != text:
        return [f"kept the existing {CRUFT_FILE}; this generation came from commit {source.commit}"]
    path.write_text(text, encoding="utf-8")
    return warnings


def main() -> None:
    # Under cruft the text goes to stderr: `cruft diff` prints a patch on stdout, and cruft
    # renders the template (running this hook) to compute it.
    out = sys.stderr if "_commit" in CONTEXT else sys.stdout
    for warning in record_source(CONTEXT, Path.cwd()):
        print(f"WARNING: {warning}", file=out)
    steps = NEXT_STEPS.format(
        project_slug=CONTEXT["project_slug"],
        bootstrap_stack=CONTEXT["__bootstrap_stack_name"],
        aws_region=CONTEXT["aws_region"],
    )
    print(steps, file=out)


if __name__ == "__main__":
    main()
