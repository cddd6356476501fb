"""The generated production review catches what it claims to catch.

A fresh bake passes `scripts/review.py --static`. Then, for EVERY static item of the generated
PRODUCTION_CHECKLIST.md, at least one realistic defect is injected into a copy of a bake and the
review must exit non-zero with a FAIL line naming that item. A test asserts the defects cover every
static id, so a new static check without a defect here fails the suite.

checkov takes about ten seconds a run, so it runs once over every defect's copy (plus one run
per copy whose conditions differ, tests/support/checkov.py); each review then reads its own
copy's results from that report (`--checkov-report`, the option CI uses to pass the report its
checkov step made), and runs zizmor (fast) and its Python checks itself.

Defects are applied to parsed data where possible (CloudFormation and workflow YAML, TOML), not to
text, so they keep working when the infrastructure files are reformatted. CloudFormation is written
back in long form (`{"Ref": ...}`), which CloudFormation, checkov and the review all accept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.bakery import VARIATIONS, Baker
from tests.support.checkov import (
    CHECKOV_VERSION,
    ZIZMOR_VERSION,
    checkov_results,
    validator_environment,
)
from tests.support.cloudformation import load_template

# --------------------------------------------------------------------------------------------------
# Helpers


def run_review(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(project / "scripts/review.py"), "--static"]
    return subprocess.run(
        [*command, "--root", str(project), *options],
        capture_output=True,
        text=True,
        check=False,
        env=validator_environment(),
    )


def checklist_checkov_ids(project: Path) -> list[str]:
    """The checkov ids the static items name (``- **Review:** static [CKV_AWS_42, ...]``)."""
    text = (project / "PRODUCTION_CHECKLIST.md").read_text()
    named = re.findall(r"(?m)^- \*\*Review:\*\* static \[([^\]]*)\]", text)
    return sorted({i for names in named for i in re.findall(r"\bCKV\w+", names)})


def item_line(output: str, item_id: str) -> str:
    lines = [line for line in output.splitlines() if f"| {item_id} |" in line]
    assert len(lines) == 1, output
    return lines[0]


def edit_cfn(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    body = load_template(path)
    change(body)
    path.write_text(yaml.safe_dump(body, sort_keys=False))


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """A workflow's YAML, changed; its key ``on``, which YAML 1.1 reads as True, stays ``on``
    (zizmor rejects a workflow without it, and the defect would then be a different one)."""
    body = {
        "on" if key is True else key: value
        for key, value in yaml.safe_load(path.read_text()).items()
    }
    change(body)
    path.write_text(yaml.safe_dump(body, sort_keys=False))


def resources(body: dict[str, Any], type_name: str) -> list[dict[str, Any]]:
    found = [r for r in body["Resources"].values() if r["Type"] == type_name]
    assert found, f"no {type_name} to break"
    return found


def props(body: dict[str, Any], type_name: str) -> dict[str, Any]:
    """Properties of the first resource of a type."""
    return resources(body, type_name)[0].setdefault("Properties", {})


def container(body: dict[str, Any]) -> dict[str, Any]:
    return props(body, "AWS::ECS::TaskDefinition")["ContainerDefinitions"][0]


def efs_volume(body: dict[str, Any]) -> dict[str, Any]:
    """The EFS configuration of the task's session volume (the task has other volumes too)."""
    volumes = props(body, "AWS::ECS::TaskDefinition")["Volumes"]
    (efs,) = [v["EFSVolumeConfiguration"] for v in volumes if "EFSVolumeConfiguration" in v]
    return efs


def set_attribute(entries: list[dict[str, Any]], key: str, value: str) -> None:
    matches = [e for e in entries if e["Key"] == key]
    assert matches, key
    for entry in matches:
        entry["Value"] = value


def app(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda project: edit_cfn(project / "infra/app.yaml", change)


def bootstrap(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda project: edit_cfn(project / "infra/bootstrap.yaml", change)


def workflow(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda project: edit_yaml(project / ".github/workflows" / name, change)


def dockerfile(change: Callable[[str], str]) -> Callable[[Path], None]:
    def apply(project: Path) -> None:
        path = project / "Dockerfile"
        before = path.read_text()
        after = change(before)
        assert after != before, "the defect changed nothing"
        path.write_text(after)

    return apply


def streamlit_config(section: str, key: str, value: str) -> Callable[[Path], None]:
    def apply(project: Path) -> None:
        path = project / ".streamlit/config.toml"
        text, count = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", path.read_text(), count=1)
        assert count == 1, f"{section}.{key} not in config.toml"
        path.write_text(text)

    return apply


def write_file(relative: str, content: str) -> Callable[[Path], None]:
    def apply(project: Path) -> None:
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(content)

    return apply


def deploy_job(body: dict[str, Any]) -> dict[str, Any]:
    """The job of deploy.yml that assumes the AWS role."""
    jobs = [
        job
        for job in body["jobs"].values()
        if any("configure-aws-credentials" in str(s.get("uses")) for s in job.get("steps", []))
    ]
    assert len(jobs) == 1
    return jobs[0]


def credentials_step(body: dict[str, Any]) -> dict[str, Any]:
    return next(
        s for s in deploy_job(body)["steps"] if "configure-aws-credentials" in str(s.get("uses"))
    )


def github_trust(body: dict[str, Any]) -> dict[str, Any]:
    for role in resources(body, "AWS::IAM::Role"):
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            if "token.actions.githubusercontent.com" in str(statement["Principal"]):
                return statement
    raise AssertionError("no role trusts GitHub")


def bedrock_statement(body: dict[str, Any]) -> dict[str, Any]:
    for role in resources(body, "AWS::IAM::Role"):
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if "bedrock:" in str(statement["Action"]):
                    return statement
    raise AssertionError("no Bedrock statement")


def alarms_on(body: dict[str, Any], metric: str) -> list[str]:
    return [
        name
        for name, resource in body["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and metric in str(resource)
    ]


def remove_resources(names: list[str]) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        assert names
        for name in names:
            del body["Resources"][name]

    return change


def remove_resources_of_type(resource_type: str) -> Callable[[dict[str, Any]], None]:
    """Remove every resource of one type (there must be at least one)."""

    def change(body: dict[str, Any]) -> None:
        names = [name for name, r in body["Resources"].items() if r["Type"] == resource_type]
        remove_resources(names)(body)

    return change


def task_ingress_open_to_the_world(body: dict[str, Any]) -> None:
    service = props(body, "AWS::ECS::Service")
    group = service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"][0]
    name = group.get("Ref") or group["Fn::GetAtt"][0]
    rules = body["Resources"][name]["Properties"].setdefault("SecurityGroupIngress", [])
    rules.append({"IpProtocol": "tcp", "FromPort": 8501, "ToPort": 8501, "CidrIp": "0.0.0.0/0"})


def load_balancer_group(body: dict[str, Any]) -> str:
    """Logical id of the load balancer's security group."""
    (group,) = props(body, "AWS::ElasticLoadBalancingV2::LoadBalancer")["SecurityGroups"]
    return group.get("Ref") or group["Fn::GetAtt"][0]


def load_balancer_ingress_from(**source: str) -> Callable[[dict[str, Any]], None]:
    """Add an HTTPS ingress rule from ``source`` (CidrIp=..., ...) to the load balancer's group."""

    def change(body: dict[str, Any]) -> None:
        group = load_balancer_group(body)
        body["Resources"]["ExtraIngress"] = {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": {"Fn::GetAtt": [group, "GroupId"]},
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                **source,
            },
        }

    return change


def environment_value(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        entries = [e for e in container(body)["Environment"] if e.get("Name") == name]
        assert entries, name
        entries[0]["Value"] = value

    return change


def distribution_config(body: dict[str, Any]) -> dict[str, Any]:
    return props(body, "AWS::CloudFront::Distribution")["DistributionConfig"]


def origin_on_the_internet(body: dict[str, Any]) -> None:
    """CloudFront reaches the load balancer by its DNS name, not through the VPC origin."""
    (origin,) = distribution_config(body)["Origins"]
    origin.pop("VpcOriginConfig")
    origin["CustomOriginConfig"] = {"OriginProtocolPolicy": "http-only", "HTTPPort": 80}


def sign_in_open_by_default(project: Path) -> None:
    """The template's default turned to disabled, and the deployed value left to it."""
    path = project / "infra/app-parameters.json"
    parameters = json.loads(path.read_text())
    del parameters["SignIn"]
    path.write_text(json.dumps(parameters, indent=2))
    edit_cfn(
        project / "infra/app.yaml",
        lambda b: b["Parameters"]["SignIn"].update({"Default": "disabled"}),
    )


def add_alarm_off_the_dashboard(body: dict[str, Any]) -> None:
    """A new alarm that notifies the topic but was never added to the dashboard."""
    body["Resources"]["ExtraCpuAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Namespace": "AWS/ECS",
            "MetricName": "CPUUtilization",
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 99,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
        },
    }


def set_parameter(project: Path, name: str, value: str) -> None:
    """Change a value the deploy passes to the app stack (infra/app-parameters.json)."""
    path = project / "infra/app-parameters.json"
    parameters = json.loads(path.read_text())
    assert name in parameters
    parameters[name] = value
    path.write_text(json.dumps(parameters, indent=2))


def add_dependency_without_relocking(project: Path) -> None:
    path = project / "pyproject.toml"
    text = path.read_text()
    assert '"boto3==' in text
    path.write_text(text.replace('"boto3==', '"requests==2.32.5",\n    "boto3==', 1))


def unpin_first_action(body: dict[str, Any]) -> None:
    for job in body["jobs"].values():
        for step in job.get("steps", []):
            if "@" in str(step.get("uses")):
                step["uses"] = step["uses"].split("@")[0] + "@v4"
                return
    raise AssertionError("no action to unpin")


def fake_key(prefix: str, length: int) -> str:
    """A credential-shaped string, built at run time so no file of this repository holds one."""
    return prefix + "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[i % 32] for i in range(length))


# Every defect: (item it must fail, description, how to inject it into a copy of a bake).
Defect = tuple[str, str, Callable[[Path], None]]
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"

DEFECTS: list[Defect] = [
    # Authentication
    (
        "AUTH-2",
        "stored access keys instead of OIDC",
        workflow(
            "deploy.yml",
            lambda b: credentials_step(b)["with"].update(
                {
                    "aws-access-key-id": "${{ secrets.KEY_ID }}",
                    "aws-secret-access-key": "${{ secrets.KEY }}",
                }
            ),
        ),
    ),
    (
        "AUTH-2",
        "credentials step without role-to-assume",
        workflow("deploy.yml", lambda b: credentials_step(b)["with"].pop("role-to-assume")),
    ),
    (
        "AUTH-2",
        "AWS key variable in a job's environment",
        workflow(
            "ci.yml",
            lambda b: (
                next(iter(b["jobs"].values()))
                .setdefault("env", {})
                .update({"AWS_SECRET_ACCESS_KEY": "${{ secrets.KEY }}"})
            ),
        ),
    ),
    (
        "AUTH-3",
        "sub wildcard lets every branch deploy",
        bootstrap(
            lambda b: github_trust(b)["Condition"]["StringLike"].update(
                {"token.actions.githubusercontent.com:sub": "repo:my-org/company-chat:*"}
            )
        ),
    ),
    (
        "AUTH-3",
        "a look-alike repository may deploy",
        bootstrap(
            lambda b: github_trust(b)["Condition"]["StringLike"].update(
                {
                    "token.actions.githubusercontent.com:sub": (
                        "repo:not-my-org/company-chat:ref:refs/heads/main"
                    )
                }
            )
        ),
    ),
    (
        "AUTH-3",
        "any job on main may deploy without the environment's reviewers",
        bootstrap(
            lambda b: github_trust(b)["Condition"]["StringLike"].update(
                {
                    "token.actions.githubusercontent.com:sub": (
                        "repo:my-org/company-chat:ref:refs/heads/main"
                    )
                }
            )
        ),
    ),
    (
        "AUTH-3",
        "audience not checked",
        bootstrap(lambda b: github_trust(b)["Condition"].pop("StringEquals")),
    ),
    ("AUTH-1", "sign-in opted out", lambda project: set_parameter(project, "SignIn", "disabled")),
    ("AUTH-1", "sign-in off unless the parameters say otherwise", sign_in_open_by_default),
    ("AUTH-1", "the task runs anonymous", app(environment_value("AUTH_MODE", "none"))),
    (
        "AUTH-1",
        "anyone may sign up",
        app(
            lambda b: props(b, "AWS::Cognito::UserPool")["AdminCreateUserConfig"].update(
                {"AllowAdminCreateUserOnly": False}
            )
        ),
    ),
    (
        "AUTH-4",
        "Bedrock on every model",
        app(lambda b: bedrock_statement(b).update({"Resource": "*"})),
    ),
    (
        "AUTH-4",
        "bedrock:* action",
        app(lambda b: bedrock_statement(b).update({"Action": "bedrock:*"})),
    ),
    (
        "AUTH-6",
        "an internet-facing load balancer",
        app(
            lambda b: props(b, "AWS::ElasticLoadBalancingV2::LoadBalancer").update(
                {"Scheme": "internet-facing"}
            )
        ),
    ),
    (
        "AUTH-6",
        "the load balancer open to the internet",
        app(load_balancer_ingress_from(CidrIp="0.0.0.0/0")),
    ),
    ("AUTH-6", "CloudFront reaches a public origin", app(origin_on_the_internet)),
    # Secrets
    ("SEC-1", "an AWS access key id", write_file("notes.txt", fake_key("AKIA", 16) + "\n")),
    (
        "SEC-1",
        "an AWS secret key",
        write_file("config/aws.ini", "aws_secret_access_key = " + fake_key("", 40) + "\n"),
    ),
    (
        "SEC-1",
        "a private key",
        write_file(
            "deploy/key.txt",
            "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE\n-----END " + "RSA PRIVATE KEY-----\n",
        ),
    ),
    ("SEC-1", "a GitHub token", write_file("token.py", f'TOKEN = "{fake_key("ghp_", 36)}"\n')),
    ("SEC-1", "an env file git would commit", write_file("deploy/.env.production", "A=1\n")),
    ("SEC-1", "a Streamlit secrets file", write_file("config/secrets.toml", 'a = "b"\n')),
    (
        "SEC-2",
        "the cookie secret read from a parameter, not Secrets Manager",
        app(
            lambda b: container(b)["Secrets"][0].update(
                ValueFrom="arn:aws:ssm:us-east-1:111122223333:parameter/cookie"
            )
        ),
    ),
    (
        "SEC-2",
        "an OIDC provider's client secret read from a parameter, not Secrets Manager",
        app(
            lambda b: container(b)["Secrets"][1]["Fn::If"][1]["ValueFrom"]["Fn::If"].__setitem__(
                2, "arn:aws:ssm:us-east-1:111122223333:parameter/oidc"
            )
        ),
    ),
    (
        "SEC-2",
        "a token as a plain environment value",
        app(lambda b: container(b)["Environment"].append({"Name": "API_TOKEN", "Value": "x"})),
    ),
    (
        "SEC-2",
        "the cookie secret as a plain environment value",
        app(
            lambda b: (
                container(b).pop("Secrets"),
                container(b)["Environment"].append(
                    {"Name": "STREAMLIT_SERVER_COOKIE_SECRET", "Value": "x"}
                ),
            )
        ),
    ),
    (
        "SEC-3",
        "a literal secret string",
        app(
            lambda b: props(b, "AWS::SecretsManager::Secret").update(
                {"SecretString": "hunter2hunter2"}
            )
        ),
    ),
    (
        "SEC-3",
        "a password parameter with a default",
        app(
            lambda b: b["Parameters"].update(
                {"AdminPassword": {"Type": "String", "NoEcho": True, "Default": "changeme"}}
            )
        ),
    ),
    # State
    (
        "STA-1",
        "SESSIONS_DIR outside the EFS mount",
        app(
            lambda b: [
                e.update({"Value": "/tmp/sessions"})  # noqa: S108 (the defect)
                for e in container(b)["Environment"]
                if e.get("Name") == "SESSIONS_DIR"
            ]
        ),
    ),
    (
        "STA-1",
        "no EFS volume",
        app(lambda b: props(b, "AWS::ECS::TaskDefinition").pop("Volumes")),
    ),
    (
        "STA-2",
        "EFS not encrypted",
        app(lambda b: props(b, "AWS::EFS::FileSystem").update({"Encrypted": False})),
    ),
    (
        "STA-3",
        "no TLS to EFS",
        app(lambda b: efs_volume(b).update({"TransitEncryption": "DISABLED"})),
    ),
    (
        "STA-3",
        "no TLS-only file system policy",
        app(lambda b: props(b, "AWS::EFS::FileSystem").pop("FileSystemPolicy")),
    ),
    (
        "STA-3",
        "no IAM authorization",
        app(lambda b: efs_volume(b)["AuthorizationConfig"].update({"IAM": "DISABLED"})),
    ),
    (
        "STA-4",
        "EFS backups off",
        app(
            lambda b: props(b, "AWS::EFS::FileSystem").update(
                {"BackupPolicy": {"Status": "DISABLED"}}
            )
        ),
    ),
    (
        "STA-5",
        "EFS deleted with the stack",
        app(lambda b: resources(b, "AWS::EFS::FileSystem")[0].update({"DeletionPolicy": "Delete"})),
    ),
    (
        "STA-7",
        "stickiness off",
        app(
            lambda b: set_attribute(
                props(b, "AWS::ElasticLoadBalancingV2::TargetGroup")["TargetGroupAttributes"],
                "stickiness.enabled",
                "false",
            )
        ),
    ),
    # Caching
    (
        "CACHE-1",
        "CloudFront caches responses",
        app(
            lambda b: props(b, "AWS::CloudFront::Distribution")["DistributionConfig"][
                "DefaultCacheBehavior"
            ].update({"CachePolicyId": CACHING_OPTIMIZED})
        ),
    ),
    (
        "CACHE-1",
        "CloudFront drops the Host header",
        app(
            lambda b: props(b, "AWS::CloudFront::Distribution")["DistributionConfig"][
                "DefaultCacheBehavior"
            ].pop("OriginRequestPolicyId")
        ),
    ),
    # Deployment
    ("DEP-1", "uv.lock removed", lambda project: (project / "uv.lock").unlink()),
    ("DEP-1", "pyproject changed without relocking", add_dependency_without_relocking),
    ("DEP-2", "USER root", dockerfile(lambda t: t + "\nUSER root\n")),
    (
        "DEP-2",
        "no USER",
        dockerfile(lambda t: re.sub(r"(?m)^USER .*$", "", t)),
    ),
    (
        "DEP-3",
        "no HEALTHCHECK",
        dockerfile(lambda t: re.sub(r"(?ms)^HEALTHCHECK .*?[^\\]\n", "", t)),
    ),
    ("DEP-3", "HEALTHCHECK NONE", dockerfile(lambda t: t + "\nHEALTHCHECK NONE\n")),
    (
        "DEP-4",
        "an unpinned base image",
        dockerfile(lambda t: re.sub(r"(?m)^FROM python:\S+", "FROM python:3.11-slim", t)),
    ),
    (
        "DEP-4",
        "a latest tag",
        dockerfile(lambda t: re.sub(r"(?m)^FROM ghcr.io/astral-sh/uv:\S+", "FROM uv:latest", t)),
    ),
    ("DEP-5", "an action pinned to a tag", workflow("ci.yml", unpin_first_action)),
    (
        "DEP-5",
        "a reusable workflow from a branch",
        workflow(
            "deploy.yml",
            lambda b: b["jobs"].update({"extra": {"uses": "my-org/workflows/.github/w.yml@main"}}),
        ),
    ),
    (
        "DEP-6",
        "write-all at the top level",
        workflow("ci.yml", lambda b: b.update({"permissions": "write-all"})),
    ),
    (
        "DEP-6",
        "no top-level permissions",
        workflow("deploy.yml", lambda b: b.pop("permissions")),
    ),
    (
        "DEP-6",
        "id-token: write in a job that assumes no role",
        workflow(
            "ci.yml",
            lambda b: next(iter(b["jobs"].values()))["permissions"].update({"id-token": "write"}),
        ),
    ),
    (
        "DEP-7",
        "no rollback",
        app(
            lambda b: props(b, "AWS::ECS::Service")["DeploymentConfiguration"][
                "DeploymentCircuitBreaker"
            ].update({"Rollback": False})
        ),
    ),
    (
        "DEP-7",
        "no circuit breaker",
        app(lambda b: props(b, "AWS::ECS::Service").pop("DeploymentConfiguration")),
    ),
    (
        "DEP-8",
        "DesiredCount beside autoscaling",
        app(lambda b: props(b, "AWS::ECS::Service").update({"DesiredCount": 2})),
    ),
    (
        "DEP-9",
        "health check on /healthz",
        app(
            lambda b: props(b, "AWS::ElasticLoadBalancingV2::TargetGroup").update(
                {"HealthCheckPath": "/healthz"}
            )
        ),
    ),
    (
        "DEP-10",
        "deploys cancel each other",
        workflow("deploy.yml", lambda b: b["concurrency"].update({"cancel-in-progress": True})),
    ),
    (
        "DEP-10",
        "no concurrency group",
        workflow(
            "deploy.yml",
            lambda b: (b.pop("concurrency"), deploy_job(b).pop("concurrency", None)),
        ),
    ),
    # Monitoring
    (
        "MON-1",
        "logs kept forever",
        app(lambda b: props(b, "AWS::Logs::LogGroup").pop("RetentionInDays")),
    ),
    (
        "MON-1",
        "container not logging to the stack's log group",
        app(lambda b: container(b).pop("LogConfiguration")),
    ),
    (
        "MON-1",
        "the deployed retention blanked",
        lambda project: set_parameter(project, "LogRetentionDays", ""),
    ),
    (
        "MON-2",
        "no memory alarm",
        app(lambda b: remove_resources(alarms_on(b, "MemoryUtilization"))(b)),
    ),
    (
        "MON-2",
        "alarms notify nobody",
        app(
            lambda b: [
                alarm["Properties"].pop("AlarmActions")
                for alarm in resources(b, "AWS::CloudWatch::Alarm")
            ]
        ),
    ),
    (
        "MON-2",
        "no alarm on the Bedrock error rate",
        app(lambda b: remove_resources(alarms_on(b, "'Errors'"))(b)),
    ),
    (
        "MON-2",
        "no alarm when no target is healthy",
        app(lambda b: remove_resources(alarms_on(b, "'HealthyHostCount'"))(b)),
    ),
    (
        "MON-3",
        "Container Insights off",
        app(
            lambda b: props(b, "AWS::ECS::Cluster").update(
                {"ClusterSettings": [{"Name": "containerInsights", "Value": "disabled"}]}
            )
        ),
    ),
    (
        "MON-7",
        "no alarm e-mail",
        lambda project: set_parameter(project, "AlarmEmail", ""),
    ),
    (
        "MON-7",
        "the e-mail never subscribed",
        app(remove_resources_of_type("AWS::SNS::Subscription")),
    ),
    ("MON-8", "no dashboard", app(remove_resources_of_type("AWS::CloudWatch::Dashboard"))),
    (
        "MON-8",
        "the dashboard forgets an alarm",
        app(add_alarm_off_the_dashboard),
    ),
    ("MON-9", "task stops go unnoticed", app(remove_resources_of_type("AWS::Events::Rule"))),
    (
        "MON-9",
        "EventBridge may not publish to the topic",
        app(remove_resources_of_type("AWS::SNS::TopicPolicy")),
    ),
    (
        "MON-9",
        "the topic policy forgets the alarms' publisher",
        app(
            lambda b: props(b, "AWS::SNS::TopicPolicy")["PolicyDocument"].update(
                Statement=[
                    statement
                    for statement in props(b, "AWS::SNS::TopicPolicy")["PolicyDocument"][
                        "Statement"
                    ]
                    if "cloudwatch" not in str(statement["Principal"])
                ]
            )
        ),
    ),
    # Network and security
    ("NET-1", "XSRF protection off", streamlit_config("server", "enableXsrfProtection", "false")),
    (
        "NET-1",
        "CORS protection off in the image",
        dockerfile(lambda t: t + "\nENV STREAMLIT_SERVER_ENABLE_CORS=false\n"),
    ),
    ("NET-2", "tracebacks shown", streamlit_config("client", "showErrorDetails", '"full"')),
    (
        "NET-2",
        "tracebacks shown through the task definition",
        app(
            lambda b: container(b)["Environment"].append(
                {"Name": "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS", "Value": "full"}
            )
        ),
    ),
    (
        "NET-3",
        "invalid headers passed on",
        app(
            lambda b: set_attribute(
                props(b, "AWS::ElasticLoadBalancingV2::LoadBalancer")["LoadBalancerAttributes"],
                "routing.http.drop_invalid_header_fields.enabled",
                "false",
            )
        ),
    ),
    ("NET-4", "tasks open to the internet", app(task_ingress_open_to_the_world)),
    (
        "NET-5",
        "plain HTTP for viewers",
        app(
            lambda b: distribution_config(b)["DefaultCacheBehavior"].update(
                {"ViewerProtocolPolicy": "allow-all"}
            )
        ),
    ),
    (
        "NET-6",
        "the load balancer admits the whole VPC range",
        app(load_balancer_ingress_from(CidrIp="10.0.0.0/8")),
    ),
    (
        "NET-6",
        "the load balancer admits no one (CloudFront cannot reach it)",
        app(remove_resources_of_type("AWS::EC2::SecurityGroupIngress")),
    ),
    # Cost
    (
        "COST-1",
        "no upper bound on scaling",
        app(lambda b: props(b, "AWS::ApplicationAutoScaling::ScalableTarget").pop("MaxCapacity")),
    ),
    (
        "COST-1",
        "no target tracking",
        app(remove_resources_of_type("AWS::ApplicationAutoScaling::ScalingPolicy")),
    ),
    (
        "COST-1",
        "the deployed maximum blanked",
        lambda project: set_parameter(project, "MaxTasks", ""),
    ),
    (
        "COST-2",
        "images never expire",
        bootstrap(lambda b: props(b, "AWS::ECR::Repository").pop("LifecyclePolicy")),
    ),
    ("COST-6", "no monthly budget", app(remove_resources_of_type("AWS::Budgets::Budget"))),
    (
        "COST-6",
        "the budget e-mails a fixed address, not AlarmEmail",
        app(
            lambda b: props(b, "AWS::Budgets::Budget")["NotificationsWithSubscribers"][0][
                "Subscribers"
            ][0].update(Address="someone@example.com")
        ),
    ),
    (
        "COST-6",
        "the daily allowance is hard-coded, not DailyTokenLimit",
        app(environment_value("DAILY_TOKEN_LIMIT", "0")),
    ),
    (
        "COST-6",
        "the daily allowance is not passed to the task",
        app(
            lambda b: container(b).update(
                Environment=[
                    e for e in container(b)["Environment"] if e.get("Name") != "DAILY_TOKEN_LIMIT"
                ]
            )
        ),
    ),
    (
        "COST-3",
        "no move to Infrequent Access",
        app(lambda b: props(b, "AWS::EFS::FileSystem").pop("LifecyclePolicies")),
    ),
    # Data retention
    ("DATA-5", "no purge schedule", app(remove_resources_of_type("AWS::Scheduler::Schedule"))),
    (
        "DATA-5",
        "the schedule runs on another cluster",
        app(
            lambda b: props(b, "AWS::Scheduler::Schedule")["Target"].update(
                Arn="arn:aws:ecs:us-east-1:111122223333:cluster/other"
            )
        ),
    ),
    (
        "DATA-5",
        "a retention window is hard-coded, not its parameter",
        app(environment_value("CONVERSATION_RETENTION_DAYS", "0")),
    ),
    (
        "DATA-5",
        "purge schedule disabled",
        app(lambda b: props(b, "AWS::Scheduler::Schedule").update({"State": "DISABLED"})),
    ),
    (
        "DATA-5",
        "the schedule starts the server instead of the purge",
        app(
            lambda b: props(b, "AWS::Scheduler::Schedule")["Target"].update(
                {"Input": '{"containerOverrides": [{"name": "app", "command": []}]}'}
            )
        ),
    ),
    (
        "DATA-5",
        "the trash window never reaches the task",
        app(
            lambda b: container(b).update(
                {
                    "Environment": [
                        entry
                        for entry in container(b)["Environment"]
                        if not (
                            isinstance(entry, dict) and entry.get("Name") == "TRASH_RETENTION_DAYS"
                        )
                    ]
                }
            )
        ),
    ),
]


# --------------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def baked(default_project: Path) -> Path:
    return default_project


def copy_project(baked: Path, to: Path) -> Path:
    shutil.copytree(baked, to, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    return to


@pytest.fixture(scope="module")
def fresh_review(baked: Path) -> str:
    """The static review of the default bake, run as CI does without a report (checkov runs)."""
    result = run_review(baked)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


TEMPLATES = ("infra/app.yaml", "infra/bootstrap.yaml")


def same_templates(one: Path, other: Path) -> bool:
    return all((one / t).read_bytes() == (other / t).read_bytes() for t in TEMPLATES)


def checkov_once(folder: Path, policies: Path, checks: list[str]) -> list[dict[str, Any]]:
    """checkov over the templates of every project in ``folder``: one run for all the copies
    whose conditions agree, one more for each copy that changed them (tests/support/checkov.py).
    Only the checks the checklist names, and of each result only what the review reads: the
    report is ~3 MB a project otherwise."""
    command = ["checkov", "--external-checks-dir", str(policies), "--check", ",".join(checks)]
    templates = sorted(p for t in TEMPLATES for p in folder.glob(f"*/{t}"))
    results = checkov_results(command, templates, validator_environment())
    assert not results["parsing_errors"]
    keep = ("check_id", "resource", "file_abs_path")
    return [
        {"outcome": kind, **{k: entry[k] for k in keep}}
        for kind in ("passed_checks", "failed_checks")
        for entry in results[kind]
    ]


@pytest.fixture(scope="module")
def defect_reviews(
    baked: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[subprocess.CompletedProcess[str]]:
    """Every defect in its own copy of the bake, and its static review.

    checkov runs over the copies whose templates the defect changed and one untouched copy; a
    copy whose templates are byte for byte the bake's gets the untouched copy's results, pointed
    at its own files (checkov's verdict depends on nothing else, once no copy can lend another
    its conditions). Each review reads its
    part of that report (`--checkov-report`, as in CI), and runs its Python checks itself; the
    reviews run in parallel, one per core.
    """
    folder = tmp_path_factory.mktemp("defects")
    fresh = copy_project(baked, folder / "checkov" / "fresh")
    (folder / "same").mkdir()
    copies = []
    for index, (_, _, inject) in enumerate(DEFECTS):
        copy = copy_project(baked, folder / "staging" / str(index))
        inject(copy)
        where = "same" if same_templates(copy, fresh) else "checkov"
        copies.append(copy.rename(folder / where / str(index)))
    entries = checkov_once(folder / "checkov", baked / "infra/checks", checklist_checkov_ids(baked))
    for copy in copies:
        if copy.parent.name == "same":
            for entry in [e for e in entries if Path(e["file_abs_path"]).is_relative_to(fresh)]:
                relative = Path(entry["file_abs_path"]).relative_to(fresh)
                entries.append({**entry, "file_abs_path": str(copy / relative)})
    results: dict[str, list[dict[str, str]]] = {"passed_checks": [], "failed_checks": []}
    for entry in entries:
        results[entry.pop("outcome")].append(entry)
    report = folder / "checkov.json"
    report.write_text(json.dumps({"check_type": "cloudformation", "results": results}))
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        return list(pool.map(lambda c: run_review(c, "--checkov-report", str(report)), copies))


@pytest.mark.parametrize("variation", sorted(set(VARIATIONS) - {"default"}))
def test_a_fresh_bake_passes_the_static_review(bake: Baker, variation: str) -> None:
    """The default bake is reviewed once, by the fixture ``fresh_review`` (next test)."""
    project = bake(**VARIATIONS[variation])
    result = run_review(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| FAIL |" not in result.stdout


def test_the_default_bake_has_the_agreed_verdicts(fresh_review: str) -> None:
    """It passes: 42 items proved, 11 live ones not run, 11 decisions, as the issue agreed."""
    assert fresh_review.rstrip().endswith("Totals: pass 42, FAIL 0, manual 11, not run 11")


def test_the_documented_command_passes_on_a_fresh_bake(baked: Path, tmp_path: Path) -> None:
    """Exactly what the README and CI run: `uv run python scripts/review.py --static`, in a copy
    (it installs the project's environment)."""
    project = copy_project(baked, tmp_path / baked.name)
    environment = {k: v for k, v in validator_environment().items() if k != "VIRTUAL_ENV"}
    result = subprocess.run(
        ["uv", "run", "--locked", "python", "scripts/review.py", "--static"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**environment, "UV_LINK_MODE": "copy"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("## Production review: static")


def test_without_checkov_the_review_says_how_to_install_it(baked: Path) -> None:
    environment = {**validator_environment(), "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [sys.executable, str(baked / "scripts/review.py"), "--static"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    assert result.returncode == 2
    assert f"uv tool install checkov=={CHECKOV_VERSION}" in result.stderr


def test_without_zizmor_the_review_says_how_to_install_it(baked: Path, tmp_path: Path) -> None:
    """checkov's results come from a report, and PATH has no zizmor (nor anything else)."""
    report = tmp_path / "checkov.json"
    report.write_text(json.dumps({"check_type": "cloudformation", "results": {}}))
    environment = {**validator_environment(), "PATH": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            str(baked / "scripts/review.py"),
            "--static",
            "--checkov-report",
            str(report),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"uv tool install zizmor=={ZIZMOR_VERSION}" in result.stderr


def test_every_static_item_has_a_defect(fresh_review: str) -> None:
    proved = re.findall(r"(?m)^\| (?:pass|FAIL) \| ([A-Z]+-\d+) \|", fresh_review)
    assert len(proved) == 42
    assert set(proved) == {item_id for item_id, _, _ in DEFECTS}


@pytest.mark.parametrize(
    ("index", "item_id"),
    [pytest.param(i, item, id=f"{item} {what}") for i, (item, what, _) in enumerate(DEFECTS)],
)
def test_each_defect_fails_its_item(
    defect_reviews: list[subprocess.CompletedProcess[str]], index: int, item_id: str
) -> None:
    result = defect_reviews[index]
    assert result.returncode == 1, result.stdout + result.stderr
    line = item_line(result.stdout, item_id)
    assert line.startswith(f"| FAIL | {item_id} |"), line


def test_workflows_run_the_review(baked: Path) -> None:
    """CI runs the static review and the deploy job the live one, both into the job summary."""
    workflows = {
        name: yaml.safe_load((baked / ".github/workflows" / name).read_text())
        for name in ("ci.yml", "deploy.yml")
    }
    runs = {
        name: [
            step.get("run", "")
            for job in workflow["jobs"].values()
            for step in job.get("steps", [])
            if "scripts/review.py" in step.get("run", "")
        ]
        for name, workflow in workflows.items()
    }
    assert len(runs["ci.yml"]) == 1
    assert "--static" in runs["ci.yml"][0]
    assert len(runs["deploy.yml"]) == 1
    deploy = runs["deploy.yml"][0]
    assert "--static" not in deploy
    assert "--app-stack" in deploy
    assert "--region" in deploy
    for run in (runs["ci.yml"][0], deploy):
        assert "GITHUB_STEP_SUMMARY" in run
