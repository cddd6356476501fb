"""The bootstrap roles allow what CloudFormation and the deploy workflow will really call.

Issue 9, item 2. A missing permission shows only on a real deploy, as a failed (and rolled back)
stack. So, without an account:

- **Execution role.** For every resource type in the rendered ``infra/app.yaml`` (read from the
  template, so types added later are covered without editing this file), the permissions its
  CloudFormation resource handlers declare (``handlers.<create|read|update|delete>.permissions``
  in the resource schemas that cfn-lint ships, the same registry schemas CloudFormation uses)
  are checked against the execution role's policies, and its permissions boundary if it has one,
  with tests/support/iam_policy.py, for a resource ARN the app stack would create. ``list``
  handlers are not checked: CloudFormation calls them for resource discovery and import, never
  for a stack deploy.
- **Deploy role.** Every AWS call the deploy workflow makes (read from ``deploy.yml``'s ``aws``
  commands, plus what ``aws cloudformation deploy``, its ``--s3-bucket`` template upload, and the
  ECR login/push actions call) against the deploy role, with the condition values the workflow
  sends.

Each permission the roles deliberately do not grant is in an exceptions table with its reason.
Request context modelled: resources whose schema says CloudFormation tags them at creation
(``tagging.cloudFormationSystemTags`` and ``tagOnCreate``) carry
``aws:cloudformation:stack-name``; roles the stack creates carry the app permissions boundary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint
import yaml

from tests.support.cloudformation import Evaluator, load_template
from tests.support.iam_policy import Request, allowed_by_role, as_list

ACCOUNT, REGION = "123456789012", "us-east-1"
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
CHECKED_HANDLERS = ("create", "read", "update", "delete")
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/company-chat@sha256:" + "ab" * 32


@cache
def schema(resource_type: str) -> dict[str, Any]:
    """The registry schema of a resource type, as cfn-lint ships it (providers/<region>.json
    maps each type to a file under resources/)."""
    index = json.loads((SCHEMAS / "providers" / f"{REGION}.json").read_text())
    if resource_type not in index:
        raise KeyError(f"cfn-lint has no schema for {resource_type} in {REGION}")
    return json.loads((SCHEMAS / "resources" / f"{index[resource_type]}.json").read_text())


def tagged_by_cloudformation(resource_type: str) -> bool:
    tagging = schema(resource_type).get("tagging") or {}
    return bool(tagging.get("cloudFormationSystemTags") and tagging.get("tagOnCreate"))


# --------------------------------------------------------------------------------------------------
# What the app stack would create: one representative ARN per resource type, and the ARN of the
# other resources a handler acts on. {s} is the app stack name.

ARN_OF_TYPE: dict[str, str] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": (
        "arn:aws:application-autoscaling:{r}:{a}:scalable-target/0ec1a2b3c4d5e6f7a8b9"
    ),
    "AWS::ApplicationAutoScaling::ScalingPolicy": (
        "arn:aws:application-autoscaling:{r}:{a}:scalable-target/0ec1a2b3c4d5e6f7a8b9"
    ),
    "AWS::Budgets::Budget": "arn:aws:budgets::{a}:budget/{s}-monthly",
    "AWS::CloudFront::Distribution": "arn:aws:cloudfront::{a}:distribution/E1ABCDEF234567",
    "AWS::CloudFront::VpcOrigin": "arn:aws:cloudfront::{a}:vpcorigin/vo_0123456789abcdef",
    "AWS::CloudWatch::Alarm": "arn:aws:cloudwatch:{r}:{a}:alarm:{s}-CpuAlarm-1ABC",
    "AWS::CloudWatch::Dashboard": "arn:aws:cloudwatch::{a}:dashboard/{s}",
    "AWS::Cognito::UserPool": "arn:aws:cognito-idp:{r}:{a}:userpool/{r}_AbCdEfGhI",
    "AWS::Cognito::UserPoolClient": "arn:aws:cognito-idp:{r}:{a}:userpool/{r}_AbCdEfGhI",
    "AWS::Cognito::UserPoolDomain": "arn:aws:cognito-idp:{r}:{a}:userpool/{r}_AbCdEfGhI",
    "AWS::Cognito::UserPoolGroup": "arn:aws:cognito-idp:{r}:{a}:userpool/{r}_AbCdEfGhI",
    "AWS::Cognito::UserPoolUser": "arn:aws:cognito-idp:{r}:{a}:userpool/{r}_AbCdEfGhI",
    "AWS::EC2::EIP": "arn:aws:ec2:{r}:{a}:elastic-ip/eipalloc-0123456789abcdef0",
    "AWS::EC2::InternetGateway": "arn:aws:ec2:{r}:{a}:internet-gateway/igw-0123456789abcdef0",
    "AWS::EC2::NatGateway": "arn:aws:ec2:{r}:{a}:natgateway/nat-0123456789abcdef0",
    "AWS::EC2::Route": "arn:aws:ec2:{r}:{a}:route-table/rtb-0123456789abcdef0",
    "AWS::EC2::RouteTable": "arn:aws:ec2:{r}:{a}:route-table/rtb-0123456789abcdef0",
    "AWS::EC2::SecurityGroup": "arn:aws:ec2:{r}:{a}:security-group/sg-0123456789abcdef0",
    "AWS::EC2::SecurityGroupEgress": "arn:aws:ec2:{r}:{a}:security-group/sg-0123456789abcdef0",
    "AWS::EC2::SecurityGroupIngress": "arn:aws:ec2:{r}:{a}:security-group/sg-0123456789abcdef0",
    "AWS::EC2::Subnet": "arn:aws:ec2:{r}:{a}:subnet/subnet-0123456789abcdef0",
    "AWS::EC2::SubnetRouteTableAssociation": "arn:aws:ec2:{r}:{a}:route-table/rtb-0a1b2c3d",
    "AWS::EC2::VPC": "arn:aws:ec2:{r}:{a}:vpc/vpc-0123456789abcdef0",
    "AWS::EC2::VPCGatewayAttachment": "arn:aws:ec2:{r}:{a}:internet-gateway/igw-0123456789abcdef0",
    "AWS::ECS::Cluster": "arn:aws:ecs:{r}:{a}:cluster/{s}",
    "AWS::ECS::Service": "arn:aws:ecs:{r}:{a}:service/{s}/{s}-Service-1ABC",
    "AWS::ECS::TaskDefinition": "arn:aws:ecs:{r}:{a}:task-definition/{s}:7",
    "AWS::Events::Rule": "arn:aws:events:{r}:{a}:rule/{s}-task-stopped",
    "AWS::EFS::AccessPoint": "arn:aws:elasticfilesystem:{r}:{a}:access-point/fsap-0a1b2c3d",
    "AWS::EFS::FileSystem": "arn:aws:elasticfilesystem:{r}:{a}:file-system/fs-0123456789abcdef0",
    "AWS::EFS::MountTarget": "arn:aws:elasticfilesystem:{r}:{a}:file-system/fs-0123456789abcdef0",
    "AWS::ElasticLoadBalancingV2::Listener": (
        "arn:aws:elasticloadbalancing:{r}:{a}:listener/app/{lb}/50dc6c495c0c9188/f2f7dc8efc522ab2"
    ),
    "AWS::ElasticLoadBalancingV2::ListenerRule": (
        "arn:aws:elasticloadbalancing:{r}:{a}:listener-rule/app/{lb}/50dc6c495c0c9188/"
        "f2f7dc8efc522ab2/9683b2d02a6cabee"
    ),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (
        "arn:aws:elasticloadbalancing:{r}:{a}:loadbalancer/app/{lb}/50dc6c495c0c9188"
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (
        "arn:aws:elasticloadbalancing:{r}:{a}:targetgroup/compan-Targe-1ABC/73e2d6bc24d8a067"
    ),
    "AWS::IAM::Role": "arn:aws:iam::{a}:role/{s}-TaskRole-1ABC",
    "AWS::Logs::LogGroup": "arn:aws:logs:{r}:{a}:log-group:{s}-LogGroup-1ABC",
    "AWS::Scheduler::Schedule": "arn:aws:scheduler:{r}:{a}:schedule/default/{s}-purge",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{r}:{a}:secret:{s}/cookie-AbCdEf",
    "AWS::SNS::Subscription": "arn:aws:sns:{r}:{a}:{s}-AlarmTopic-1ABC",
    "AWS::SNS::Topic": "arn:aws:sns:{r}:{a}:{s}-AlarmTopic-1ABC",
    "AWS::SNS::TopicPolicy": "arn:aws:sns:{r}:{a}:{s}-AlarmTopic-1ABC",
}

# Types whose handlers act on another resource: the type of that resource (its tags count).
TARGET_TYPE: dict[str, str] = {
    "AWS::ApplicationAutoScaling::ScalingPolicy": "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::EC2::Route": "AWS::EC2::RouteTable",
    "AWS::EC2::SecurityGroupEgress": "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress": "AWS::EC2::SecurityGroup",
    "AWS::EC2::SubnetRouteTableAssociation": "AWS::EC2::RouteTable",
    "AWS::EC2::VPCGatewayAttachment": "AWS::EC2::InternetGateway",
    "AWS::EFS::MountTarget": "AWS::EFS::FileSystem",
    "AWS::SNS::Subscription": "AWS::SNS::Topic",
    "AWS::SNS::TopicPolicy": "AWS::SNS::Topic",
}

# Handlers that act on another resource than their own: the ARN of that one (by action).
ARN_OF_ACTION: dict[str, str] = {
    "ecs:DescribeServiceDeployments": "arn:aws:ecs:{r}:{a}:service-deployment/{s}/svc/x1",
    "ecs:StopServiceDeployment": "arn:aws:ecs:{r}:{a}:service-deployment/{s}/svc/x1",
    "iam:PassRole": "arn:aws:iam::{a}:role/{s}-TaskRole-1ABC",
    # The VPC origin handler assumes CloudFront's service-linked role for VPC origins.
    "sts:AssumeRole": (
        "arn:aws:iam::{a}:role/aws-service-role/vpcorigin.cloudfront.amazonaws.com/"
        "AWSServiceRoleForCloudFrontVPCOrigin"
    ),
    "iam:GetRole": "arn:aws:iam::{a}:role/{s}-TaskRole-1ABC",
    "iam:CreateServiceLinkedRole": "arn:aws:iam::{a}:role/aws-service-role/x.amazonaws.com/X",
    # Target tracking policies make the caller create and delete their alarms.
    "cloudwatch:PutMetricAlarm": "arn:aws:cloudwatch:{r}:{a}:alarm:TargetTracking-service/{s}/x",
    "cloudwatch:DeleteAlarms": "arn:aws:cloudwatch:{r}:{a}:alarm:TargetTracking-service/{s}/x",
    "cloudwatch:DescribeAlarms": "arn:aws:cloudwatch:{r}:{a}:alarm:TargetTracking-service/{s}/x",
}

# The service each type's first use may create a service-linked role for (iam:AWSServiceName).
SERVICE_LINKED_ROLE: dict[str, str] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": "ecs.application-autoscaling.amazonaws.com",
    "AWS::ECS::Cluster": "ecs.amazonaws.com",
    "AWS::ECS::Service": "ecs.amazonaws.com",
    "AWS::EFS::FileSystem": "elasticfilesystem.amazonaws.com",
    "AWS::EFS::MountTarget": "elasticfilesystem.amazonaws.com",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "elasticloadbalancing.amazonaws.com",
    "AWS::CloudFront::VpcOrigin": "vpcorigin.cloudfront.amazonaws.com",
}

# (resource type or "*", action) -> why the execution role does not grant it.
EXCEPTIONS: dict[tuple[str, str], str] = {
    # Handler permissions for properties the app stack does not set.
    ("AWS::ApplicationAutoScaling::ScalableTarget", "application-autoscaling:PutScheduledAction"): (
        "ScheduledActions is not set"
    ),
    (
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "application-autoscaling:DeleteScheduledAction",
    ): ("ScheduledActions is not set"),
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:PutProvisionedConcurrencyConfig"): (
        "the scalable target is an ECS service, not a Lambda function"
    ),
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:GetProvisionedConcurrencyConfig"): (
        "the scalable target is an ECS service, not a Lambda function"
    ),
    ("AWS::ApplicationAutoScaling::ScalableTarget", "lambda:DeleteProvisionedConcurrencyConfig"): (
        "the scalable target is an ECS service, not a Lambda function"
    ),
    ("AWS::CloudFront::Distribution", "cloudfront:CreateConnectionGroup"): (
        "multi-tenant distributions only (ConnectionMode tenant-only); not used"
    ),
    ("AWS::CloudFront::Distribution", "cloudfront:CreateDistributionWithTags"): (
        "not an IAM action (cfn-lint's IAM action list has none): IAM authorizes that API call "
        "as cloudfront:CreateDistribution plus cloudfront:TagResource, both granted"
    ),
    ("AWS::CloudFront::Distribution", "cloudfront:UpdateDistributionWithStagingConfig"): (
        "continuous deployment (staging distributions) only; not used"
    ),
    ("AWS::ElasticLoadBalancingV2::Listener", "cognito-idp:DescribeUserPoolClient"): (
        "listener authenticate-cognito actions only; the stack has none"
    ),
    ("AWS::EC2::EIP", "ec2:AcceptAddressTransfer"): "TransferAddress is not set",
    ("AWS::EC2::NatGateway", "ec2:AssignPrivateNatGatewayAddress"): "no secondary NAT addresses",
    ("AWS::EC2::NatGateway", "ec2:UnassignPrivateNatGatewayAddress"): "no secondary NAT addresses",
    ("AWS::EC2::NatGateway", "ec2:AssociateNatGatewayAddress"): "no secondary NAT addresses",
    ("AWS::EC2::NatGateway", "ec2:DisassociateNatGatewayAddress"): "no secondary NAT addresses",
    ("AWS::EC2::Subnet", "ec2:AssociateSubnetCidrBlock"): "IPv6 CIDR blocks are not used",
    ("AWS::EC2::Subnet", "ec2:DisassociateSubnetCidrBlock"): "IPv6 CIDR blocks are not used",
    ("AWS::EC2::VPCGatewayAttachment", "ec2:AttachVpnGateway"): "an internet gateway, not VPN",
    ("AWS::EC2::VPCGatewayAttachment", "ec2:DetachVpnGateway"): "an internet gateway, not VPN",
    ("AWS::EFS::FileSystem", "elasticfilesystem:CreateReplicationConfiguration"): (
        "ReplicationConfiguration is not set"
    ),
    ("AWS::EFS::FileSystem", "elasticfilesystem:DeleteReplicationConfiguration"): (
        "ReplicationConfiguration is not set"
    ),
    ("AWS::EFS::FileSystem", "elasticfilesystem:UpdateFileSystemProtection"): (
        "FileSystemProtection is not set"
    ),
    ("AWS::ElasticLoadBalancingV2::TargetGroup", "elasticloadbalancing:RegisterTargets"): (
        "Targets is not set: ECS registers the tasks with its own service-linked role"
    ),
    ("AWS::ElasticLoadBalancingV2::TargetGroup", "elasticloadbalancing:DeregisterTargets"): (
        "Targets is not set: ECS registers the tasks with its own service-linked role"
    ),
    ("AWS::Logs::LogGroup", "logs:PutDataProtectionPolicy"): "DataProtectionPolicy is not set",
    ("AWS::Logs::LogGroup", "logs:PutIndexPolicy"): "FieldIndexPolicies is not set",
    ("AWS::Logs::LogGroup", "logs:DeleteIndexPolicy"): "FieldIndexPolicies is not set",
    ("AWS::Logs::LogGroup", "logs:PutResourcePolicy"): "ResourcePolicyDocument is not set",
    ("AWS::Logs::LogGroup", "logs:DeleteResourcePolicy"): "ResourcePolicyDocument is not set",
    ("AWS::Logs::LogGroup", "logs:AssociateKmsKey"): "KmsKeyId is not set (CloudWatch's own key)",
    (
        "AWS::Logs::LogGroup",
        "logs:DisassociateKmsKey",
    ): "KmsKeyId is not set (CloudWatch's own key)",
    ("AWS::Logs::LogGroup", "logs:CreateLogDelivery"): "no log delivery (to Firehose or S3)",
    ("AWS::Logs::LogGroup", "firehose:TagDeliveryStream"): "no log delivery (to Firehose or S3)",
    ("AWS::Logs::LogGroup", "s3:REST.PUT.OBJECT"): "no log delivery (to Firehose or S3)",
    ("AWS::Logs::LogGroup", "logs:PutBearerTokenAuthentication"): (
        "BearerTokenAuthenticationEnabled is not set"
    ),
    ("AWS::Logs::LogGroup", "logs:PutLogGroupDeletionProtection"): (
        "DeletionProtectionEnabled is not set (the log group is retained instead)"
    ),
    ("AWS::SNS::Topic", "sns:PutDataProtectionPolicy"): "DataProtectionPolicy is not set",
    ("AWS::ECS::Cluster", "ecs:PutAccountSetting"): (
        "account-wide ECS settings: the cluster sets its own ClusterSettings, and an app stack "
        "must not change defaults for every workload in the account"
    ),
    ("AWS::ECS::Cluster", "ecs:PutAccountSettingDefault"): (
        "account-wide ECS settings: the cluster sets its own ClusterSettings, and an app stack "
        "must not change defaults for every workload in the account"
    ),
    ("AWS::ECS::Service", "iam:PassRole"): (
        "only with the service's Role property (classic load balancer role), which is not set; "
        "the task roles are passed by the task definition"
    ),
    # AWS managed keys (no KmsKeyId anywhere): their key policy already lets principals of the
    # account use them through the owning service (kms:ViaService), no identity policy needed.
    ("*", "kms:CreateGrant"): "AWS managed keys only; their key policy allows use via the service",
    ("*", "kms:DescribeKey"): "AWS managed keys only; their key policy allows use via the service",
    ("*", "kms:GenerateDataKeyWithoutPlaintext"): (
        "AWS managed keys only; their key policy allows use via the service"
    ),
    # The user pool's handlers list these for a pool encrypted with a customer key; it has none.
    **{
        ("*", f"kms:{action}"): "AWS managed keys only; their key policy allows use via the service"
        for action in ("Decrypt", "Encrypt", "GenerateDataKey", "ReEncryptFrom", "ReEncryptTo")
    },
    ("AWS::Cognito::UserPool", "iam:CreateServiceLinkedRole"): (
        "EmailConfiguration is not set: Cognito sends its own e-mail (no SES role)"
    ),
    **{
        ("AWS::Cognito::UserPoolClient", action): (
            "AnalyticsConfiguration is not set (no Pinpoint role to create or give a policy)"
        )
        for action in ("iam:CreateServiceLinkedRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy")
    },
    ("AWS::Cognito::UserPoolDomain", "cloudfront:updateDistribution"): (
        "CustomDomainConfig is not set: a prefix domain's distribution is Cognito's own"
    ),
    # Denied on purpose.
    ("AWS::IAM::Role", "iam:PutRolePermissionsBoundary"): (
        "denied on purpose (NoBoundaryEscape): an app role's boundary can never be replaced"
    ),
    ("AWS::IAM::Role", "iam:DeleteRolePermissionsBoundary"): (
        "denied on purpose (NoBoundaryEscape): an app role's boundary can never be removed"
    ),
    ("AWS::EC2::VPC", "ec2:CreateVpcEncryptionControl"): "VpcEncryptionControl is not set",
    ("AWS::EC2::VPC", "ec2:ModifyVpcTenancy"): "InstanceTenancy is not set",
    ("*", "ec2:DescribeIpamPools"): "IPAM pools (Ipv4IpamPoolId) are not used",
    ("*", "elasticloadbalancing:ModifyCapacityReservation"): (
        "MinimumLoadBalancerCapacity is not set"
    ),
    ("*", "elasticloadbalancing:ModifyIpPools"): "IPAM pools are not used",
    ("*", "elasticloadbalancing:SetIpAddressType"): "IpAddressType is not set (IPv4)",
    ("*", "secretsmanager:ReplicateSecretToRegions"): "ReplicaRegions is not set",
    ("*", "secretsmanager:RemoveRegionsFromReplication"): "ReplicaRegions is not set",
}


def fill(pattern: str, stack: str, load_balancer: str) -> str:
    return pattern.format(r=REGION, a=ACCOUNT, s=stack, lb=load_balancer)


def handler_permissions(resource_type: str) -> Iterator[tuple[str, str]]:
    """(handler, action) for the handlers CloudFormation calls during a deploy."""
    handlers = schema(resource_type).get("handlers") or {}
    for handler in CHECKED_HANDLERS:
        for action in (handlers.get(handler) or {}).get("permissions", []):
            yield handler, action


def role_policies(
    bootstrap: dict[str, Any], role_name: str, boundary_arn: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """A bootstrap role's inline statements and, if it has one, its boundary's statements, with
    intrinsic functions evaluated and the boundary's placeholder replaced by its real ARN."""
    evaluator = Evaluator(bootstrap)
    role = evaluator.value(bootstrap["Resources"][role_name]["Properties"])
    text = json.dumps(role).replace("<AppPermissionsBoundary>", boundary_arn)
    role = json.loads(text)
    identity = [
        s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]
    ]
    boundary = None
    if "PermissionsBoundary" in role:
        (name,) = [
            k
            for k, v in bootstrap["Resources"].items()
            if v["Type"] == "AWS::IAM::ManagedPolicy"
            and f"<{k}>" in json.dumps(role["PermissionsBoundary"])
        ]
        boundary = evaluator.value(bootstrap["Resources"][name]["Properties"]["PolicyDocument"])[
            "Statement"
        ]
    return identity, boundary


def app_boundary_arn(app: dict[str, Any]) -> str:
    """The permissions boundary the app stack puts on its roles (the same on every role)."""
    evaluator = Evaluator(app, {"ImageUri": IMAGE})
    arns = {
        evaluator.value(spec["Properties"]["PermissionsBoundary"])
        for spec in app["Resources"].values()
        if spec["Type"] == "AWS::IAM::Role"
    }
    (arn,) = arns
    return arn


def execution_role_gaps(project: Path) -> tuple[list[str], int, set[str], set[tuple[str, str]]]:
    """Missing permissions (one line each), the number checked, the types, the exceptions used."""
    app = load_template(project / "infra" / "app.yaml")
    bootstrap = load_template(project / "infra" / "bootstrap.yaml")
    stack = bootstrap["Outputs"]["AppStackName"]["Value"]
    load_balancer = Evaluator(app, {"ImageUri": IMAGE}, StackName=stack).value(
        app["Resources"]["LoadBalancer"]["Properties"]["Name"]
    )
    boundary_arn = app_boundary_arn(app)
    identity, boundary = role_policies(bootstrap, "CloudFormationExecutionRole", boundary_arn)
    types = {spec["Type"] for spec in app["Resources"].values()}
    missing: list[str] = []
    used: set[tuple[str, str]] = set()
    checked = 0
    unknown = sorted(t for t in types if t not in ARN_OF_TYPE and list(handler_permissions(t)))
    assert not unknown, f"add an ARN the stack would create for: {', '.join(unknown)}"
    for resource_type in sorted(types):
        for handler, action in handler_permissions(resource_type):
            for key in ((resource_type, action), ("*", action)):
                if key in EXCEPTIONS:
                    used.add(key)
                    break
            else:
                checked += 1
                arn = fill(
                    ARN_OF_ACTION.get(action, ARN_OF_TYPE[resource_type]), stack, load_balancer
                )
                context = {"iam:PermissionsBoundary": boundary_arn}
                target = TARGET_TYPE.get(resource_type, resource_type)
                if action not in ARN_OF_ACTION and tagged_by_cloudformation(target):
                    context["aws:ResourceTag/aws:cloudformation:stack-name"] = stack
                if action == "iam:PassRole":
                    context["iam:PassedToService"] = "ecs-tasks.amazonaws.com"
                if action == "iam:CreateServiceLinkedRole":
                    service = SERVICE_LINKED_ROLE.get(resource_type, "")
                    context["iam:AWSServiceName"] = service
                request = Request(action, arn, context)
                if not allowed_by_role(identity, boundary, request):
                    missing.append(f"{resource_type} {handler}: {action} on {arn}")
    return missing, checked, types, used


def test_execution_role_allows_every_handler_permission(
    default_project: Path, report: Callable[[str], None]
) -> None:
    missing, checked, types, used = execution_role_gaps(default_project)
    report(
        f"\n[permissions] checked {checked} handler permissions across {len(types)} resource "
        f"types, {len(used)} exceptions"
    )
    role = load_template(default_project / "infra" / "bootstrap.yaml")["Resources"]
    boundary = role["CloudFormationExecutionRole"]["Properties"].get("PermissionsBoundary")
    report(f"[permissions] execution role boundary: {'checked too' if boundary else 'none set'}")
    for resource_type, action in sorted(used):
        report(f"  exception {resource_type} {action}: {EXCEPTIONS[(resource_type, action)]}")
    assert not missing, "the execution role lacks:\n" + "\n".join(sorted(set(missing)))
    unused = set(EXCEPTIONS) - used
    assert not unused, f"exceptions no handler needs any more (remove them): {sorted(unused)}"


def test_execution_role_deletes_only_what_the_app_stack_created(default_project: Path) -> None:
    """Issue 9, item 6: the VPCs, gateways, security groups and file systems of other workloads
    in the account cannot be deleted through the execution role. Every EC2 and EFS delete the
    role grants requires the aws:cloudformation:stack-name tag of the app stack, which
    CloudFormation puts on those resources at creation (their schemas' tagging section)."""
    app = load_template(default_project / "infra" / "app.yaml")
    bootstrap = load_template(default_project / "infra" / "bootstrap.yaml")
    stack = bootstrap["Outputs"]["AppStackName"]["Value"]
    identity, boundary = role_policies(
        bootstrap, "CloudFormationExecutionRole", app_boundary_arn(app)
    )
    destructive = re.compile(
        r"(ec2|elasticfilesystem):(Delete(?!Tags|NetworkInterface)\w+|Detach\w+|ReleaseAddress)$"
    )
    granted = {
        action
        for statement in identity
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if destructive.match(action)
    }
    assert len(granted) >= 10, granted
    resource_of = {
        "ec2": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0123456789abcdef0",
        "elasticfilesystem": "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-1",
    }
    for action in sorted(granted):
        arn = resource_of[action.split(":")[0]]
        tag = "aws:ResourceTag/aws:cloudformation:stack-name"
        own = Request(action, arn, {tag: stack})
        other = Request(action, arn, {tag: "payments-prod"})
        untagged = Request(action, arn, {})
        assert allowed_by_role(identity, boundary, own), action
        assert not allowed_by_role(identity, boundary, other), action
        assert not allowed_by_role(identity, boundary, untagged), action


# --------------------------------------------------------------------------------------------------
# Deploy role: the AWS calls of the deploy workflow

# What the workflow's actions and compound commands call, by AWS's and the actions' docs:
# `aws cloudformation deploy` creates a change set, waits for it, executes it and waits for the
# stack; the ECR login action gets a token; build-push-action pushes layers and the manifest.
EXPANDED_CALLS: dict[str, list[str]] = {
    "aws cloudformation deploy": [
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplateSummary",
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStackEvents",
        "iam:PassRole",
    ],
    "aws-actions/amazon-ecr-login": ["ecr:GetAuthorizationToken"],
    "docker/build-push-action": [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:CompleteLayerUpload",
        "ecr:InitiateLayerUpload",
        "ecr:PutImage",
        "ecr:UploadLayerPart",
    ],
}
# `aws cloudformation deploy --s3-bucket` first uploads the template (awscli's S3Uploader:
# HeadObject, which s3:GetObject authorizes, then PutObject), and CloudFormation reads the change
# set's TemplateURL with the caller's credentials (s3:GetObject; AWS re:Post knowledge center,
# "cfn-s3-access-denied-error": the identity that calls CreateChangeSet needs s3:GetObject).
S3_TEMPLATE_CALLS = ["s3:GetObject", "s3:PutObject"]
# boto3 client names of the review that differ from their IAM service prefix.
IAM_PREFIX = {"efs": "elasticfilesystem"}


def camel(command: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", command))


def workflow_calls(project: Path) -> set[tuple[str, str]]:
    """(IAM action, which stack or "") for every AWS call of the deploy job and its review."""
    workflow = yaml.safe_load((project / ".github/workflows/deploy.yml").read_text())
    calls: set[tuple[str, str]] = set()
    for step in workflow["jobs"]["deploy"]["steps"]:
        uses = str(step.get("uses", "")).split("@")[0]
        calls |= {(action, "app") for action in EXPANDED_CALLS.get(uses, [])}
        script = " ".join(str(step.get("run", "")).replace("\\\n", " ").split())
        for service, command, rest in re.findall(
            r"\baws ([a-z0-9-]+) ([a-z0-9-]+)([^;|)]*)", script
        ):
            stack = "bootstrap" if "$BOOTSTRAP_STACK" in rest else "app"
            expanded = EXPANDED_CALLS.get(f"aws {service} {command}")
            actions = expanded or [f"{service}:{camel(command)}"]
            if f"{service} {command}" == "cloudformation deploy" and "--s3-bucket" in rest:
                actions = actions + S3_TEMPLATE_CALLS
            calls |= {(action, stack) for action in actions}
    assert "scripts/review.py" in yaml.safe_dump(workflow)  # the live review runs as this role
    live = (project / "production_review/live.py").read_text()
    # `efs = live.client("efs")`, then `efs.describe_file_systems(...)`.
    clients = dict(re.findall(r"(\w+) = live\.client\(\"([a-z-]+)\"\)$", live, re.MULTILINE))
    found = re.findall(r"client\(\"([a-z-]+)\"\)\.(?:get_paginator\(\")?(\w+)", live)
    found += [
        (clients[var], method)
        for var, method in re.findall(r"\b(\w+)\.(\w+)\(", live)
        if var in clients
    ]
    for service, method in found:
        calls.add((f"{IAM_PREFIX.get(service, service)}:{camel(method)}", "app"))
    return calls


def deploy_call_arn(action: str, stack: str, slug: str) -> str:
    app = f"{slug}-app"
    if action.startswith("cloudformation:"):
        if stack == "bootstrap":
            return "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/0000"  # AWS::StackId
        return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{app}/1a2b3c"
    if action.startswith("ecr:") and action != "ecr:GetAuthorizationToken":
        return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{slug}"
    if action == "ecs:DescribeServices":
        return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{app}/{app}-Service-1ABC"
    if action == "secretsmanager:DescribeSecret":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{app}/cookie-AbCdEf"
    if action == "iam:PassRole":
        return "<CloudFormationExecutionRole.Arn>"
    if action.startswith("s3:"):
        # --s3-bucket <TemplateBucketName> --s3-prefix $APP_STACK: <prefix>/<MD5>.template
        return f"<TemplateBucket.Arn>/{app}/{'0f' * 16}.template"
    if action == "sns:ListSubscriptionsByTopic":  # the review's MON-10, on the alarm topic
        return f"arn:aws:sns:{REGION}:{ACCOUNT}:{app}-AlarmTopic-1ABC"
    if action == "logs:FilterLogEvents":  # the review's DATA-6, in the app's log group
        return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{app}-LogGroup-1ABC"
    return "*"  # Describe calls that take no resource-level permissions


def test_deploy_role_allows_every_call_of_the_deploy_workflow(
    default_project: Path, report: Callable[[str], None]
) -> None:
    bootstrap = load_template(default_project / "infra" / "bootstrap.yaml")
    identity, boundary = role_policies(bootstrap, "DeployRole", "")
    context = {
        "cloudformation:RoleArn": "<CloudFormationExecutionRole.Arn>",
        "iam:PassedToService": "cloudformation.amazonaws.com",
    }
    calls = workflow_calls(default_project)
    missing = [
        f"{action} on {arn}"
        for action, stack in sorted(calls)
        for arn in [deploy_call_arn(action, stack, default_project.name)]
        if not allowed_by_role(identity, boundary, Request(action, arn, context))
    ]
    report(f"[permissions] checked {len(calls)} deploy workflow calls against the deploy role")
    # The uploads may go under the app stack's prefix only: not another stack's templates.
    for action in S3_TEMPLATE_CALLS:
        other = Request(action, "<TemplateBucket.Arn>/other-stack/0f.template", context)
        assert not allowed_by_role(identity, boundary, other), action
    assert {
        "cloudformation:CreateChangeSet",
        "ecr:PutImage",
        "ecs:DescribeServices",
        "s3:PutObject",
    } <= {action for action, _ in calls}
    assert not missing, "the deploy role lacks:\n" + "\n".join(missing)
