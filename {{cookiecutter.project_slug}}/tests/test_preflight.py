"""`scripts/review.py --preflight` against moto's in-memory AWS, printing its findings.

moto 5.2.5 answers IAM, CloudFormation, EC2 and the "VPCs per Region" quota. Where it lacks the
call, a stub stands in and this says so: Bedrock's Converse is not implemented in moto, so
``bedrock-runtime`` is a stub that answers or refuses as the test asks; Service Quotas in moto
knows no EC2 or Fargate quotas, so those two come from a stub wrapped around moto's client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from production_review import main, preflight, project

ROOT = Path(__file__).resolve().parent.parent

REGION = project.DEFAULT_REGION
BOOTSTRAP = project.DEFAULT_BOOTSTRAP_STACK


@dataclass
class BedrockStub:
    """Stands in for bedrock-runtime (moto has no Converse): answers, or refuses with ``code``."""

    code: str | None = None

    def converse(self, **request: Any) -> dict[str, Any]:
        assert request["inferenceConfig"] == {"maxTokens": 1}
        if self.code:
            error = {"Error": {"Code": self.code, "Message": "refused by the stub"}}
            raise ClientError(error, "Converse")  # type: ignore[arg-type]
        return {"output": {"message": {"role": "assistant", "content": [{"text": "p"}]}}}


@dataclass
class QuotasStub:
    """moto's Service Quotas, plus the EC2 and Fargate quotas it does not know."""

    moto: Any
    elastic_ips: float = 5
    fargate_vcpus: float = 6

    def get_service_quota(self, ServiceCode: str, QuotaCode: str) -> dict[str, Any]:
        if (ServiceCode, QuotaCode) == preflight.ELASTIC_IPS:
            return {"Quota": {"Value": self.elastic_ips}}
        if (ServiceCode, QuotaCode) == preflight.FARGATE_VCPUS:
            return {"Quota": {"Value": self.fargate_vcpus}}
        return self.moto.get_service_quota(ServiceCode=ServiceCode, QuotaCode=QuotaCode)


def trust(subject: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/x"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringLike": {preflight.SUB_KEY: [subject]}},
                }
            ],
        }
    )


# The outputs of infra/bootstrap.yaml the preflight and the deploy workflow read; moto creates
# the stack from this stand-in, which has one placeholder resource.
WORKFLOW_OUTPUTS = ("CloudFormationExecutionRoleArn", "EcrRepositoryUri", "TemplateBucketName")


def bootstrap_template(outputs: tuple[str, ...]) -> str:
    lines = [
        "Parameters:",
        "  DeployRoleArn: {Type: String}",
        "Resources:",
        "  Topic: {Type: AWS::SNS::Topic}",
        "Outputs:",
        "  DeployRoleArn: {Value: !Ref DeployRoleArn}",
    ]
    for name in outputs:
        lines += [f"  {name}:", f"    Value: {name.lower()}-value"]
    return "\n".join(lines) + "\n"


@dataclass
class Account:
    """What a prepared account holds; each field is a way to be unprepared."""

    oidc_provider: bool = True
    bootstrap_stack: bool = True
    trusted_subject: str = f"repo:{project.GITHUB_REPOSITORY}:environment:production"
    bedrock_error: str | None = None
    vpcs_in_use: int = 1  # moto's default VPC
    bootstrap_outputs: tuple[str, ...] = WORKFLOW_OUTPUTS
    fargate_vcpus: float = 6

    def create(self) -> Callable[[str], Any]:
        iam = boto3.client("iam", region_name=REGION)
        if self.oidc_provider:
            iam.create_open_id_connect_provider(
                Url=f"https://{project.GITHUB_OIDC_HOST}", ClientIDList=["sts.amazonaws.com"]
            )
        role = iam.create_role(
            RoleName="deploy", AssumeRolePolicyDocument=trust(self.trusted_subject)
        )["Role"]["Arn"]
        if self.bootstrap_stack:
            boto3.client("cloudformation", region_name=REGION).create_stack(
                StackName=BOOTSTRAP,
                TemplateBody=bootstrap_template(self.bootstrap_outputs),
                Parameters=[{"ParameterKey": "DeployRoleArn", "ParameterValue": role}],
            )
        ec2 = boto3.client("ec2", region_name=REGION)
        for _ in range(self.vpcs_in_use - 1):
            ec2.create_vpc(CidrBlock="10.9.0.0/16")
        quotas = QuotasStub(
            boto3.client("service-quotas", region_name=REGION), fargate_vcpus=self.fargate_vcpus
        )
        bedrock = BedrockStub(self.bedrock_error)

        def factory(service: str) -> Any:
            if service == "bedrock-runtime":
                return bedrock
            if service == "service-quotas":
                return quotas
            return boto3.client(service, region_name=REGION)

        return factory


def run_preflight(account: Account, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main.main(["--preflight", "--root", str(ROOT)], client_factory=account.create())
    output = capsys.readouterr().out
    print(output)  # the findings, visible with pytest -s
    return code, output


def test_the_outputs_checked_are_the_ones_the_deploy_workflow_reads() -> None:
    assert preflight.workflow_outputs(ROOT) == sorted(WORKFLOW_OUTPUTS)


def test_a_prepared_account_has_no_problems(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_preflight(Account(), capsys)
    assert code == 0, output
    assert "PROBLEM" not in output
    assert "TODO: GitHub: set the repository variable AWS_DEPLOY_ROLE_ARN to arn:aws:iam::" in (
        output
    )
    assert output.rstrip().endswith("0 problem(s)")


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "model access not enabled": (
        {"bedrock_error": "AccessDeniedException"},
        "enable access to the model in the Amazon Bedrock console",
    ),
    "model not offered here": (
        {"bedrock_error": "ValidationException"},
        "choose a model this region offers",
    ),
    "no OIDC provider": ({"oidc_provider": False}, "CreateGitHubOidcProvider=true"),
    "no bootstrap stack": ({"bootstrap_stack": False}, "does not exist: create it"),
    "role trusts another repository": (
        {"trusted_subject": "repo:someone/else:environment:production"},
        f"will send 'repo:{project.GITHUB_REPOSITORY}:environment:production'",
    ),
    "role trusts the main branch only": (
        {"trusted_subject": f"repo:{project.GITHUB_REPOSITORY}:ref:refs/heads/main"},
        "update the bootstrap stack from this repository",
    ),
    "bootstrap stack from before the template bucket": (
        {"bootstrap_outputs": ("CloudFormationExecutionRoleArn", "EcrRepositoryUri")},
        "lacks the output(s) TemplateBucketName that the deploy reads: update it",
    ),
    "no VPC left": ({"vpcs_in_use": 5}, "5 of 5 VPCs in use"),
    "too few Fargate vCPUs": ({"fargate_vcpus": 0.5}, "needs 1 Fargate vCPUs"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_problem_is_one_line_with_its_fix(
    case: str, aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    changes, fix = CASES[case]
    code, output = run_preflight(Account(**changes), capsys)
    assert code == 1
    problems = [line for line in output.splitlines() if line.startswith("PROBLEM: ")]
    assert len(problems) == 1, output
    assert fix in problems[0], problems[0]
    assert output.rstrip().endswith("1 problem(s)")
