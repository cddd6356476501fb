"""The template README's two commands (generate a project; run every test) stay true."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from tests.support.bakery import TEMPLATE_ROOT

README = (TEMPLATE_ROOT / "README.md").read_text()
PUBLISHED_TEMPLATE = "gh:ORG/cookiecutter-stateful-streamlit"


def command_between(marker: str) -> str:
    """The single shell command in the fenced block between ``<!-- readme:marker -->`` markers."""
    block = r"```bash\n(?P<command>[^\n]+)\n```"
    match = re.search(rf"<!-- readme:{marker} -->\s*{block}\s*<!-- /readme:{marker} -->", README)
    assert match, f"README has no single-command block marked readme:{marker}"
    return match["command"]


def test_the_generate_command_generates_a_project(tmp_path: Path) -> None:
    command = command_between("generate")
    assert PUBLISHED_TEMPLATE in command
    # Same command, pointed at this checkout instead of GitHub, non-interactive, and offline: uv
    # serves cookiecutter from the cache that installing the test environment filled.
    argv = [
        str(TEMPLATE_ROOT) if arg == PUBLISHED_TEMPLATE else arg for arg in shlex.split(command)
    ]
    result = subprocess.run(
        [*argv, "--no-input", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "UV_OFFLINE": "1"},
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "company-chat" / "app.py").is_file()
    assert "uv run streamlit run app.py" in result.stdout


def test_the_test_command_is_what_ci_runs() -> None:
    assert command_between("test") == "bash .ci/run"
    ci_script = (TEMPLATE_ROOT / ".ci" / "run").read_text()
    last_command = [
        line for line in ci_script.splitlines() if line.strip() and not line.startswith("#")
    ][-1]
    assert last_command == "uv run pytest"
    assert "`uv run pytest`" in README


def test_generated_readme_describes_how_cloudformation_deletes_secrets(
    default_project: Path,
) -> None:
    """Issue 9, item 8. CloudFormation deletes an AWS::SecretsManager::Secret with
    ForceDeleteWithoutRecovery (the DeletionPolicy page; aws-cloudformation/cloudformation-
    coverage-roadmap#1999 asks for a recovery window because there is none), and Secrets
    Manager's DeleteSecret docs say that deletion completes asynchronously. The README used to
    send people to force-delete a secret the stack had already deleted for good."""
    readme = " ".join((default_project / "README.md").read_text().split())
    assert "without a recovery window (ForceDeleteWithoutRecovery)" in readme
    assert "keeps them for a recovery window" not in readme
    assert "delete-secret --force-delete-without-recovery" not in readme


def test_generated_readme_documents_the_preflight_and_the_upgrade(default_project: Path) -> None:
    """Issue 9, items 5 and 6: the preflight is a step of "From zero"; the upgrade note names the
    changed behaviours of existing deployments."""
    readme = (default_project / "README.md").read_text()
    from_zero = readme[readme.index("### From zero") : readme.index("### Upgrading")]
    assert "uv run python scripts/review.py --preflight" in from_zero
    upgrade = readme[readme.index("### Upgrading an existing deployment") :]
    upgrade = upgrade[: upgrade.index("\n### ")]
    topics = ("Template bucket", "Deploy role trust", "ECR repository", "Execution role")
    for topic in (*topics, "Smoke check"):
        assert f"**{topic}" in upgrade, topic
