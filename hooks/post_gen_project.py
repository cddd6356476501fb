"""Print the next steps after a project is generated.

Offline, deterministic and idempotent: cruft re-runs this hook on every update, check and diff,
so it prints and does nothing else (no git init, no network, no files written).
"""

from __future__ import annotations

import json

ANSWERS: dict[str, str] = json.loads(
    r"""{{ {
        "project_slug": cookiecutter.project_slug,
        "bootstrap_stack": cookiecutter.__bootstrap_stack_name,
        "aws_region": cookiecutter.aws_region,
    } | tojson }}"""
)

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


def main() -> None:
    print(NEXT_STEPS.format(**ANSWERS))


if __name__ == "__main__":
    main()
