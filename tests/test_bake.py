"""Every supported variation bakes into a clean tree: right files, no template leftovers, and every
file still parses in its own language whatever the answers contained."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.bakery import TEMPLATE_ROOT, VARIATIONS, Baker
from tests.support.cloudformation import load_template

TEMPLATE_DIR = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"

# Jinja that should have been rendered away. A bare "{{" is not listed: answers may contain braces
# (the tricky variation does) and GitHub's "${{ }}" must survive.
LEFTOVER_RE = re.compile(r"\{\{\s*cookiecutter|cookiecutter\.|\{%|%\}|\{#-?\s")

# The generated repository, file by file. A file added to or dropped from the template must be
# added here too: the list is what a user gets, and reviewing it is part of reviewing a change.
EXPECTED_FILES = {
    ".cruft.json",
    ".dockerignore",
    ".github/dependabot.yml",
    ".github/pull_request_template.md",
    ".github/workflows/ci.yml",
    ".github/workflows/deploy.yml",
    ".github/workflows/template-update.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    ".streamlit/config.toml",
    "Dockerfile",
    "PRODUCTION_CHECKLIST.md",
    "README.md",
    "app.py",
    "browser_session.py",
    "core/__init__.py",
    "core/budget.py",
    "core/chat.py",
    "core/config.py",
    "core/erase.py",
    "core/export.py",
    "core/files.py",
    "core/identity.py",
    "core/llm.py",
    "core/messages.py",
    "core/prices.json",
    "core/prices.py",
    "core/purge.py",
    "core/project.json",
    "core/sessions.py",
    "core/telemetry.py",
    "infra/app-parameters.json",
    "infra/app.yaml",
    "infra/bootstrap.yaml",
    "infra/checks/awslogs.yaml",
    "infra/checks/budget.yaml",
    "infra/checks/cognito.yaml",
    "infra/checks/cookie_secret.yaml",
    "infra/checks/desired_count.yaml",
    "infra/checks/ecr_lifecycle.yaml",
    "infra/checks/efs_access.yaml",
    "infra/checks/efs_backup.yaml",
    "infra/checks/efs_ia.yaml",
    "infra/checks/efs_tls.yaml",
    "infra/checks/email_subscription.yaml",
    "infra/checks/generated_secrets.yaml",
    "infra/checks/health_path.yaml",
    "infra/checks/internal_lb.yaml",
    "infra/checks/no_address_ingress.yaml",
    "infra/checks/no_cache.yaml",
    "infra/checks/purge_schedule.yaml",
    "infra/checks/rollback.yaml",
    "infra/checks/scaling.yaml",
    "infra/checks/sign_in.yaml",
    "infra/checks/sticky.yaml",
    "infra/checks/stopped_tasks.yaml",
    "infra/checks/target_tracking.yaml",
    "infra/checks/tls_viewers.yaml",
    "infra/checks/topic_publishers.yaml",
    "infra/checks/vpc_origin.yaml",
    "production_review/__init__.py",
    "production_review/checklist.py",
    "production_review/checkov.py",
    "production_review/live.py",
    "production_review/main.py",
    "production_review/preflight.py",
    "production_review/project.py",
    "production_review/static.py",
    "production_review/zizmor.py",
    "pyproject.toml",
    "scripts/bench_sessions.py",
    "scripts/probe.py",
    "scripts/review.py",
    "serve.py",
    "signin.py",
    "tests/__init__.py",
    "tests/budget_worker.py",
    "tests/conftest.py",
    "tests/emf.py",
    "tests/fakes.py",
    "tests/sessions_worker.py",
    "tests/test_app.py",
    "tests/test_architecture.py",
    "tests/test_budget.py",
    "tests/test_chat.py",
    "tests/test_config.py",
    "tests/test_erase.py",
    "tests/test_export.py",
    "tests/test_files.py",
    "tests/test_identity.py",
    "tests/test_llm.py",
    "tests/test_prices.py",
    "tests/test_preflight.py",
    "tests/test_probe.py",
    "tests/test_purge.py",
    "tests/test_review.py",
    "tests/test_sessions.py",
    "tests/test_serve.py",
    "tests/test_signin.py",
    "tests/test_telemetry.py",
    "uv.lock",
}


def baked_files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file())


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_the_baked_tree_has_exactly_the_expected_files(bake: Baker, variation: str) -> None:
    project = bake(**VARIATIONS[variation])

    assert {p.relative_to(project).as_posix() for p in baked_files(project)} == EXPECTED_FILES


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_no_template_syntax_is_left_over(bake: Baker, variation: str) -> None:
    project = bake(**VARIATIONS[variation])

    leftovers = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in baked_files(project)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if LEFTOVER_RE.search(line)
    ]
    assert leftovers == []


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_github_expressions_survive_rendering(bake: Baker, variation: str) -> None:
    """Each `${{ }}` in a template file is still there, unchanged in number, after baking."""
    project = bake(**VARIATIONS[variation])
    sources = [p for p in TEMPLATE_DIR.rglob("*") if p.is_file() and "${{" in p.read_text()]
    assert sources, "the template has GitHub expressions in its workflows"

    for source in sources:
        baked = project / source.relative_to(TEMPLATE_DIR)
        expected = source.read_text().count("${{")
        assert baked.read_text().count("${{") == expected, baked
        assert "${{ }}" not in baked.read_text(), f"an expression was emptied in {baked}"


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_every_file_parses_in_its_own_language(bake: Baker, variation: str) -> None:
    project = bake(**VARIATIONS[variation])

    for path in baked_files(project):
        text = path.read_text()
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
        elif path.suffix == ".toml" or path.name == "uv.lock":
            tomllib.loads(text)
        elif path.suffix in {".yml", ".yaml"} and path.parent.name == "infra":
            load_template(path)  # CloudFormation: short-form tags, read as cfn-lint reads them
        elif path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(text)
        elif path.suffix == ".json":
            json.loads(text)


def test_free_text_answers_arrive_verbatim(bake: Baker) -> None:
    """Quotes, backslashes, unicode and braces reach every file exactly as typed."""
    answers = VARIATIONS["tricky"]
    project = bake(**answers)
    # cookiecutter renders --no-input answers once, so "{{ 7 * 7 }}" in the name arrives as "49".
    name = answers["project_name"].replace("{{ 7 * 7 }}", "49")
    description = answers["description"].replace("{% raw %}", "").replace("{% endraw %}", "")

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == answers["project_slug"]
    assert pyproject["project"]["description"] == description
    readme = (project / "README.md").read_text()
    assert readme.startswith(f"# {name}\n")
    assert description in readme


def test_the_lock_matches_the_baked_project_name(bake: Baker) -> None:
    project = bake(**VARIATIONS["tricky"])

    lock = tomllib.loads((project / "uv.lock").read_text())
    names = {package["name"] for package in lock["package"]}
    assert VARIATIONS["tricky"]["project_slug"] in names
