"""The pre-generation hook rejects bad answers with one clear line each, and a refused bake
writes nothing.

Each answer case calls the hook's ``problems()`` directly: the hook is rendered with cookiecutter's
own context and Jinja environment, exactly as ``cookiecutter --no-input`` renders it before running
it, and the rendered module is imported. Three runs of the real command line prove what only it
can: a refusal exits with status 1 and the hook's lines and removes the half-made project (also
when the slug points outside the output folder), and a valid bake prints the next steps.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context

from tests.support.bakery import TEMPLATE_ROOT, Baker
from tests.support.cloudformation import load_template

PRE_GEN_HOOK = TEMPLATE_ROOT / "hooks" / "pre_gen_project.py"

# (answer overrides, the start of the one problem line each bad answer must produce)
BAD_ANSWERS: list[tuple[dict[str, str], str]] = [
    ({"project_slug": "Bad_Slug"}, "project_slug: 'Bad_Slug' must be 3-24 characters"),
    ({"project_slug": "ab"}, "project_slug: 'ab' must be 3-24 characters"),
    ({"project_slug": "a" * 25}, "project_slug: 'aaaaaaaaaaaaaaaaaaaaaaaaa' must be"),
    ({"project_slug": "1chat"}, "project_slug: '1chat' must be"),
    ({"project_slug": "chat-"}, "project_slug: 'chat-' must be"),
    ({"project_slug": "chat--bot"}, "project_slug: 'chat--bot' must be"),
    (
        {"project_slug": "../escape", "github_repository": "o/r"},
        "project_slug: '../escape' must be",
    ),
    (
        {"project_name": "   ", "project_slug": "blank", "github_repository": "o/r"},
        "project_name: must not be empty",
    ),
    (
        {"project_name": "two\nlines", "project_slug": "two-lines"},
        "project_name: must be a single line",
    ),
    ({"description": "x" * 201}, "description: 201 characters; keep it to 200 or fewer"),
    ({"author": ""}, "author: must not be empty"),
    (
        {"github_repository": "no-slash"},
        "github_repository: 'no-slash' must be 'owner/name'",
    ),
    ({"github_repository": "owner/"}, "github_repository: 'owner/' must be 'owner/name'"),
    ({"github_repository": "-owner/repo"}, "github_repository: '-owner/repo' must be"),
    ({"github_repository": "owner/repo/extra"}, "github_repository: 'owner/repo/extra'"),
    ({"github_repository": "owner/.."}, "github_repository: 'owner/..' must be"),
    ({"github_repository": "own er/repo"}, "github_repository: 'own er/repo' must be"),
    (
        {"aws_region": "US-EAST-1"},
        "aws_region: 'US-EAST-1' is not a supported AWS region code",
    ),
    ({"aws_region": "us-east"}, "aws_region: 'us-east' is not a supported AWS region code"),
    ({"aws_region": "useast1"}, "aws_region: 'useast1' is not a supported AWS region code"),
    (
        {"bedrock_model_id": "gpt-4o"},
        "bedrock_model_id: 'gpt-4o' is not a Bedrock inference",
    ),
    ({"bedrock_model_id": "us.amazon.nova lite"}, "bedrock_model_id: 'us.amazon.nova lite'"),
    ({"bedrock_model_id": "xx.amazon.nova-lite-v1:0"}, "bedrock_model_id: 'xx.amazon"),
    ({"bedrock_model_id": "amazon.nova-lite-v1:0"}, "bedrock_model_id: 'amazon.nova-lite"),
    ({"bedrock_model_id": "global.amazon.nova-2-lite-v1:0"}, "bedrock_model_id: 'global."),
    (
        {"bedrock_model_id": "eu.amazon.nova-lite-v1:0"},
        "bedrock_model_id: 'eu.amazon.nova-lite-v1:0' is a 'eu' inference profile, but "
        "us-east-1 calls 'us' profiles: use 'us.amazon.nova-lite-v1:0'",
    ),
    ({"aws_region": "us-gov-west-1"}, "aws_region: 'us-gov-west-1' is not a supported"),
    ({"aws_region": "sa-east-1"}, "aws_region: 'sa-east-1' is not a supported"),
]


def render_pre_gen_hook(answers: dict[str, str], folder: Path) -> ModuleType:
    """Render the pre-generation hook for these answers as cookiecutter 2.7 does, and import it.

    ``cookiecutter --no-input`` applies the answers to cookiecutter.json (``generate_context``),
    renders the derived defaults such as the slug and the model (``prompt_for_config``), then
    renders the hook with that context (``hooks.run_script_with_context``) and runs it.
    """
    context = generate_context(
        context_file=str(TEMPLATE_ROOT / "cookiecutter.json"), extra_context=answers
    )
    context["cookiecutter"].update(prompt_for_config(context, no_input=True))
    source = create_env_with_context(context).from_string(PRE_GEN_HOOK.read_text())
    path = folder / "pre_gen_project.py"
    path.write_text(source.render(**context))
    spec = importlib.util.spec_from_file_location("rendered_pre_gen_project", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problems(answers: dict[str, str], folder: Path) -> list[str]:
    """The hook's problem lines for these answers, read from the answers the rendering embedded."""
    hook = render_pre_gen_hook(answers, folder)
    found: list[str] = hook.problems(hook.ANSWERS)
    return found


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


def error_lines(stderr: str) -> list[str]:
    """The hook's own ERROR lines (cookiecutter adds one of its own that names the hook)."""
    return [
        line for line in stderr.splitlines() if line.startswith("ERROR: ") and "hook" not in line
    ]


# --------------------------------------------------------------------------------------------------
# problems(), one answer case at a time


@pytest.mark.parametrize(
    ("answers", "expected"),
    BAD_ANSWERS,
    ids=[e.split(":")[0] + f"-{i}" for i, (_, e) in enumerate(BAD_ANSWERS)],
)
def test_bad_answer_gets_its_own_line(
    tmp_path: Path, answers: dict[str, str], expected: str
) -> None:
    found = problems(answers, tmp_path)

    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_several_bad_answers_are_all_reported_in_prompt_order(tmp_path: Path) -> None:
    found = problems(
        {"project_slug": "X", "github_repository": "nope", "aws_region": "mars-1"}, tmp_path
    )

    assert [line.split(":")[0] for line in found] == [
        "project_slug",
        "github_repository",
        "aws_region",
    ]


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
def test_unusual_but_valid_answers_pass(tmp_path: Path, answers: dict[str, str]) -> None:
    assert problems(answers, tmp_path) == []


def test_an_old_cookiecutter_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cookiecutter before 2.7 reads ``--no-input key=false`` as a true string."""
    hook = render_pre_gen_hook({}, tmp_path)
    assert hook.cookiecutter_version_problem() is None  # the locked cookiecutter

    monkeypatch.setattr(hook, "version", lambda name: "2.6.0")
    assert hook.cookiecutter_version_problem() == (
        "cookiecutter 2.6.0 is too old: install cookiecutter>=2.7"
    )


# --------------------------------------------------------------------------------------------------
# The real command line


def test_cli_refuses_a_bad_answer_with_the_hooks_line_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cookiecutter(tmp_path, {"project_slug": "X"})

    assert result.returncode == 1, result.stdout
    (line,) = error_lines(result.stderr)
    assert line.startswith("ERROR: project_slug: 'X' must be 3-24 characters"), result.stderr
    assert "Nothing was generated" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_removes_a_refused_project_outside_the_output_folder(tmp_path: Path) -> None:
    """cookiecutter creates the project folder before the hook runs; a slug of "../escape" puts
    it beside the output folder, and the refusal must remove it there too."""
    output = tmp_path / "out"
    output.mkdir()
    result = run_cookiecutter(output, {"project_slug": "../escape", "github_repository": "o/r"})

    assert result.returncode == 1, result.stdout
    assert error_lines(result.stderr)[0].startswith("ERROR: project_slug: '../escape' must be")
    assert list(tmp_path.iterdir()) == [output]
    assert list(output.iterdir()) == []


def test_cli_bakes_unusual_answers_and_prints_the_next_steps(tmp_path: Path) -> None:
    result = run_cookiecutter(
        tmp_path, {"project_name": 'R&D "Lab" Bot\'s \\ helper', "aws_region": "eu-west-1"}
    )

    assert result.returncode == 0, result.stderr
    (project,) = tmp_path.iterdir()
    assert (project / "app.py").is_file()
    assert f"cd {project.name}\n" in result.stdout
    assert "uv run streamlit run app.py" in result.stdout
    assert f"{project.name}-bootstrap" in result.stdout
    assert "Ship it to AWS (eu-west-1)" in result.stdout


# --------------------------------------------------------------------------------------------------
# What the answers become in the bake


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
