"""Preflight: what would stop the first deploy, asked of AWS with the user's own credentials.

    uv run python scripts/review.py --preflight

Run it after creating the bootstrap stack and before the first push to main. Each problem is one
line that says what is wrong and how to fix it; nothing is changed in the account. The checks:
the default Bedrock model answers a one-token request in this region; the GitHub OIDC provider
and the bootstrap stack exist, and the stack has every output the deploy workflow reads (a stack
created from an older infra/bootstrap.yaml may lack one); the deploy role trusts exactly the
subject GitHub will send for this repository's deploy job; the service quotas the app stack draws
on have room. The repository
variables the deploy workflow reads are printed with the values to set (GitHub is not asked).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .project import APP_PARAMETERS, GITHUB_OIDC_HOST, GITHUB_REPOSITORY

DEPLOY_WORKFLOW = ".github/workflows/deploy.yml"
SUB_KEY = f"{GITHUB_OIDC_HOST}:sub"
# Service Quotas codes (Service Quotas console / ListServiceQuotas) for what the app stack uses.
VPCS_PER_REGION = ("vpc", "L-F678F1CE")
ELASTIC_IPS = ("ec2", "L-0263D0A3")
FARGATE_VCPUS = ("fargate", "L-3032A538")


@dataclass(frozen=True)
class Finding:
    """One line of the preflight report: ``problem`` lines fail it, ``todo`` lines do not."""

    kind: str  # "problem" or "todo"
    text: str

    def __str__(self) -> str:
        return f"{self.kind.upper()}: {self.text}"


def problem(text: str) -> list[Finding]:
    return [Finding("problem", text)]


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", type(error).__name__))


def _parameters(root: Path) -> dict[str, str]:
    return {k: str(v) for k, v in json.loads((root / APP_PARAMETERS).read_text()).items()}


def check_bedrock(client: Callable[[str], Any], parameters: dict[str, str]) -> list[Finding]:
    """A one-token Converse call with the app's default model (its inference profile id)."""
    first = parameters.get("BedrockModels", "").split(",")[0]
    model_id = f"{parameters.get('BedrockGeography', 'us')}.{first}"
    try:
        client("bedrock-runtime").converse(
            modelId=model_id,
            messages=[{"role": "user", "content": [{"text": "ping"}]}],
            inferenceConfig={"maxTokens": 1},
        )
    except Exception as error:  # every refusal becomes one line with its fix
        code = _error_code(error)
        if code == "AccessDeniedException":
            fix = (
                "enable access to the model in the Amazon Bedrock console (Model access) in this "
                "region and every region its inference profile routes to, and let these "
                "credentials call bedrock:InvokeModel"
            )
        elif code in ("ValidationException", "ResourceNotFoundException"):
            fix = "choose a model this region offers as an inference profile (BedrockModels)"
        else:
            fix = "check the model id and the region"
        return problem(f"Bedrock refused {model_id} ({code}: {error}): {fix}")
    return []


def check_oidc_provider(client: Callable[[str], Any]) -> list[Finding]:
    providers = client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
    if any(p["Arn"].endswith(f"oidc-provider/{GITHUB_OIDC_HOST}") for p in providers):
        return []
    return problem(
        f"no IAM OIDC provider for {GITHUB_OIDC_HOST}: create the bootstrap stack with "
        "CreateGitHubOidcProvider=true (README, From zero)"
    )


def bootstrap_outputs(client: Callable[[str], Any], stack: str) -> dict[str, str] | Finding:
    try:
        found = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as error:
        if "does not exist" not in str(error):
            raise
        text = f"the bootstrap stack {stack} does not exist: create it from infra/bootstrap.yaml"
        return Finding("problem", f"{text} (README, From zero)")
    status = found["StackStatus"]
    if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
        return Finding("problem", f"the bootstrap stack {stack} is {status}: fix or re-create it")
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs") or []}


def workflow_outputs(root: Path) -> list[str]:
    """The bootstrap outputs the deploy job reads: ``$(output <Key>)`` in its step ``bootstrap``."""
    workflow = yaml.safe_load((root / DEPLOY_WORKFLOW).read_text())
    names: list[str] = []
    for job in workflow["jobs"].values():
        for step in job.get("steps") or []:
            if step.get("id") == "bootstrap":
                names += re.findall(r"\$\(output ([A-Za-z][A-Za-z0-9]*)\)", step.get("run", ""))
    return sorted(set(names))


def check_bootstrap_outputs(outputs: dict[str, str], root: Path) -> list[Finding]:
    """Every output the deploy reads exists: TemplateBucketName, for one, came with a later
    infra/bootstrap.yaml, and a stack created before it stops the deploy until it is updated."""
    if not (missing := [name for name in workflow_outputs(root) if not outputs.get(name)]):
        return []
    return problem(
        f"the bootstrap stack lacks the output(s) {', '.join(missing)} that the deploy reads: "
        "update it from infra/bootstrap.yaml (README, Upgrading an existing deployment)"
    )


def expected_subject(root: Path) -> str:
    """The subject GitHub sends for deploy.yml's job in its GitHub environment (the deploy job)."""
    jobs = yaml.safe_load((root / DEPLOY_WORKFLOW).read_text())["jobs"].values()
    environment = next((job["environment"] for job in jobs if job.get("environment")), "")
    name = environment["name"] if isinstance(environment, dict) else str(environment)
    return f"repo:{GITHUB_REPOSITORY}:environment:{name}"


def check_deploy_role(
    client: Callable[[str], Any], outputs: dict[str, str], root: Path
) -> list[Finding]:
    arn = outputs.get("DeployRoleArn", "")
    if not arn:
        return problem("the bootstrap stack has no DeployRoleArn output: update it")
    role = client("iam").get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"]
    document = role["AssumeRolePolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    patterns: list[str] = []
    for statement in document.get("Statement", []):
        for tests in (statement.get("Condition") or {}).values():
            value = tests.get(SUB_KEY)
            patterns += value if isinstance(value, list) else [value] if value else []
    subject = expected_subject(root)
    if any(fnmatch.fnmatchcase(subject, p) for p in patterns):
        return []
    return problem(
        f"the deploy role trusts sub {', '.join(patterns) or '(none)'} but the deploy job "
        f"will send {subject!r}: update the bootstrap stack from this repository (its "
        "github_repository and the deploy job's environment must agree)"
    )


def repository_variables(root: Path, outputs: dict[str, str]) -> list[Finding]:
    """``vars.X`` the deploy workflow reads, with the value to set where the stack knows it."""
    names = sorted(set(re.findall(r"vars\.([A-Z0-9_]+)", (root / DEPLOY_WORKFLOW).read_text())))
    values = {"AWS_DEPLOY_ROLE_ARN": outputs.get("DeployRoleArn", "<DeployRoleArn output>")}
    return [
        Finding(
            "todo",
            f"GitHub: set the repository variable {name} to {values.get(name, '<value>')} "
            "(Settings, Secrets and variables, Actions, Variables)",
        )
        for name in names
    ]


def _quota(client: Callable[[str], Any], code: tuple[str, str]) -> float | None:
    try:
        quota = client("service-quotas").get_service_quota(ServiceCode=code[0], QuotaCode=code[1])
    except Exception:
        return None  # not readable (permissions, region): say nothing rather than guess
    return float(quota["Quota"]["Value"])


def check_quotas(client: Callable[[str], Any], parameters: dict[str, str]) -> list[Finding]:
    """Room for what the app stack creates: a VPC, a NAT gateway's Elastic IP, Fargate vCPUs."""
    findings: list[Finding] = []
    creates_vpc = not parameters.get("ExistingVpcId")
    ec2 = client("ec2")
    if creates_vpc:
        limit, used = _quota(client, VPCS_PER_REGION), len(ec2.describe_vpcs()["Vpcs"])
        if limit is not None and used + 1 > limit:
            findings += problem(
                f"{used} of {limit:.0f} VPCs in use and the stack creates one: raise "
                "'VPCs per Region' in Service Quotas, or set ExistingVpcId"
            )
    if creates_vpc and parameters.get("TaskSubnets") == "private":
        limit, used = _quota(client, ELASTIC_IPS), len(ec2.describe_addresses()["Addresses"])
        if limit is not None and used + 1 > limit:
            findings += problem(
                f"{used} of {limit:.0f} Elastic IPs in use and the NAT gateway needs one: "
                "raise 'EC2-VPC Elastic IPs' in Service Quotas"
            )
    limit = _quota(client, FARGATE_VCPUS)
    needed = int(parameters.get("MaxTasks", "1")) * int(parameters.get("ContainerCpu", "256"))
    if limit is not None and needed / 1024 > limit:
        findings += problem(
            f"MaxTasks x ContainerCpu needs {needed / 1024:g} Fargate vCPUs, the quota is "
            f"{limit:g}: raise 'Fargate On-Demand vCPU resource count' or lower MaxTasks"
        )
    return findings


def preflight(client: Callable[[str], Any], root: Path, bootstrap_stack: str) -> list[Finding]:
    """Every finding, problems first."""
    parameters = _parameters(root)
    findings = check_bedrock(client, parameters) + check_oidc_provider(client)
    outputs = bootstrap_outputs(client, bootstrap_stack)
    if isinstance(outputs, Finding):
        findings.append(outputs)
        outputs = {}
    else:
        findings += check_bootstrap_outputs(outputs, root)
        findings += check_deploy_role(client, outputs, root)
    findings += check_quotas(client, parameters)
    findings += repository_variables(root, outputs)
    return sorted(findings, key=lambda f: f.kind != "problem")
