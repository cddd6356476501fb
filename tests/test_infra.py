"""The generated CloudFormation: clean under cfn-lint and checkov, and right where it matters.

Validators catch the generic mistakes; the structural tests pin the decisions this template is
built on (DESIGN.md section 3), each of which a well-meant edit could undo without any validator
noticing: the health path, stickiness, no DesiredCount, EFS over TLS with IAM, the OIDC trust,
Bedrock scoped to the configured models, secrets out of plain environment values, retention.
Values computed by intrinsic functions are evaluated (tests/support/cloudformation.py), not
pattern-matched.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.bakery import VARIATIONS, Baker
from tests.support.checkov import checkov_results, validator_environment
from tests.support.cloudformation import Evaluator, load_template
from tests.support.stack_parameters import APP_OPTIONS, CERTIFICATE, IMAGE, OIDC, OIDC_SECRET

# Bytes CloudFormation accepts in a template passed inline (TemplateBody), which is how the
# README's `aws cloudformation deploy` of the bootstrap stack sends it (no --s3-bucket).
INLINE_TEMPLATE_LIMIT = 51_200
# Bytes of a template CloudFormation reads from S3 (TemplateURL), as the deploy sends app.yaml:
# "1 MB" in the CloudFormation quotas and the CreateChangeSet API reference, read as 10^6 bytes,
# the smaller of the two meanings.
S3_TEMPLATE_LIMIT = 1_000_000
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
BOOTSTRAP_OPTIONS: dict[str, dict[str, str]] = {
    "defaults": {},
    "existing-oidc-provider": {"CreateGitHubOidcProvider": "false"},
}


@dataclass(frozen=True)
class Baked:
    variation: str
    path: Path
    answers: dict[str, str]

    @property
    def infra(self) -> Path:
        return self.path / "infra"

    @property
    def app(self) -> dict[str, Any]:
        return load_template(self.infra / "app.yaml")

    @property
    def bootstrap(self) -> dict[str, Any]:
        return load_template(self.infra / "bootstrap.yaml")

    @property
    def slug(self) -> str:
        return self.path.name


@pytest.fixture(scope="module", params=sorted(VARIATIONS))
def baked(request: pytest.FixtureRequest, bake: Baker) -> Baked:
    answers = VARIATIONS[request.param]
    return Baked(request.param, bake(**answers), answers)


@pytest.fixture(scope="module")
def default_baked(bake: Baker) -> Baked:
    return Baked("default", bake(), {})


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def with_defaults(text: str, overrides: dict[str, str]) -> str:
    """The template text with other parameter defaults, comments (and checkov skips) intact."""
    for name, value in overrides.items():
        pattern = rf"(?m)^(  {name}:\n(?:    .*\n)*?    Default: ).*$"
        replacement = json.dumps(value).replace("\\", "\\\\")
        text, count = re.subn(pattern, rf"\g<1>{replacement}", text, count=1)
        assert count == 1, f"no default line for {name}"
    return text


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------------------
# Validators


def test_cfn_lint_reports_nothing(baked: Baked) -> None:
    """No errors and no warnings: cfn-lint reasons over every combination of conditions."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = run(cfn_lint, "infra/bootstrap.yaml", "infra/app.yaml", cwd=baked.path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# What checkov must find across the option sets: the review's own sign-in policy (AUTH-1 of
# PRODUCTION_CHECKLIST.md) failing the task definition of a stack whose SignIn is disabled.
EXPECTED_FINDINGS = [
    "app-sign-in-disabled.yaml: CKV2_APP_1 AWS::ECS::TaskDefinition.TaskDefinition",
]


def test_checkov_passes_every_option(baked: Baked, tmp_path: Path) -> None:
    """No other failed check for any option set; every skip is a checkov comment with its reason.

    Each option set is checked with only its own conditions in sight (tests/support/checkov.py).
    """
    app_text = (baked.infra / "app.yaml").read_text()
    bootstrap_text = (baked.infra / "bootstrap.yaml").read_text()
    for name, overrides in APP_OPTIONS.items():
        (tmp_path / f"app-{name}.yaml").write_text(with_defaults(app_text, overrides))
    for name, overrides in BOOTSTRAP_OPTIONS.items():
        (tmp_path / f"bootstrap-{name}.yaml").write_text(with_defaults(bootstrap_text, overrides))
    templates = sorted(tmp_path.glob("*.yaml"))
    command = ["checkov", "--external-checks-dir", str(baked.infra / "checks")]
    results = checkov_results(command, templates, validator_environment())
    failed = sorted(
        f"{Path(c['file_abs_path']).name}: {c['check_id']} {c['resource']}"
        for c in results["failed_checks"]
    )
    assert failed == EXPECTED_FINDINGS
    assert results["parsing_errors"] == []
    checked = {Path(c["file_abs_path"]).name for c in results["passed_checks"]}
    assert checked == {t.name for t in templates}
    for check in results["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]


def test_the_templates_share_no_condition_name(baked: Baked) -> None:
    """The generated CI and review run checkov once over infra/, where checkov resolves each
    ``Fn::If`` with the first condition of that name in any template (tests/support/checkov.py):
    a name used by both templates would let one template's condition decide the other's checks."""
    assert not set(baked.app["Conditions"]) & set(baked.bootstrap.get("Conditions") or {})


def test_every_checkov_skip_states_its_reason(baked: Baked) -> None:
    for name in ("app.yaml", "bootstrap.yaml"):
        for line in (baked.infra / name).read_text().splitlines():
            if "checkov:skip" in line:
                assert re.fullmatch(r"\s*# checkov:skip=CKV2?_AWS_\d+:\S.{20,}", line), line


@pytest.fixture(scope="module")
def longest_names(bake: Baker) -> Path:
    """The worst case for template size: the slug appears in many names, and the longest one the
    hook accepts is 24 characters; ap-southeast-2 is among the longest region names."""
    return bake(project_slug="a" * 24, aws_region="ap-southeast-2") / "infra"


def test_app_template_fits_the_s3_limit_with_the_longest_names(longest_names: Path) -> None:
    """The deploy stages app.yaml in S3 (--s3-bucket; tests/test_workflows.py checks that), where
    CloudFormation's limit applies instead of the inline one."""
    size = (longest_names / "app.yaml").stat().st_size
    print(f"app.yaml with the longest names: {size} bytes of {S3_TEMPLATE_LIMIT}")
    assert size < S3_TEMPLATE_LIMIT


def test_bootstrap_template_fits_an_inline_deploy_with_the_longest_names(
    longest_names: Path,
) -> None:
    """An administrator creates the bootstrap stack with a plain `aws cloudformation deploy`
    (README, From zero): there is no bucket yet, so it must stay under the inline limit."""
    size = (longest_names / "bootstrap.yaml").stat().st_size
    print(f"bootstrap.yaml with the longest names: {size} bytes of {INLINE_TEMPLATE_LIMIT}")
    assert size < INLINE_TEMPLATE_LIMIT


# --------------------------------------------------------------------------------------------------
# Parameters: every user-supplied one is described and constrained, with good and bad examples

GOOD_AND_BAD: dict[str, tuple[list[str], list[str]]] = {
    "ImageUri": (
        [IMAGE, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/bot@sha256:" + "0" * 64],
        [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/company-chat:latest",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/company-chat@sha256:" + "ab" * 31,
            "docker.io/library/python@sha256:" + "ab" * 32,
            IMAGE + " ",
            "",
        ],
    ),
    "BedrockGeography": (["us", "eu", "apac"], ["global", "US", "", "us-east-1"]),
    "BedrockModels": (
        [
            "amazon.nova-lite-v1:0",
            "amazon.nova-lite-v1:0,anthropic.claude-3-5-haiku-20241022-v1:0",
            "amazon.nova-pro-v1:0,amazon.nova-lite-v1:0,amazon.nova-micro-v1:0",
            "meta.llama3-3-70b-instruct-v1:0",
        ],
        [
            "",
            "us.amazon.nova-lite-v1:0 ",
            "amazon.nova-lite-v1:0, amazon.nova-pro-v1:0",
            "a.b,c.d,e.f,g.h",
            "nova-lite",
            "amazon.nova-lite-v1:0,",
            "*",
        ],
    ),
    "ContainerCpu": (["256", "512", "1024", "2048"], ["128", "4096", "0.25", ""]),
    "ContainerMemory": (["512", "1024", "8192", "16384"], ["256", "500", "32768", ""]),
    "MinTasks": (["1", "2", "10"], ["0", "11", "-1"]),
    "MaxTasks": (["1", "4", "20"], ["0", "21"]),
    "CpuTargetPercent": (["20", "60", "90"], ["10", "95"]),
    "MemoryTargetPercent": (["50", "80", "95"], ["40", "100"]),
    "LogRetentionDays": (["30", "365", "3653"], ["0", "31", "10000"]),
    "AlarmEmail": (
        ["", "ops@example.com", "first.last+chat@sub.example.co.uk"],
        ["ops", "ops@example", "a b@example.com", "ops@example.com,dev@example.com"],
    ),
    "DailyTokenLimit": (["0", "200000", "1000000000"], ["-1", "1.5", "1000000001", ""]),
    "DailyTokenAlarmThreshold": (["1000", "2000000"], ["999", "0", "2.5", ""]),
    "MonthlyBudgetUsd": (["0", "50", "1000000"], ["-1", "12.5", "1000001", ""]),
    "ConversationRetentionDays": (["0", "365", "36500"], ["-1", "1.5", "36501", ""]),
    "TrashRetentionDays": (["1", "30", "36500"], ["0", "-1", "36501", ""]),
    "QuarantineRetentionDays": (["1", "90", "36500"], ["0", "2.5", "36501", ""]),
    "CloudFrontPriceClass": (["PriceClass_100", "PriceClass_All"], ["PriceClass_50", ""]),
    "CustomDomainName": (
        ["", "chat.example.com", "bot.internal.example.co.uk"],
        ["https://chat.example.com", "Chat.Example.com", "chat", "-chat.example.com"],
    ),
    "CustomDomainCertificateArn": (
        ["", CERTIFICATE],
        [
            CERTIFICATE.replace("us-east-1", "eu-west-1"),  # CloudFront reads only us-east-1
            "arn:aws:iam::123456789012:server-certificate/x",
            "certificate",
            CERTIFICATE + "x",
        ],
    ),
    "SignIn": (["cognito", "oidc", "disabled"], ["", "none", "Cognito", "saml"]),
    "OidcMetadataUrl": (
        [
            "",
            OIDC["OidcMetadataUrl"],
            "https://accounts.google.com/.well-known/openid-configuration",
            "https://example.okta.com/oauth2/default/.well-known/openid-configuration",
        ],
        [
            "http://accounts.google.com/.well-known/openid-configuration",
            "https://accounts.google.com/",
            "https://accounts.google.com/.well-known/openid-configuration?x=1",
            "https://evil.example/ /.well-known/openid-configuration",
        ],
    ),
    "OidcClientId": (
        ["", "0oa1b2c3d4e5f6g7h8i9", "123-abc.apps.googleusercontent.com", OIDC["OidcClientId"]],
        ["a b", "x" * 256, 'id"quoted'],
    ),
    "OidcClientSecretArn": (
        ["", OIDC_SECRET, OIDC_SECRET.replace("oidc-", "sign-in/entra-")],
        [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-app/oidc-AbC123",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:company-chat-app/oidc",
            "company-chat-app/oidc-AbC123",
        ],
    ),
    "OidcLogoutUrl": (
        ["", OIDC["OidcLogoutUrl"], "https://example.okta.com/oauth2/default/v1/logout"],
        ["http://example.com/logout", "https://example.com/log out", "javascript:alert(1)"],
    ),
    "AllowedEmailDomains": (
        ["", "example.com", "contoso.com,example.org", "mail.example.co.uk"],
        ["@example.com", "example.com, example.org", "Example.com", "example", "example.com,"],
    ),
    "VpcCidr": (
        ["10.20.0.0/16", "172.31.0.0/20", "192.168.0.0/21"],
        ["10.20.0.0/24", "192.168.0.0/22", "10.20.0.0/8", "8.8.8.0/16", "10.20.0.1/16"],
    ),
    "TaskSubnets": (["public", "private"], ["isolated", ""]),
    "ExistingVpcId": (["", "vpc-0123abcd", "vpc-0123456789abcdef0"], ["vpc-", "vpc-XYZ", "sg-1"]),
    "ExistingPublicSubnet1": (
        ["", "subnet-0123abcd"],
        ["subnet-", "subnet-0123abcd,subnet-4567abcd"],
    ),
    "ExistingPublicSubnet2": (["", "subnet-0123456789abcdef0"], ["vpc-0123abcd", "subnet-xyz"]),
    "ExistingPrivateSubnet1": (["", "subnet-0123abcd"], ["subnet-0123abcd "]),
    "ExistingPrivateSubnet2": (["", "subnet-0123abcd"], ["subnet-0123ABCD"]),
    "CreateGitHubOidcProvider": (["true", "false"], ["no", ""]),
    "CreateEcrRepository": (["true", "false"], ["no", ""]),
    "ImagesToKeep": (["5", "30", "1000"], ["4", "1001"]),
}


def accepts(spec: dict[str, Any], value: str) -> bool:
    """Whether CloudFormation accepts the value for a parameter (its declared constraints)."""
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return False
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return False
    if spec["Type"] == "Number":
        try:
            number = float(value)
        except ValueError:
            return False
        if number < float(spec.get("MinValue", number)):
            return False
        if number > float(spec.get("MaxValue", number)):
            return False
        if "AllowedValues" not in spec and not number.is_integer():
            return False
    return True


def all_parameters(baked: Baked) -> dict[str, dict[str, Any]]:
    return {**baked.app["Parameters"], **baked.bootstrap["Parameters"]}


def test_every_parameter_is_described_and_constrained(baked: Baked) -> None:
    for name, spec in all_parameters(baked).items():
        assert len(spec.get("Description", "")) > 15, name
        assert len(spec.get("ConstraintDescription", "")) > 10, name
        constrained = {"AllowedPattern", "AllowedValues"} & set(spec)
        bounded = spec["Type"] == "Number" and {"MinValue", "MaxValue"} <= set(spec)
        assert constrained or bounded, f"{name} accepts anything"
        if "Default" in spec:
            assert accepts(spec, str(spec["Default"])), f"{name}: its own default is rejected"
        assert not spec.get("NoEcho"), f"{name}: secrets are generated by the stack, not typed"


def test_every_parameter_has_examples(baked: Baked) -> None:
    assert set(all_parameters(baked)) == set(GOOD_AND_BAD)


@pytest.mark.parametrize("name", sorted(GOOD_AND_BAD))
def test_parameter_constraint_accepts_good_and_rejects_bad(default_baked: Baked, name: str) -> None:
    spec = all_parameters(default_baked)[name]
    good, bad = GOOD_AND_BAD[name]
    assert [v for v in good if not accepts(spec, v)] == []
    assert [v for v in bad if accepts(spec, v)] == []


def test_image_uri_has_no_default(baked: Baked) -> None:
    """The deploy must always name the image digest; a stale default would deploy silently."""
    assert "Default" not in baked.app["Parameters"]["ImageUri"]


@pytest.mark.parametrize(
    ("overrides", "broken"),
    [
        ({"ContainerCpu": "256", "ContainerMemory": "4096"}, "256 CPU units"),
        ({"ContainerCpu": "512", "ContainerMemory": "512"}, "512 CPU units"),
        ({"ContainerCpu": "1024", "ContainerMemory": "16384"}, "1024 CPU units"),
        ({"ContainerCpu": "2048", "ContainerMemory": "2048"}, "2048 CPU units"),
        ({"SignIn": "oidc"}, "SignIn=oidc needs OidcMetadataUrl"),
        ({**OIDC, "OidcClientSecretArn": ""}, "SignIn=oidc needs OidcMetadataUrl"),
        ({"OidcClientId": "abc"}, "used only with SignIn=oidc"),
        ({**OIDC, "SignIn": "cognito"}, "used only with SignIn=oidc"),
        ({"SignIn": "disabled", "AllowedEmailDomains": "example.com"}, "needs sign-in"),
        ({"CustomDomainName": "chat.example.com"}, "go together"),
        ({"CustomDomainCertificateArn": CERTIFICATE}, "go together"),
        ({"ExistingVpcId": "vpc-0123abcd"}, "ExistingPublicSubnet1"),
        ({**APP_OPTIONS["existing-vpc"], "TaskSubnets": "private"}, "ExistingPrivateSubnet1"),
        ({"ExistingPublicSubnet1": "subnet-0123abcd"}, "only together with ExistingVpcId"),
        ({"MonthlyBudgetUsd": "100", "AlarmEmail": ""}, "set AlarmEmail too"),
    ],
)
def test_rules_reject_inconsistent_options(
    default_baked: Baked, overrides: dict[str, str], broken: str
) -> None:
    failed = Evaluator(default_baked.app, overrides).failed_rules()
    assert len(failed) == 1
    assert broken in failed[0]


@pytest.mark.parametrize(
    ("region", "prefix_list"),
    [("us-east-1", "pl-3b927c52"), ("eu-west-1", "pl-4fa04526"), ("ap-southeast-2", "pl-b8a742d1")],
)
def test_load_balancer_admits_the_regions_cloudfront_prefix_list(
    default_baked: Baked, region: str, prefix_list: str
) -> None:
    evaluator = Evaluator(default_baked.app, Region=region)
    assert evaluator.failed_rules() == []
    ingress = evaluator.value(
        default_baked.app["Resources"]["LoadBalancerHttpFromCloudFront"]["Properties"]
    )
    assert ingress["SourcePrefixListId"] == prefix_list


def test_rules_reject_a_region_without_a_known_prefix_list(default_baked: Baked) -> None:
    (failed,) = Evaluator(default_baked.app, Region="af-south-1").failed_rules()
    assert "CloudFrontOriginFacing" in failed


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_rules_accept_every_supported_option(default_baked: Baked, option: str) -> None:
    assert Evaluator(default_baked.app, APP_OPTIONS[option]).failed_rules() == []


def test_committed_parameters_fit_the_template(baked: Baked) -> None:
    """app-parameters.json: every parameter but ImageUri, flat strings without spaces (the
    workflow passes them as Key=Value words), each accepted by its constraint and the Rules."""
    chosen = json.loads((baked.infra / "app-parameters.json").read_text())
    parameters = baked.app["Parameters"]
    assert set(chosen) == set(parameters) - {"ImageUri"}
    for name, value in chosen.items():
        assert isinstance(value, str), name
        assert not re.search(r"\s", value), name
        assert accepts(parameters[name], value), f"{name}={value!r}"
    assert Evaluator(baked.app, chosen).failed_rules() == []


# --------------------------------------------------------------------------------------------------
# App stack: the decisive settings


def resources_of(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == type_name}


def only(template: dict[str, Any], type_name: str) -> dict[str, Any]:
    (resource,) = resources_of(template, type_name).values()
    return resource["Properties"]


def test_load_balancer_suits_streamlit(baked: Baked) -> None:
    alb = Evaluator(baked.app).value(only(baked.app, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
    attributes = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert int(attributes["idle_timeout.timeout_seconds"]) >= 120  # long-lived websockets
    assert alb["Scheme"] == "internal"
    # AWS refuses load balancer names that begin with "internal-"; 32 characters at most.
    assert not alb["Name"].startswith("internal-")
    assert len(alb["Name"].replace("stack", f"{baked.slug}-app")) <= 32

    group = only(baked.app, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert group["HealthCheckPath"] == "/_stcore/health"
    assert (group["Port"], group["TargetType"]) == (8501, "ip")
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    assert 10 <= int(attributes["deregistration_delay.timeout_seconds"]) <= 60


def ingress_rules(
    template: dict[str, Any], evaluator: Evaluator
) -> list[tuple[Any, dict[str, Any]]]:
    """(group, rule) for every inbound rule, inline or separate, that these parameters create."""
    rules = []
    for name, spec in template["Resources"].items():
        if not evaluator.exists(name):
            continue
        if spec["Type"] == "AWS::EC2::SecurityGroup":
            for rule in evaluator.value(spec["Properties"].get("SecurityGroupIngress", [])):
                rules.append((f"<{name}.GroupId>", rule))
        if spec["Type"] == "AWS::EC2::SecurityGroupIngress":
            rule = evaluator.value(spec["Properties"])
            rules.append((rule["GroupId"], rule))
    return rules


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_no_origin_is_reachable_from_the_internet(default_baked: Baked, option: str) -> None:
    """Under every option: one internal load balancer, one HTTP listener that forwards to the
    tasks, and the only way in is CloudFront's origin-facing prefix list; no rule anywhere admits
    an address range, let alone 0.0.0.0/0."""
    evaluator = Evaluator(default_baked.app, APP_OPTIONS[option])
    for group, rule in ingress_rules(default_baked.app, evaluator):
        assert "CidrIp" not in rule and "CidrIpv6" not in rule, (group, rule)
    balancer = only(default_baked.app, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert evaluator.value(balancer["Scheme"]) == "internal"
    balancer_ingress = [
        rule
        for group, rule in ingress_rules(default_baked.app, evaluator)
        if group == "<LoadBalancerSecurityGroup.GroupId>"
    ]
    assert balancer_ingress == [
        {
            "GroupId": "<LoadBalancerSecurityGroup.GroupId>",
            "IpProtocol": "tcp",
            "FromPort": 80,
            "ToPort": 80,
            "SourcePrefixListId": "pl-3b927c52",
            "Description": "HTTP from CloudFront (VPC origin) only",
        }
    ]
    listeners = resources_of(default_baked.app, "AWS::ElasticLoadBalancingV2::Listener")
    assert [evaluator.value(spec["Properties"]) for spec in listeners.values()] == [
        {
            "LoadBalancerArn": "<LoadBalancer>",
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": "<TargetGroup>"}],
        }
    ]
    assert not resources_of(default_baked.app, "AWS::ElasticLoadBalancingV2::ListenerRule")


def test_cloudfront_reaches_the_load_balancer_through_a_vpc_origin(baked: Baked) -> None:
    evaluator = Evaluator(baked.app)
    resources = baked.app["Resources"]
    endpoint = evaluator.value(resources["VpcOrigin"]["Properties"])["VpcOriginEndpointConfig"]
    assert endpoint["Arn"] == "<LoadBalancer>"
    assert endpoint["OriginProtocolPolicy"] == "http-only"
    assert endpoint["HTTPPort"] == 80

    config = evaluator.value(resources["Distribution"]["Properties"])["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == "<LoadBalancer.DNSName>"
    assert origin["VpcOriginConfig"]["VpcOriginId"] == "<VpcOrigin.Id>"
    assert "CustomOriginConfig" not in origin
    assert "OriginCustomHeaders" not in origin  # no shared header secret
    behavior = config["DefaultCacheBehavior"]
    assert behavior["TargetOriginId"] == origin["Id"]
    assert behavior["CachePolicyId"] == CACHING_DISABLED
    assert behavior["OriginRequestPolicyId"] == ALL_VIEWER
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert "POST" in behavior["AllowedMethods"]
    assert not resources_of(baked.app, "AWS::SecretsManager::Secret").keys() - {
        "CookieSecret",
        "CognitoClientSecret",
    }


def test_new_vpc_gives_the_load_balancer_subnets_without_internet_routes(baked: Baked) -> None:
    """CloudFront needs an internet gateway on the VPC (not a route): the load balancer's subnets
    wait for the attachment and use a route table with no route of their own."""
    resources = baked.app["Resources"]
    evaluator = Evaluator(baked.app)
    balancer = evaluator.value(only(baked.app, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
    assert balancer["Subnets"] == ["<LoadBalancerSubnet1>", "<LoadBalancerSubnet2>"]
    for name in ("LoadBalancerSubnet1", "LoadBalancerSubnet2"):
        assert resources[name]["DependsOn"] == "GatewayAttachment"
        association = next(
            spec["Properties"]
            for spec in resources_of(baked.app, "AWS::EC2::SubnetRouteTableAssociation").values()
            if spec["Properties"]["SubnetId"] == {"Ref": name}
        )
        assert association["RouteTableId"] == {"Ref": "LoadBalancerRouteTable"}
    routes = resources_of(baked.app, "AWS::EC2::Route").values()
    assert {"Ref": "LoadBalancerRouteTable"} not in [
        r["Properties"]["RouteTableId"] for r in routes
    ]
    cidrs = [
        evaluator.value(spec["Properties"]["CidrBlock"])
        for spec in resources_of(baked.app, "AWS::EC2::Subnet").values()
    ]
    assert sorted(cidrs) == [f"<cidr {i}>" for i in range(6)]  # six distinct /24 blocks


def app_url(baked: Baked, overrides: dict[str, str]) -> str:
    return str(Evaluator(baked.app, overrides).value(baked.app["Outputs"]["AppUrl"]["Value"]))


def test_every_option_serves_https(baked: Baked) -> None:
    for option, overrides in APP_OPTIONS.items():
        expected = (
            "https://chat.example.com"
            if option == "custom-domain"
            else "https://<Distribution.DomainName>"
        )
        assert app_url(baked, overrides) == expected, option
    config = Evaluator(baked.app, APP_OPTIONS["custom-domain"]).value(
        baked.app["Resources"]["Distribution"]["Properties"]
    )["DistributionConfig"]
    assert config["Aliases"] == ["chat.example.com"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CERTIFICATE,
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    default = Evaluator(baked.app).value(baked.app["Resources"]["Distribution"]["Properties"])
    assert "Aliases" not in default["DistributionConfig"]
    assert default["DistributionConfig"]["ViewerCertificate"] == {
        "CloudFrontDefaultCertificate": True
    }


def test_service_lets_autoscaling_own_the_count(baked: Baked) -> None:
    service_spec = baked.app["Resources"]["Service"]
    service = service_spec["Properties"]
    assert "DesiredCount" not in service
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    assert 30 <= service["HealthCheckGracePeriodSeconds"] <= 120
    assert {"HttpListener", "MountTarget1", "MountTarget2"} <= set(service_spec["DependsOn"])
    assert service["LaunchType"] == "FARGATE"

    target = only(baked.app, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        {"Ref": "MinTasks"},
        {"Ref": "MaxTasks"},
    )
    metrics = {
        policy["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]
        for policy in resources_of(baked.app, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization"}


def container(baked: Baked) -> tuple[dict[str, Any], dict[str, Any]]:
    task = only(baked.app, "AWS::ECS::TaskDefinition")
    (definition,) = task["ContainerDefinitions"]
    return task, definition


def test_task_runs_arm64_with_sessions_on_efs(baked: Baked) -> None:
    task, definition = container(baked)
    assert task["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    parameters = baked.app["Parameters"]
    assert (task["Cpu"], task["Memory"]) == ({"Ref": "ContainerCpu"}, {"Ref": "ContainerMemory"})
    assert (parameters["ContainerCpu"]["Default"], parameters["ContainerMemory"]["Default"]) == (
        "256",
        "512",
    )
    assert task["ExecutionRoleArn"] != task["TaskRoleArn"]

    volumes = {volume["Name"]: volume for volume in task["Volumes"]}
    assert set(volumes) == {"sessions", "runtime"}
    efs = volumes["sessions"]["EFSVolumeConfiguration"]
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"] == {"AccessPointId": {"Ref": "AccessPoint"}, "IAM": "ENABLED"}
    assert efs["FilesystemId"] == {"Ref": "FileSystem"}
    # RUNTIME_DIR: task storage (no host path, no EFS), where serve.py writes secrets.toml.
    assert volumes["runtime"] == {"Name": "runtime"}
    mounts = {
        m["SourceVolume"]: (m["ContainerPath"], m["ReadOnly"]) for m in definition["MountPoints"]
    }
    assert mounts == {"sessions": ("/data/sessions", False), "runtime": ("/run/app", False)}

    environment = Evaluator(baked.app).value(definition["Environment"])
    env = {item["Name"]: item["Value"] for item in environment}
    assert env["SESSIONS_DIR"] == "/data/sessions"
    assert env["LLM_PROVIDER"] == "bedrock"
    assert env["AWS_REGION"] == "us-east-1"  # the pseudo parameter, evaluated
    assert env["RUNTIME_DIR"] == "/run/app"
    assert definition["PortMappings"] == [{"ContainerPort": 8501, "Protocol": "tcp"}]
    assert definition["Image"] == {"Ref": "ImageUri"}

    # The container user owns the access point's directory: same uid and gid.
    assert definition["User"] == "10001:10001"
    assert definition["ReadonlyRootFilesystem"] is True
    point = only(baked.app, "AWS::EFS::AccessPoint")
    assert point["PosixUser"] == {"Uid": "10001", "Gid": "10001"}
    creation = point["RootDirectory"]["CreationInfo"]
    assert (creation["OwnerUid"], creation["OwnerGid"]) == ("10001", "10001")
    assert point["RootDirectory"]["Path"] != "/"


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_secrets_never_travel_as_plain_environment(default_baked: Baked, option: str) -> None:
    _, definition = container(default_baked)
    evaluator = Evaluator(default_baked.app, APP_OPTIONS[option])
    names = [item["Name"] for item in evaluator.value(definition["Environment"])]
    # DAILY_TOKEN_LIMIT counts model tokens: a limit, not a credential.
    assert not [n for n in names if re.search("SECRET|PASSWORD|TOKEN(?!_LIMIT$)|KEY", n)]
    assert "resolve:secretsmanager" not in json.dumps(definition["Environment"])
    secrets = {s["Name"]: s["ValueFrom"] for s in evaluator.value(definition["Secrets"])}
    assert secrets.pop("STREAMLIT_SERVER_COOKIE_SECRET") == "<CookieSecret>"
    expected = {
        "oidc": {"OIDC_CLIENT_SECRET": OIDC_SECRET},
        "sign-in-disabled": {},
    }.get(option, {"OIDC_CLIENT_SECRET": "<CognitoClientSecret>"})
    assert secrets == expected
    cookie = default_baked.app["Resources"]["CookieSecret"]["Properties"]
    assert cookie["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in cookie


def environment(baked: Baked, overrides: dict[str, str]) -> dict[str, str]:
    _, definition = container(baked)
    entries = Evaluator(baked.app, overrides).value(definition["Environment"])
    return {item["Name"]: item["Value"] for item in entries}


AUTH_NAMES = {
    "AUTH_MODE",
    "OIDC_SERVER_METADATA_URL",
    "OIDC_CLIENT_ID",
    "OIDC_REDIRECT_URI",
    "OIDC_LOGOUT_URL",
    "ALLOWED_EMAIL_DOMAINS",
}


def test_sign_in_is_cognito_by_default(baked: Baked) -> None:
    """The defaults (and the committed parameters) sign people in through the stack's user pool,
    with the exact URLs the app and Cognito must agree on."""
    assert baked.app["Parameters"]["SignIn"]["Default"] == "cognito"
    committed = json.loads((baked.infra / "app-parameters.json").read_text())
    assert committed["SignIn"] == "cognito"
    env = environment(baked, {})
    host = "<Distribution.DomainName>"
    prefix = f"{baked.slug}-app-123456789012"
    assert {k: v for k, v in env.items() if k in AUTH_NAMES} == {
        "AUTH_MODE": "oidc",
        "OIDC_SERVER_METADATA_URL": (
            "https://cognito-idp.us-east-1.amazonaws.com/<UserPool>/.well-known/openid-configuration"
        ),
        "OIDC_CLIENT_ID": "<UserPoolClient>",
        "OIDC_REDIRECT_URI": f"https://{host}/oauth2callback",
        "OIDC_LOGOUT_URL": (
            f"https://{prefix}.auth.us-east-1.amazoncognito.com/logout"
            f"?client_id=<UserPoolClient>&logout_uri=https%3A%2F%2F{host}%2Fauth%2Flogout"
        ),
    }
    evaluator = Evaluator(baked.app)
    client = evaluator.value(baked.app["Resources"]["UserPoolClient"]["Properties"])
    logout = parse_qs(urlsplit(env["OIDC_LOGOUT_URL"]).query)
    assert logout == {"client_id": ["<UserPoolClient>"], "logout_uri": client["LogoutURLs"]}
    assert client["CallbackURLs"] == [env["OIDC_REDIRECT_URI"]]
    assert client["GenerateSecret"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert sorted(client["AllowedOAuthScopes"]) == ["email", "openid", "profile"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    domain = evaluator.value(baked.app["Resources"]["UserPoolDomain"]["Properties"])
    assert domain["Domain"] == prefix
    secret = baked.app["Resources"]["CognitoClientSecret"]["Properties"]
    assert secret["SecretString"] == {"Fn::GetAtt": ["UserPoolClient", "ClientSecret"]}
    assert evaluator.value(secret["Name"]).startswith("stack/")  # readable under the boundary


def test_user_pool_admits_only_people_an_administrator_adds(baked: Baked) -> None:
    spec = baked.app["Resources"]["UserPool"]
    assert (spec["DeletionPolicy"], spec["UpdateReplacePolicy"]) == ("Retain", "Retain")
    pool = spec["Properties"]
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert pool["DeletionProtection"] == "ACTIVE"
    assert (pool["MfaConfiguration"], pool["EnabledMfas"]) == ("ON", ["SOFTWARE_TOKEN_MFA"])
    password = pool["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 12
    assert all(password[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers"))


@pytest.mark.parametrize("slug", ["aws-chat", "amazon-cognito-bot", "laws-helper"])
def test_cognito_domain_prefix_avoids_reserved_words(bake: Baker, slug: str) -> None:
    """Cognito refuses prefixes containing aws, amazon or cognito; the stack name is rewritten."""
    baked = Baked(slug, bake(project_slug=slug), {"project_slug": slug})
    domain = Evaluator(baked.app).value(baked.app["Resources"]["UserPoolDomain"]["Properties"])
    prefix = domain["Domain"]
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", prefix), prefix
    assert not re.search("aws|amazon|cognito", prefix), prefix
    assert prefix in environment(baked, {})["OIDC_LOGOUT_URL"]


def test_sign_in_through_the_companys_provider(default_baked: Baked) -> None:
    env = environment(default_baked, OIDC)
    assert {k: v for k, v in env.items() if k in AUTH_NAMES} == {
        "AUTH_MODE": "oidc",
        "OIDC_SERVER_METADATA_URL": OIDC["OidcMetadataUrl"],
        "OIDC_CLIENT_ID": OIDC["OidcClientId"],
        "OIDC_REDIRECT_URI": "https://<Distribution.DomainName>/oauth2callback",
        "OIDC_LOGOUT_URL": OIDC["OidcLogoutUrl"],
        "ALLOWED_EMAIL_DOMAINS": "contoso.com,example.org",
    }
    without_logout = environment(default_baked, {**OIDC, "OidcLogoutUrl": ""})
    assert "OIDC_LOGOUT_URL" not in without_logout  # the provider's end_session_endpoint
    evaluator = Evaluator(default_baked.app, OIDC)
    for name in ("UserPool", "UserPoolClient", "UserPoolDomain", "CognitoClientSecret"):
        assert not evaluator.exists(name), name
    # The execution role reads exactly the cookie secret and the administrator's secret.
    (read,) = [
        evaluator.value(s)
        for s in statements(default_baked.app["Resources"]["TaskExecutionRole"])
        if s["Action"] == "secretsmanager:GetSecretValue"
    ]
    assert read["Resource"] == ["<CookieSecret>", OIDC_SECRET]


def test_sign_in_can_be_turned_off_only_by_name(default_baked: Baked) -> None:
    env = environment(default_baked, {"SignIn": "disabled"})
    assert {k: v for k, v in env.items() if k in AUTH_NAMES} == {"AUTH_MODE": "none"}
    evaluator = Evaluator(default_baked.app, {"SignIn": "disabled"})
    assert not evaluator.exists("UserPool")
    (read,) = [
        evaluator.value(s)
        for s in statements(default_baked.app["Resources"]["TaskExecutionRole"])
        if s["Action"] == "secretsmanager:GetSecretValue"
    ]
    assert read["Resource"] == ["<CookieSecret>"]


def test_logs_are_kept_for_the_configured_time(baked: Baked) -> None:
    _, definition = container(baked)
    logging = definition["LogConfiguration"]
    assert logging["LogDriver"] == "awslogs"
    assert logging["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    group = baked.app["Resources"]["LogGroup"]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert baked.app["Resources"]["Cluster"]["Properties"]["ClusterSettings"] == [
        {"Name": "containerInsights", "Value": "enabled"}
    ]


def test_file_system_is_encrypted_backed_up_tls_only_and_retained(baked: Baked) -> None:
    spec = baked.app["Resources"]["FileSystem"]
    assert (spec["DeletionPolicy"], spec["UpdateReplacePolicy"]) == ("Retain", "Retain")
    fs = spec["Properties"]
    assert fs["Encrypted"] is True
    assert fs["ThroughputMode"] == "elastic"
    assert fs["BackupPolicy"] == {"Status": "ENABLED"}
    assert {"TransitionToIA": "AFTER_30_DAYS"} in fs["LifecyclePolicies"]
    (deny,) = fs["FileSystemPolicy"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    # NFS reaches the file system from the tasks' security group and nowhere else.
    group = baked.app["Resources"]["FileSystemSecurityGroup"]["Properties"]
    assert group["SecurityGroupIngress"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 2049,
            "ToPort": 2049,
            "SourceSecurityGroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
            "Description": "NFS from the app tasks",
        }
    ]
    for target in resources_of(baked.app, "AWS::EFS::MountTarget").values():
        assert target["Properties"]["SecurityGroups"] == [
            {"Fn::GetAtt": ["FileSystemSecurityGroup", "GroupId"]}
        ]


def test_tasks_accept_traffic_from_the_load_balancer_only(baked: Baked) -> None:
    ingress = [
        r["Properties"]
        for r in resources_of(baked.app, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]}
    ]
    assert ingress == [
        {
            "GroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
            "IpProtocol": "tcp",
            "FromPort": 8501,
            "ToPort": 8501,
            "SourceSecurityGroupId": {"Fn::GetAtt": ["LoadBalancerSecurityGroup", "GroupId"]},
            "Description": "Streamlit from the load balancer",
        }
    ]
    assert "SecurityGroupIngress" not in baked.app["Resources"]["TaskSecurityGroup"]["Properties"]


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_network_option_places_tasks_and_mount_targets_together(
    default_baked: Baked, option: str
) -> None:
    """Each option puts the tasks in two subnets that both have a mount target, and gives tasks
    a public IP exactly when they sit in public subnets."""
    overrides = APP_OPTIONS[option]
    evaluator = Evaluator(default_baked.app, overrides)
    resources = default_baked.app["Resources"]
    network = evaluator.value(resources["Service"]["Properties"]["NetworkConfiguration"])
    config = network["AwsvpcConfiguration"]
    mount_subnets = [
        evaluator.value(resources[name]["Properties"]["SubnetId"])
        for name in ("MountTarget1", "MountTarget2")
    ]
    assert config["Subnets"] == mount_subnets
    private = overrides.get("TaskSubnets") == "private"
    assert config["AssignPublicIp"] == ("DISABLED" if private else "ENABLED")
    assert evaluator.exists("NatGateway") == (private and "ExistingVpcId" not in overrides)
    assert evaluator.exists("Vpc") == ("ExistingVpcId" not in overrides)
    if "ExistingVpcId" in overrides:
        prefix = "ExistingPrivateSubnet" if private else "ExistingPublicSubnet"
        assert config["Subnets"] == [overrides[f"{prefix}1"], overrides[f"{prefix}2"]]
        # The internal load balancer sits in the private subnets whenever there are some.
        balancer = only(default_baked.app, "AWS::ElasticLoadBalancingV2::LoadBalancer")
        given = "ExistingPrivateSubnet1" in overrides
        prefix = "ExistingPrivateSubnet" if given else "ExistingPublicSubnet"
        assert evaluator.value(balancer["Subnets"]) == [
            overrides[f"{prefix}1"],
            overrides[f"{prefix}2"],
        ]


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_service_starts_after_whatever_routes_to_it(default_baked: Baked, option: str) -> None:
    """ECS refuses a target group that no listener uses yet, so the service must depend on the
    listener or rule that forwards to it under every option (DependsOn cannot be conditional)."""
    evaluator = Evaluator(default_baked.app, APP_OPTIONS[option])
    resources = default_baked.app["Resources"]
    routes = set()
    for name, spec in resources.items():
        if spec["Type"].startswith("AWS::ElasticLoadBalancingV2::Listener") and evaluator.exists(
            name
        ):
            properties = evaluator.value(spec["Properties"])
            actions = properties.get("DefaultActions", []) + properties.get("Actions", [])
            if {"Type": "forward", "TargetGroupArn": "<TargetGroup>"} in actions:
                routes.add(name)
    assert routes
    service = resources["Service"]
    evaluated = json.dumps(evaluator.value(service["Properties"]))
    dependencies = set(service["DependsOn"]) | set(re.findall(r"<(\w+)>", evaluated))
    assert routes & dependencies, (routes, dependencies)


def dependencies(evaluator: Evaluator, resources: dict[str, Any], name: str) -> set[str]:
    """Every resource ``name`` waits for under these parameters: DependsOn, and Ref/GetAtt/Sub in
    its Properties and Metadata (CloudFormation orders by both), followed transitively."""
    found: set[str] = set()
    pending = [name]
    while pending:
        spec = resources[pending.pop()]
        evaluated = json.dumps(
            evaluator.value({k: spec.get(k) for k in ("Properties", "Metadata")})
        )
        direct = set(as_list(spec.get("DependsOn", []))) | set(re.findall(r"<(\w+)[.>]", evaluated))
        for dependency in direct - found:
            if dependency in resources and evaluator.exists(dependency):
                found.add(dependency)
                pending.append(dependency)
    return found


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_load_balancer_waits_for_the_internet_gateway(default_baked: Baked, option: str) -> None:
    """Issue 9, item 1. CloudFormation's DependsOn page ("When a DependsOn attribute is
    required"): a public load balancer in a new VPC fails ("VPC has no internet gateway") unless
    it waits for the gateway attachment; its subnets must also route to the gateway."""
    evaluator = Evaluator(default_baked.app, {"ImageUri": IMAGE, **APP_OPTIONS[option]})
    resources = default_baked.app["Resources"]
    waits_for = dependencies(evaluator, resources, "LoadBalancer")
    if evaluator.exists("GatewayAttachment"):
        expected = {"GatewayAttachment", "PublicDefaultRoute"}
        expected |= {"PublicSubnet1Routes", "PublicSubnet2Routes"}
        assert expected <= waits_for, waits_for


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_service_waits_for_the_route_its_tasks_pull_through(
    default_baked: Baked, option: str
) -> None:
    """Issue 9, item 7. A task pulls its image from ECR at start: through the internet gateway
    (public subnets) or the NAT gateway (private subnets), so the routes must exist first."""
    evaluator = Evaluator(default_baked.app, {"ImageUri": IMAGE, **APP_OPTIONS[option]})
    resources = default_baked.app["Resources"]
    waits_for = dependencies(evaluator, resources, "Service")
    needed = {
        name
        for name in resources
        if evaluator.exists(name)
        and resources[name]["Type"]
        in {
            "AWS::EC2::Route",
            "AWS::EC2::SubnetRouteTableAssociation",
            "AWS::EC2::VPCGatewayAttachment",
        }
    }
    if evaluator.exists("NatGateway"):
        assert "PrivateDefaultRoute" in needed
    assert needed <= waits_for, needed - waits_for


def bedrock_statements(baked: Baked, overrides: dict[str, str]) -> list[dict[str, Any]]:
    evaluator = Evaluator(baked.app, overrides)
    return [
        evaluator.value(statement)
        for statement in statements(baked.app["Resources"]["TaskRole"])
        if "bedrock" in json.dumps(statement["Action"])
    ]


@pytest.mark.parametrize(
    ("geography", "models", "regions"),
    [
        ("us", ["amazon.nova-lite-v1:0"], "us-*"),
        ("eu", ["amazon.nova-lite-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0"], "eu-*"),
        (
            "apac",
            ["amazon.nova-pro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-micro-v1:0"],
            "ap-*",
        ),
    ],
)
def test_bedrock_is_scoped_to_the_configured_models(
    default_baked: Baked, geography: str, models: list[str], regions: str
) -> None:
    overrides = {"BedrockGeography": geography, "BedrockModels": ",".join(models)}
    profiles, foundation = bedrock_statements(default_baked, overrides)
    invoke = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    assert profiles["Action"] == foundation["Action"] == invoke
    profile_arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    assert profiles["Resource"] == [f"{profile_arn}{geography}.{m}" for m in models]
    assert "Condition" not in profiles
    assert foundation["Resource"] == [
        f"arn:aws:bedrock:{regions}::foundation-model/{m}" for m in models
    ]
    # Foundation models only through this account's profiles of that geography.
    assert foundation["Condition"] == {
        "StringLike": {"bedrock:InferenceProfileArn": f"{profile_arn}{geography}.*"}
    }

    _, definition = container(default_baked)
    env = Evaluator(default_baked.app, overrides).value(definition["Environment"])
    ids = next(item["Value"] for item in env if item["Name"] == "BEDROCK_MODEL_IDS")
    assert ids == ",".join(f"{geography}.{m}" for m in models)


def test_default_model_comes_from_the_answers(baked: Baked) -> None:
    overrides = json.loads((baked.infra / "app-parameters.json").read_text())
    _, definition = container(baked)
    env = Evaluator(baked.app, overrides).value(definition["Environment"])
    ids = next(item["Value"] for item in env if item["Name"] == "BEDROCK_MODEL_IDS")
    model = baked.answers.get("bedrock_model_id")
    if model is None:
        geography = {"eu": "eu", "ap": "apac"}.get(baked.answers.get("aws_region", "us")[:2], "us")
        model = f"{geography}.amazon.nova-lite-v1:0"
    assert ids == model


def test_task_role_reaches_sessions_through_the_access_point_only(baked: Baked) -> None:
    (efs,) = [
        s
        for s in statements(baked.app["Resources"]["TaskRole"])
        if "elasticfilesystem" in json.dumps(s["Action"])
    ]
    assert sorted(efs["Action"]) == [
        "elasticfilesystem:ClientMount",
        "elasticfilesystem:ClientWrite",
    ]
    assert efs["Resource"] == {"Fn::GetAtt": ["FileSystem", "Arn"]}
    assert efs["Condition"] == {
        "StringEquals": {"elasticfilesystem:AccessPointArn": {"Fn::GetAtt": ["AccessPoint", "Arn"]}}
    }


def test_app_roles_carry_the_bootstrap_boundary(baked: Baked) -> None:
    boundary = baked.bootstrap["Resources"]["AppPermissionsBoundary"]["Properties"]
    name = boundary["ManagedPolicyName"]
    for role_name, role in resources_of(baked.app, "AWS::IAM::Role").items():
        arn = Evaluator(baked.app).value(role["Properties"]["PermissionsBoundary"])
        assert arn == f"arn:aws:iam::123456789012:policy/{name}", role_name
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        # The task roles are ECS's; the purge schedule's role is EventBridge Scheduler's.
        service = "scheduler" if role_name == "PurgeSchedulerRole" else "ecs-tasks"
        assert trust["Principal"] == {"Service": f"{service}.amazonaws.com"}, role_name
        assert trust["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        }
        for statement in statements(role):
            if statement["Resource"] == "*":
                assert statement["Action"] == "ecr:GetAuthorizationToken", role_name


def metric_names(value: Any) -> set[str]:
    """Every MetricName in a resource's properties (plain alarms and metric math alike)."""
    if isinstance(value, dict):
        found = {value["MetricName"]} if isinstance(value.get("MetricName"), str) else set()
        return found.union(*(metric_names(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(metric_names(v) for v in value))
    return set()


def test_alarms_cover_errors_health_cpu_and_memory(baked: Baked) -> None:
    alarms = resources_of(baked.app, "AWS::CloudWatch::Alarm").values()
    metrics = {name: a["Properties"] for a in alarms for name in metric_names(a)}
    assert set(metrics) >= {
        "HTTPCode_Target_5XX_Count",
        "UnHealthyHostCount",
        "HealthyHostCount",
        "CPUUtilization",
        "MemoryUtilization",
        "Errors",
        "Turns",
        "Tokens",
    }
    for alarm in metrics.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    subscription = baked.app["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_outputs_the_live_review_reads(baked: Baked) -> None:
    assert set(baked.app["Outputs"]) >= {
        "AppUrl",
        "ClusterName",
        "ServiceName",
        "LogGroupName",
        "AlarmTopicArn",
        "FileSystemId",
        "TargetGroupArn",
        "DistributionDomainName",
        "SignIn",
    }


# --------------------------------------------------------------------------------------------------
# Bootstrap stack


def github_subjects(baked: Baked) -> tuple[dict[str, Any], list[str]]:
    (trust,) = baked.bootstrap["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    return trust, trust["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"]


def test_deploy_role_trusts_only_the_production_environment_of_one_repository(
    baked: Baked,
) -> None:
    """Issue 9, item 5: a ``ref:refs/heads/main`` subject let any job on main assume the role
    and skip the production environment's required reviewers (GitHub's OIDC docs: with an
    environment the subject is ``repo:OWNER/REPO:environment:NAME``)."""
    trust, subjects = github_subjects(baked)
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com"
    }
    assert set(trust["Condition"]) == {"StringEquals", "StringLike"}
    repository = baked.answers.get("github_repository", f"my-org/{baked.slug}")
    owner, name = repository.split("/")

    def allowed(subject: str) -> bool:  # IAM StringLike: "*" any run, "?" one character
        return any(fnmatch.fnmatchcase(subject, pattern) for pattern in subjects)

    for subject in [
        f"repo:{repository}:environment:production",
        f"repo:{owner}@1234/{name}@5678:environment:production",
    ]:
        assert allowed(subject), subject
    for subject in [
        f"repo:{repository}:ref:refs/heads/main",
        f"repo:{owner}@1234/{name}@5678:ref:refs/heads/main",
        f"repo:{repository}:ref:refs/heads/feature",
        f"repo:{repository}:pull_request",
        f"repo:{repository}:environment:staging",
        f"repo:{repository}-fork:ref:refs/heads/main",
        f"repo:{owner}-evil/{name}:ref:refs/heads/main",
        f"repo:evil/{name}:ref:refs/heads/main",
        f"repo:{owner}@1234/{name}-fork@5678:ref:refs/heads/main",
        f"repo:{owner}@1234/{name}@5678:ref:refs/heads/main-old",
        f"repo:{repository}:ref:refs/tags/main",
    ]:
        assert not allowed(subject), subject


def test_oidc_provider_is_created_only_when_asked(baked: Baked) -> None:
    resources = baked.bootstrap["Resources"]
    assert resources["GitHubOidcProvider"]["Condition"] == "CreateOidcProvider"
    for value, created in (("true", True), ("false", False)):
        evaluator = Evaluator(baked.bootstrap, {"CreateGitHubOidcProvider": value})
        assert evaluator.exists("GitHubOidcProvider") is created
        trust, _ = github_subjects(baked)
        principal = evaluator.value(trust["Principal"]["Federated"])
        expected = (
            "<GitHubOidcProvider>"
            if created
            else "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        )
        assert principal == expected


def test_bootstrap_stack_can_be_recreated_around_its_retained_repository(baked: Baked) -> None:
    """Issue 9, item 4: the repository keeps a fixed name and is retained, so creating the
    bootstrap stack again failed on "already exists". CreateEcrRepository=false reuses it: every
    policy and output then names the retained repository."""
    repository_arn = f"arn:aws:ecr:us-east-1:123456789012:repository/{baked.slug}"
    for create in ("true", "false"):
        evaluator = Evaluator(baked.bootstrap, {"CreateEcrRepository": create})
        assert evaluator.exists("Repository") is (create == "true")
        outputs = {k: evaluator.value(v["Value"]) for k, v in baked.bootstrap["Outputs"].items()}
        assert outputs["EcrRepositoryName"] == baked.slug
        assert (
            outputs["EcrRepositoryUri"]
            == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{baked.slug}"
        )
        resources = evaluator.value(
            {k: v for k, v in baked.bootstrap["Resources"].items() if evaluator.exists(k)}
        )
        text = json.dumps(resources)
        assert "<Repository" not in text
        assert text.count(repository_arn) >= 2  # the boundary's pull and the deploy role's push


def test_ecr_repository_is_immutable_scanned_encrypted_and_retained(baked: Baked) -> None:
    spec = baked.bootstrap["Resources"]["Repository"]
    assert (spec["DeletionPolicy"], spec["UpdateReplacePolicy"]) == ("Retain", "Retain")
    repository = spec["Properties"]
    assert repository["RepositoryName"] == baked.slug
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["EncryptionConfiguration"]["EncryptionType"] in {"KMS", "AES256"}
    policy = Evaluator(baked.bootstrap).value(repository["LifecyclePolicy"]["LifecyclePolicyText"])
    rules = json.loads(policy)["rules"]
    assert {rule["selection"]["tagStatus"] for rule in rules} == {"untagged", "any"}
    assert any(rule["selection"].get("countNumber") == 30 for rule in rules)


def test_template_bucket_is_private_encrypted_tls_only_and_short_lived(baked: Baked) -> None:
    """The bucket the deploy stages app.yaml in: generated name (a re-created bootstrap stack
    cannot collide with a kept bucket), no public access, no ACLs, encrypted, versioned, TLS only,
    and objects that expire, since CloudFormation keeps its own copy of each template."""
    spec = baked.bootstrap["Resources"]["TemplateBucket"]
    assert (spec["DeletionPolicy"], spec["UpdateReplacePolicy"]) == ("Retain", "Retain")
    bucket = spec["Properties"]
    assert "BucketName" not in bucket
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert all(rule["Status"] == "Enabled" and "Prefix" not in rule for rule in rules)
    (expiry,) = [rule for rule in rules if "ExpirationInDays" in rule]
    assert 1 <= expiry["ExpirationInDays"] <= 30
    assert 1 <= expiry["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 30
    assert expiry["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    assert any(rule.get("ExpiredObjectDeleteMarker") is True for rule in rules)

    evaluator = Evaluator(baked.bootstrap)
    (policy,) = [
        evaluator.value(spec["Properties"])
        for spec in baked.bootstrap["Resources"].values()
        if spec["Type"] == "AWS::S3::BucketPolicy"
    ]
    assert policy["Bucket"] == "<TemplateBucket>"
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert (statement["Principal"], statement["Action"]) == ("*", "s3:*")
    assert sorted(statement["Resource"]) == ["<TemplateBucket.Arn>", "<TemplateBucket.Arn>/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def deploy_statements(baked: Baked) -> list[dict[str, Any]]:
    return [
        Evaluator(baked.bootstrap).value(s)
        for s in statements(baked.bootstrap["Resources"]["DeployRole"])
    ]


def test_deploy_role_is_least_privilege(baked: Baked) -> None:
    app_stack = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{baked.slug}-app/*"
    by_action: dict[str, list[dict[str, Any]]] = {}
    for statement in deploy_statements(baked):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, []).append(statement)

    # "*" only where the action has no resource-level permissions, and never to write or to
    # read secret values.
    wildcard = {a for a, ss in by_action.items() if any(s["Resource"] == "*" for s in ss)}
    assert "ecr:GetAuthorizationToken" in wildcard
    assert all(re.fullmatch(r"[a-z0-9-]+:(Describe|Get|List)\w*", a) for a in wildcard), wildcard
    assert "secretsmanager:GetSecretValue" not in by_action
    for action, found in by_action.items():
        if action.startswith("ecr:") and action != "ecr:GetAuthorizationToken":
            assert [s["Resource"] for s in found] == [
                f"arn:aws:ecr:us-east-1:123456789012:repository/{baked.slug}"
            ], action

    # Everything "aws cloudformation deploy" calls, on the one app stack only.
    deploy_calls = {
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
        "cloudformation:GetTemplateSummary",
    }
    assert deploy_calls <= set(by_action)
    for action, found in by_action.items():
        if action.startswith("cloudformation:") and action != "cloudformation:DescribeStacks":
            assert [s["Resource"] for s in found] == [app_stack], action
    bootstrap_stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/0000"
    stacks = sorted(s["Resource"] for s in by_action["cloudformation:DescribeStacks"])
    assert stacks == sorted([app_stack, bootstrap_stack])
    (create,) = by_action["cloudformation:CreateChangeSet"]
    assert create["Condition"] == {
        "StringEquals": {"cloudformation:RoleArn": "<CloudFormationExecutionRole.Arn>"}
    }
    (pass_role,) = by_action["iam:PassRole"]
    assert pass_role["Resource"] == "<CloudFormationExecutionRole.Arn>"
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
    }
    assert not [a for a in by_action if a.endswith("*") or a.startswith(("iam:Create", "iam:Put"))]

    # `aws cloudformation deploy --s3-bucket`: HeadObject and CloudFormation's read of the
    # TemplateURL (s3:GetObject), the upload (s3:PutObject); under the app stack's prefix of the
    # template bucket only, and nothing else in S3 (no listing, no deleting).
    s3 = {action for action in by_action if action.startswith("s3:")}
    assert s3 == {"s3:GetObject", "s3:PutObject"}
    for action in s3:
        assert [s["Resource"] for s in by_action[action]] == [
            f"<TemplateBucket.Arn>/{baked.slug}-app/*"
        ], action


def test_execution_role_is_confined_to_the_app_stack(baked: Baked) -> None:
    role = baked.bootstrap["Resources"]["CloudFormationExecutionRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    prefix = f"{baked.slug}-app"
    # Actions that support no resource-level permissions, or only ids that carry no name.
    unscoped_writes = {
        "ecs:RegisterTaskDefinition",
        "ecs:DeregisterTaskDefinition",
        "cognito-idp:CreateUserPool",
    }
    for statement in (
        Evaluator(baked.bootstrap).value(s) for s in statements({"Properties": role})
    ):
        actions = as_list(statement["Action"])
        resources = as_list(statement["Resource"])
        if statement["Effect"] == "Deny":
            continue
        if "*" in resources:
            read_only = re.compile(r"[a-z0-9-]+:(Describe|Get|List)\w*\*?$")
            assert {a for a in actions if not read_only.match(a)} <= unscoped_writes
        iam = [a for a in actions if a.startswith("iam:")]
        if iam and iam != ["iam:CreateServiceLinkedRole"]:
            assert resources == [f"arn:aws:iam::123456789012:role/{prefix}-*"], statement["Sid"]
        if {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"} & set(iam):
            assert statement["Condition"] == {
                "StringEquals": {"iam:PermissionsBoundary": "<AppPermissionsBoundary>"}
            }
        for resource in resources:
            for service in ("logs", "secretsmanager", "sns", "ecs", "elasticloadbalancing"):
                if resource.startswith(f"arn:aws:{service}:") and "task-definition" not in resource:
                    assert prefix in resource or "targetgroup/" in resource, resource
    deny = [s for s in statements({"Properties": role}) if s["Effect"] == "Deny"]
    assert {"iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"} <= {
        a for s in deny for a in as_list(s["Action"])
    }
    # The template in S3 is read by CloudFormation with the deploy role's credentials, when the
    # change set is created: this role needs nothing in S3 (the app stack has no bucket).
    assert not [
        a for s in statements({"Properties": role}) for a in as_list(s["Action"]) if "s3:" in a
    ]


def test_bootstrap_outputs_what_the_workflow_reads(baked: Baked) -> None:
    assert set(baked.bootstrap["Outputs"]) >= {
        "DeployRoleArn",
        "CloudFormationExecutionRoleArn",
        "EcrRepositoryUri",
        "EcrRepositoryName",
        "AppStackName",
        "TemplateBucketName",
    }
    assert baked.bootstrap["Outputs"]["AppStackName"]["Value"] == f"{baked.slug}-app"
    assert (
        Evaluator(baked.bootstrap).value(baked.bootstrap["Outputs"]["TemplateBucketName"]["Value"])
        == "<TemplateBucket>"
    )


def test_purge_schedule_runs_the_app_task_with_a_least_privilege_role(baked: Baked) -> None:
    """The daily retention purge: the app's own task definition in its own cluster, and a role
    that can do exactly that (start it, handing ECS the task's two roles)."""
    schedule = baked.app["Resources"]["PurgeSchedule"]["Properties"]
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    assert target["EcsParameters"]["TaskDefinitionArn"] == {"Ref": "TaskDefinition"}
    assert json.loads(target["Input"]) == {
        "containerOverrides": [{"name": "app", "command": ["purge"]}]
    }
    assert schedule["State"] == "ENABLED"
    run, pass_role = list(statements(baked.app["Resources"]["PurgeSchedulerRole"]))
    assert run == {
        "Effect": "Allow",
        "Action": "ecs:RunTask",
        "Resource": {"Ref": "TaskDefinition"},
        "Condition": {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["Cluster", "Arn"]}}},
    }
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Resource"] == [
        {"Fn::GetAtt": ["TaskRole", "Arn"]},
        {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]},
    ]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    _, definition = container(baked)
    environment = {e["Name"]: e["Value"] for e in definition["Environment"] if "Name" in e}
    for parameter, variable in [
        ("ConversationRetentionDays", "CONVERSATION_RETENTION_DAYS"),
        ("TrashRetentionDays", "TRASH_RETENTION_DAYS"),
        ("QuarantineRetentionDays", "QUARANTINE_RETENTION_DAYS"),
    ]:
        assert environment[variable] == {"Ref": parameter}
