"""The pre-generation hook rejects bad answers with one clear line each and writes nothing.

The hook runs through the real cookiecutter command line, as a user would run it, so the test
also proves that cookiecutter removes the half-made project when the hook fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bakery import TEMPLATE_ROOT, Baker
from tests.support.cloudformation import load_template

# (answer overrides, the start of the one error line each bad answer must produce)
BAD_ANSWERS: list[tuple[dict[str, str], str]] = [
    ({"project_slug": "Bad_Slug"}, "ERROR: project_slug: 'Bad_Slug' must be 3-24 characters"),
    ({"project_slug": "ab"}, "ERROR: project_slug: 'ab' must be 3-24 characters"),
    ({"project_slug": "a" * 25}, "ERROR: project_slug: 'aaaaaaaaaaaaaaaaaaaaaaaaa' must be"),
    ({"project_slug": "1chat"}, "ERROR: project_slug: '1chat' must be"),
    ({"project_slug": "chat-"}, "ERROR: project_slug: 'chat-' must be"),
    ({"project_slug": "chat--bot"}, "ERROR: project_slug: 'chat--bot' must be"),
    (
        {"project_slug": "../escape", "github_repository": "o/r"},
        "ERROR: project_slug: '../escape' must be",
    ),
    (
        {"project_name": "   ", "project_slug": "blank", "github_repository": "o/r"},
        "ERROR: project_name: must not be empty",
    ),
    (
        {"project_name": "two\nlines", "project_slug": "two-lines"},
        "ERROR: project_name: must be a single line",
    ),
    ({"description": "x" * 201}, "ERROR: description: 201 characters; keep it to 200 or fewer"),
    ({"author": ""}, "ERROR: author: must not be empty"),
    (
        {"github_repository": "no-slash"},
        "ERROR: github_repository: 'no-slash' must be 'owner/name'",
    ),
    ({"github_repository": "owner/"}, "ERROR: github_repository: 'owner/' must be 'owner/name'"),
    ({"github_repository": "-owner/repo"}, "ERROR: github_repository: '-owner/repo' must be"),
    ({"github_repository": "owner/repo/extra"}, "ERROR: github_repository: 'owner/repo/extra'"),
    ({"github_repository": "owner/.."}, "ERROR: github_repository: 'owner/..' must be"),
    ({"github_repository": "own er/repo"}, "ERROR: github_repository: 'own er/repo' must be"),
    (
        {"aws_region": "US-EAST-1"},
        "ERROR: aws_region: 'US-EAST-1' is not a supported AWS region code",
    ),
    ({"aws_region": "us-east"}, "ERROR: aws_region: 'us-east' is not a supported AWS region code"),
    ({"aws_region": "useast1"}, "ERROR: aws_region: 'useast1' is not a supported AWS region code"),
    (
        {"bedrock_model_id": "gpt-4o"},
        "ERROR: bedrock_model_id: 'gpt-4o' is not a Bedrock inference",
    ),
    ({"bedrock_model_id": "us.amazon.nova lite"}, "ERROR: bedrock_model_id: 'us.amazon.nova lite'"),
    ({"bedrock_model_id": "xx.amazon.nova-lite-v1:0"}, "ERROR: bedrock_model_id: 'xx.amazon"),
    ({"bedrock_model_id": "amazon.nova-lite-v1:0"}, "ERROR: bedrock_model_id: 'amazon.nova-lite"),
    ({"bedrock_model_id": "global.amazon.nova-2-lite-v1:0"}, "ERROR: bedrock_model_id: 'global."),
    (
        {"bedrock_model_id": "eu.amazon.nova-lite-v1:0"},
        "ERROR: bedrock_model_id: 'eu.amazon.nova-lite-v1:0' is a 'eu' inference profile, but "
        "us-east-1 calls 'us' profiles: use 'us.amazon.nova-lite-v1:0'",
    ),
    ({"aws_region": "us-gov-west-1"}, "ERROR: aws_region: 'us-gov-west-1' is not a supported"),
    ({"aws_region": "sa-east-1"}, "ERROR: aws_region: 'sa-east-1' is not a supported"),
]


def run_cookiecutter(output_dir: Path, answers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the cookiecutter CLI non-interactively with ``key=value`` answers."""
    args = [f"{key}={value}" for key, value in answers.items()]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(TEMPLATE_ROOT),
            "--no-input",
            "-o",
            str(output_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("answers", "expected"),
    BAD_ANSWERS,
    ids=[e.split(":")[1].strip() + f"-{i}" for i, (_, e) in enumerate(BAD_ANSWERS)],
)
def test_bad_answer_fails_with_its_message_and_writes_nothing(
    tmp_path: Path, answers: dict[str, str], expected: str
) -> None:
    result = run_cookiecutter(tmp_path, answers)

    assert result.returncode != 0, result.stdout
    error_lines = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("ERROR: ") and "hook" not in line
    ]
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith(expected), result.stderr
    assert "Nothing was generated" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_several_bad_answers_are_all_reported_in_prompt_order(tmp_path: Path) -> None:
    result = run_cookiecutter(
        tmp_path, {"project_slug": "X", "github_repository": "nope", "aws_region": "mars-1"}
    )

    fields = [
        line.split(":")[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("ERROR: ") and "hook" not in line
    ]
    assert fields == ["project_slug", "github_repository", "aws_region"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "answers",
    [
        {"project_name": "Assistant für Kundenservice"},
        {"project_name": 'R&D "Lab" Bot\'s \\ helper'},
        {"project_name": "x", "project_slug": "abc"},
        {"project_slug": "a" * 24},
        {"github_repository": "A/b"},
        {"github_repository": "my-org/repo.name_v2"},
        {"aws_region": "ap-northeast-1", "bedrock_model_id": "apac.amazon.nova-pro-v1:0"},
        {"bedrock_model_id": "us.anthropic.claude-haiku-4-5-20251001-v1:0"},
        {"aws_region": "eu-central-1", "bedrock_model_id": "eu.anthropic.claude-3-haiku-v1:0:200k"},
    ],
)
def test_unusual_but_valid_answers_bake(tmp_path: Path, answers: dict[str, str]) -> None:
    result = run_cookiecutter(tmp_path, answers)

    assert result.returncode == 0, result.stderr
    (project,) = tmp_path.iterdir()
    assert (project / "app.py").is_file()


@pytest.mark.parametrize(
    ("region", "prefix"),
    [
        ("us-east-1", "us."),
        ("us-west-2", "us."),
        ("eu-central-1", "eu."),
        ("ap-southeast-2", "apac."),
    ],
)
def test_default_model_follows_the_region_geography(bake: Baker, region: str, prefix: str) -> None:
    project = bake(aws_region=region)

    settings = json.loads((project / "core" / "project.json").read_text())
    assert settings["bedrock_model_id"] == f"{prefix}amazon.nova-lite-v1:0"
    parameters = json.loads((project / "infra" / "app-parameters.json").read_text())
    assert parameters["BedrockGeography"] == prefix.rstrip(".")
    assert parameters["BedrockModels"] == "amazon.nova-lite-v1:0"


def test_post_generation_hook_prints_next_steps(tmp_path: Path) -> None:
    result = run_cookiecutter(tmp_path, {"project_name": "Next Steps Bot"})

    assert result.returncode == 0, result.stderr
    assert "cd next-steps-bot" in result.stdout
    assert "uv run streamlit run app.py" in result.stdout
    assert "next-steps-bot-bootstrap" in result.stdout


# CreateLoadBalancer (Elastic Load Balancing API reference), Name: at most 32 characters, only
# alphanumerics and hyphens, no hyphen first or last, and it "must not begin with internal-".
LOAD_BALANCER_NAME = re.compile(r"^(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")


@pytest.mark.parametrize("slug", ["company-chat", "internal-chat", "internal", "a" * 24])
def test_load_balancer_name_is_one_aws_accepts(bake: Baker, slug: str) -> None:
    """Issue 9, item 3: a slug such as "internal-chat" (slugified from "Internal Chat") used to
    name the load balancer "internal-chat-app", which CreateLoadBalancer rejects. The internal
    load balancer is "lb-<app stack>" for every slug, and the execution role's load balancer ARNs
    name exactly that."""
    project = bake(project_slug=slug)
    app = load_template(project / "infra" / "app.yaml")
    bootstrap = load_template(project / "infra" / "bootstrap.yaml")
    stack = f"{slug}-app"
    name = app["Resources"]["LoadBalancer"]["Properties"]["Name"]["Fn::Sub"]
    name = name.replace("${AWS::StackName}", stack)
    assert name == f"lb-{stack}"
    assert LOAD_BALANCER_NAME.match(name), name
    (statement,) = [
        s
        for s in bootstrap["Resources"]["CloudFormationExecutionRole"]["Properties"]["Policies"][0][
            "PolicyDocument"
        ]["Statement"]
        if s.get("Sid") == "LoadBalancer"
    ]
    scoped = [r["Fn::Sub"] for r in statement["Resource"] if "/app/" in r["Fn::Sub"]]
    assert scoped and all(f"/app/{name}/*" in r for r in scoped), scoped
