"""Static checks of the CloudFormation templates in infra/.

Why each check matters is written under its id in PRODUCTION_CHECKLIST.md; the functions here say
only what they found, one short sentence per problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .project import APP_PARAMETERS, COOKIE_SECRET_ENV, GITHUB_REPOSITORY, HEALTH_PATH, SECRET_NAME
from .registry import Missing, check
from .repository import (
    Repo,
    Template,
    as_list,
    attributes,
    container_env,
    dockerfile_env,
    policy_statements,
)

# --------------------------------------------------------------------------------------------------
# Authentication

SIGN_IN_MODES = ("cognito", "oidc")  # values of the app stack's SignIn parameter that sign in
OIDC_SETTINGS = ("OIDC_SERVER_METADATA_URL", "OIDC_CLIENT_ID", "OIDC_REDIRECT_URI")


def _resolved_env(template: Template, container: dict[str, Any]) -> dict[str, Any]:
    entries = template.resolve(container.get("Environment")) or []
    return {e.get("Name"): e.get("Value") for e in entries if isinstance(e, dict)}


def _resolved_secrets(template: Template, container: dict[str, Any]) -> dict[str, Any]:
    entries = template.resolve(container.get("Secrets")) or []
    return {e.get("Name"): e.get("ValueFrom") for e in entries if isinstance(e, dict)}


@check("AUTH-1", "static")
def sign_in_required(repo: Repo) -> list[str]:
    app = repo.app
    mode = app.parameter("SignIn")
    if mode not in SIGN_IN_MODES:
        return [
            f"SignIn is {mode!r} in {APP_PARAMETERS}: anyone who reaches the URL can chat "
            "(set cognito or oidc)"
        ]
    problems = []
    default = (app.body.get("Parameters") or {})["SignIn"].get("Default")
    if default not in SIGN_IN_MODES:
        problems.append(
            f"SignIn defaults to {default!r}: a stack made without {APP_PARAMETERS} is open"
        )
    containers = list(app.containers())
    if not containers:
        problems.append("no container definition in the app stack")
    for container in containers:
        name = container.get("Name", "?")
        env = _resolved_env(app, container)
        if env.get("AUTH_MODE") != "oidc":
            problems.append(f"container {name}: AUTH_MODE is {env.get('AUTH_MODE')!r}, not 'oidc'")
        missing = [key for key in OIDC_SETTINGS if not env.get(key)]
        if not _resolved_secrets(app, container).get("OIDC_CLIENT_SECRET"):
            missing.append("OIDC_CLIENT_SECRET (Secrets)")
        if missing:
            problems.append(f"container {name}: no {', '.join(missing)}")
    if mode == "cognito":
        pools = app.of_type("AWS::Cognito::UserPool")
        if not pools:
            problems.append("SignIn is cognito but the app stack has no Cognito user pool")
        for name, pool in pools.items():
            admin = (app.props(pool).get("AdminCreateUserConfig") or {}).get(
                "AllowAdminCreateUserOnly"
            )
            if not app.value_is(admin, True):
                problems.append(f"{name}: people can sign themselves up (AllowAdminCreateUserOnly)")
    return problems


def _github_principal(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal") or {}
    federated = principal.get("Federated") if isinstance(principal, dict) else None
    return "token.actions.githubusercontent.com" in json.dumps(federated) or (
        statement.get("Action") == "sts:AssumeRoleWithWebIdentity"
    )


def _sub_is_scoped(pattern: str) -> bool:
    """``repo:OWNER/NAME:environment:NAME``, in either sub form.

    Only an environment subject puts the environment's protection rules (required reviewers,
    allowed branches) in front of the role: a ``ref:refs/heads/main`` subject lets any job on main
    assume it without them. The second form (``repo:OWNER@ID/NAME@ID:...``) may use ``*`` for the
    numeric ids; a ``*`` anywhere else would let other branches, pull requests or repositories in.
    """
    owner, _, name = (re.escape(part) for part in GITHUB_REPOSITORY.lower().partition("/"))
    context = r"environment:[a-z0-9_.-]+"
    plain = rf"repo:{owner}/{name}:{context}"
    with_ids = rf"repo:{owner}@(\*|\d+)/{name}@(\*|\d+):{context}"
    return any(re.fullmatch(form, pattern.lower()) for form in (plain, with_ids))


@check("AUTH-3", "static")
def deploy_role_trust(repo: Repo) -> list[str]:
    problems = []
    trusted = 0
    for name, role in repo.bootstrap.of_type("AWS::IAM::Role").items():
        document = repo.bootstrap.props(role).get("AssumeRolePolicyDocument") or {}
        for statement in document.get("Statement") or []:
            if not _github_principal(statement):
                continue
            trusted += 1
            conditions = statement.get("Condition") or {}
            aud = (conditions.get("StringEquals") or {}).get(
                "token.actions.githubusercontent.com:aud"
            )
            if aud not in ("sts.amazonaws.com", ["sts.amazonaws.com"]):
                problems.append(f"{name}: aud must be sts.amazonaws.com under StringEquals")
            subs: list[Any] = []
            for operator, tests in conditions.items():
                value = (tests or {}).get("token.actions.githubusercontent.com:sub")
                if value is not None:
                    subs += value if isinstance(value, list) else [value]
                    if operator not in ("StringEquals", "StringLike"):
                        problems.append(f"{name}: sub condition under {operator}")
            if not subs:
                problems.append(f"{name}: trusts GitHub without a sub condition")
            for sub in subs:
                text = sub if isinstance(sub, str) else json.dumps(sub)
                if isinstance(sub, dict):
                    text = str(sub.get("Fn::Sub", text))
                if not _sub_is_scoped(text):
                    problems.append(
                        f"{name}: sub {text!r} is not limited to an environment of this repository"
                    )
    if not trusted:
        problems.append("no IAM role trusts the GitHub OIDC provider")
    return problems


@check("AUTH-4", "static")
def bedrock_scoped(repo: Repo) -> list[str]:
    problems = []
    documents = []
    for name, role in repo.app.of_type("AWS::IAM::Role").items():
        for policy in repo.app.props(role).get("Policies") or []:
            documents.append((name, policy.get("PolicyDocument")))
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in repo.app.of_type(kind).items():
            documents.append((name, repo.app.props(policy).get("PolicyDocument")))
    bedrock_statements = 0
    for name, document in documents:
        for statement in policy_statements(document):
            actions = [str(a) for a in as_list(statement.get("Action"))]
            if not any(a.lower().startswith("bedrock:") for a in actions):
                continue
            bedrock_statements += 1
            if any(a.lower() in ("bedrock:*", "*") for a in actions):
                problems.append(f"{name}: grants bedrock:*")
            for resource in as_list(statement.get("Resource")):
                text = resource if isinstance(resource, str) else json.dumps(resource)
                if text.strip() == "*" or text.rstrip("\"'}]) ").endswith("/*"):
                    problems.append(f"{name}: Bedrock on resource {text}")
    if not bedrock_statements:
        problems.append("no statement grants Bedrock access to the app")
    return problems


def _balancers(repo: Repo) -> dict[str, dict[str, Any]]:
    balancers = repo.app.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer")
    if not balancers:
        raise Missing("the app stack has no load balancer")
    return balancers


def _ingress_of(template: Template, groups: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """(group, rule) for the inbound rules of these security groups, inline or separate."""
    found = []
    for group in sorted(groups):
        resource = template.resources.get(group, {})
        for rule in template.resolve(template.props(resource).get("SecurityGroupIngress")) or []:
            found.append((group, rule))
    for ingress in template.of_type("AWS::EC2::SecurityGroupIngress").values():
        rule = template.resolve(template.props(ingress)) or {}
        for group in template.refs(rule.get("GroupId")) & groups:
            found.append((group, rule))
    return found


def _balancer_groups(repo: Repo, balancer: dict[str, Any]) -> set[str]:
    return repo.app.refs(repo.app.props(balancer).get("SecurityGroups"))


@check("AUTH-6", "static")
def no_public_origin(repo: Repo) -> list[str]:
    app = repo.app
    problems = []
    balancers = _balancers(repo)
    for name, balancer in balancers.items():
        scheme = app.resolve(app.props(balancer).get("Scheme")) or "internet-facing (the default)"
        if scheme != "internal":
            problems.append(f"{name}: Scheme is {scheme}, not internal")
        for group, rule in _ingress_of(app, _balancer_groups(repo, balancer)):
            if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
                problems.append(f"{group}: ingress open to the internet")
    vpc_origins = {
        name
        for name, origin in app.of_type("AWS::CloudFront::VpcOrigin").items()
        if app.refs((app.props(origin).get("VpcOriginEndpointConfig") or {}).get("Arn"))
        & set(balancers)
    }
    if not vpc_origins:
        problems.append("no CloudFront VPC origin fronts the load balancer")
    distributions = app.of_type("AWS::CloudFront::Distribution")
    if not distributions:
        problems.append("the app stack has no CloudFront distribution")
    for name, distribution in distributions.items():
        config = app.props(distribution).get("DistributionConfig") or {}
        for origin in config.get("Origins") or []:
            if not app.refs(origin.get("VpcOriginConfig")) & vpc_origins:
                problems.append(f"{name}: origin {origin.get('Id')} is not the VPC origin")
    return problems


# --------------------------------------------------------------------------------------------------
# Secrets


@check("SEC-2", "static")
def secrets_not_plain(repo: Repo) -> list[str]:
    problems = []
    secret_resources = set(repo.app.of_type("AWS::SecretsManager::Secret"))
    containers = list(repo.app.containers())
    if not containers:
        return ["no container definition in the app stack"]
    for container in containers:
        name = container.get("Name", "?")
        for entry in repo.app.resolve(container.get("Environment")) or []:
            if SECRET_NAME.search(str(entry.get("Name", ""))):
                problems.append(f"container {name}: {entry.get('Name')} is a plain value")
        for entry in repo.app.resolve(container.get("Secrets")) or []:
            source = entry.get("ValueFrom")
            if not (repo.app.refs(source) & secret_resources or ":secretsmanager:" in str(source)):
                problems.append(
                    f"container {name}: {entry.get('Name')} is not from Secrets Manager"
                )
    if not any(COOKIE_SECRET_ENV in _resolved_secrets(repo.app, c) for c in containers):
        problems.append(f"{COOKIE_SECRET_ENV} is not in the task definition's Secrets")
    return problems


@check("SEC-3", "static")
def secrets_generated(repo: Repo) -> list[str]:
    problems = []
    for name, secret in repo.app.of_type("AWS::SecretsManager::Secret").items():
        props = repo.app.props(secret)
        value = props.get("SecretString")
        # A value another resource generates (Cognito's client secret) is as good as generated.
        copied = isinstance(value, dict) and set(value) == {"Fn::GetAtt"}
        if "SecretString" in props and not copied:
            problems.append(f"{name}: a literal SecretString (generate it instead)")
        elif "SecretString" not in props and "GenerateSecretString" not in props:
            problems.append(f"{name}: needs GenerateSecretString")
    for template_name, template in (("app", repo.app), ("bootstrap", repo.bootstrap)):
        for name, parameter in (template.body.get("Parameters") or {}).items():
            if SECRET_NAME.search(name) and parameter.get("Default") not in (None, ""):
                problems.append(f"{template_name} parameter {name} has a default value")
    return problems


# --------------------------------------------------------------------------------------------------
# State


def _efs_volumes(repo: Repo) -> dict[str, dict[str, Any]]:
    volumes = {}
    for task in repo.app.task_definitions().values():
        for volume in repo.app.props(task).get("Volumes") or []:
            if "EFSVolumeConfiguration" in volume:
                volumes[volume.get("Name")] = volume["EFSVolumeConfiguration"]
    return volumes


@check("STA-1", "static")
def sessions_on_efs(repo: Repo) -> list[str]:
    volumes = _efs_volumes(repo)
    if not volumes:
        return ["the task definition has no EFS volume"]
    mounts = [
        str(mount.get("ContainerPath"))
        for container in repo.app.containers()
        for mount in container.get("MountPoints") or []
        if mount.get("SourceVolume") in volumes
    ]
    if not mounts:
        return ["no container mounts the EFS volume"]
    sessions_dirs = [container_env(c).get("SESSIONS_DIR") for c in repo.app.containers()]
    sessions_dir = next((s for s in sessions_dirs if s), None) or dockerfile_env(repo).get(
        "SESSIONS_DIR"
    )
    if not sessions_dir:
        return ["SESSIONS_DIR is set neither in the task definition nor in the Dockerfile"]
    if not any(sessions_dir == m or sessions_dir.startswith(m.rstrip("/") + "/") for m in mounts):
        return [f"SESSIONS_DIR {sessions_dir} is outside the EFS mount ({', '.join(mounts)})"]
    return []


def _file_systems(repo: Repo) -> dict[str, dict[str, Any]]:
    systems = repo.app.of_type("AWS::EFS::FileSystem")
    if not systems:
        raise Missing("the app stack has no EFS file system")
    return systems


@check("STA-2", "static")
def efs_encrypted(repo: Repo) -> list[str]:
    return [
        f"{name}: Encrypted is not true"
        for name, fs in _file_systems(repo).items()
        if not repo.app.value_is(repo.app.props(fs).get("Encrypted"), True)
    ]


def _denies_insecure_transport(document: Any) -> bool:
    """A Deny statement with ``Bool: {aws:SecureTransport: false}``."""
    for statement in policy_statements(document):
        secure = ((statement.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")
        if statement.get("Effect") == "Deny" and str(secure).lower() == "false":
            return True
    return False


@check("STA-3", "static")
def efs_tls_and_iam(repo: Repo) -> list[str]:
    problems = []
    for name, fs in _file_systems(repo).items():
        if not _denies_insecure_transport(repo.app.props(fs).get("FileSystemPolicy")):
            problems.append(f"{name}: FileSystemPolicy does not deny non-TLS access")
    volumes = _efs_volumes(repo)
    if not volumes:
        problems.append("the task definition has no EFS volume")
    for volume, config in volumes.items():
        auth = config.get("AuthorizationConfig") or {}
        if not repo.app.value_is(config.get("TransitEncryption"), "ENABLED"):
            problems.append(f"volume {volume}: TransitEncryption is not ENABLED")
        if not repo.app.value_is(auth.get("IAM"), "ENABLED"):
            problems.append(f"volume {volume}: AuthorizationConfig IAM is not ENABLED")
        if not auth.get("AccessPointId"):
            problems.append(f"volume {volume}: no access point")
    return problems


@check("STA-4", "static")
def efs_backups(repo: Repo) -> list[str]:
    return [
        f"{name}: BackupPolicy is not ENABLED"
        for name, fs in _file_systems(repo).items()
        if not repo.app.value_is(
            (repo.app.props(fs).get("BackupPolicy") or {}).get("Status"), "ENABLED"
        )
    ]


@check("STA-5", "static")
def efs_retained(repo: Repo) -> list[str]:
    return [
        f"{name}: {policy} is not Retain"
        for name, fs in _file_systems(repo).items()
        for policy in ("DeletionPolicy", "UpdateReplacePolicy")
        if fs.get(policy) != "Retain"
    ]


def _target_groups(repo: Repo) -> dict[str, dict[str, Any]]:
    groups = repo.app.of_type("AWS::ElasticLoadBalancingV2::TargetGroup")
    if not groups:
        raise Missing("the app stack has no target group")
    return groups


@check("STA-7", "static")
def stickiness(repo: Repo) -> list[str]:
    problems = []
    for name, group in _target_groups(repo).items():
        attrs = attributes(repo.app, repo.app.props(group), "TargetGroupAttributes")
        if not all(str(v).lower() == "true" for v in attrs.get("stickiness.enabled", [None])):
            problems.append(f"{name}: stickiness.enabled is not true")
        if not all(v == "lb_cookie" for v in attrs.get("stickiness.type", [None])):
            problems.append(f"{name}: stickiness.type is not lb_cookie")
    return problems


# --------------------------------------------------------------------------------------------------
# Caching

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # managed cache policy
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"  # managed origin request policy


def _distributions(repo: Repo) -> dict[str, dict[str, Any]]:
    distributions = repo.app.of_type("AWS::CloudFront::Distribution")
    if not distributions:
        raise Missing("the app stack has no CloudFront distribution")
    return distributions


@check("CACHE-1", "static")
def cloudfront_no_cache(repo: Repo) -> list[str]:
    problems = []
    for name, distribution in _distributions(repo).items():
        config = repo.app.props(distribution).get("DistributionConfig") or {}
        behaviors = [config.get("DefaultCacheBehavior") or {}]
        behaviors += config.get("CacheBehaviors") or []
        for behavior in behaviors:
            if not repo.app.value_is(behavior.get("CachePolicyId"), CACHING_DISABLED):
                problems.append(f"{name}: a behaviour does not use the CachingDisabled policy")
            if not repo.app.value_is(behavior.get("OriginRequestPolicyId"), ALL_VIEWER):
                problems.append(f"{name}: a behaviour does not use the AllViewer request policy")
    return problems


# --------------------------------------------------------------------------------------------------
# Deployment


def _service(repo: Repo) -> tuple[str, dict[str, Any]]:
    services = repo.app.of_type("AWS::ECS::Service")
    if len(services) != 1:
        raise Missing(f"the app stack should have one ECS service, found {len(services)}")
    name, service = next(iter(services.items()))
    return name, repo.app.props(service)


@check("DEP-7", "static")
def circuit_breaker(repo: Repo) -> list[str]:
    name, props = _service(repo)
    breaker = (props.get("DeploymentConfiguration") or {}).get("DeploymentCircuitBreaker") or {}
    return [
        f"{name}: DeploymentCircuitBreaker {key} is not true"
        for key in ("Enable", "Rollback")
        if not repo.app.value_is(breaker.get(key), True)
    ]


@check("DEP-8", "static")
def no_desired_count(repo: Repo) -> list[str]:
    name, props = _service(repo)
    if not repo.app.of_type("AWS::ApplicationAutoScaling::ScalableTarget"):
        return ["the service has no autoscaling target"]
    if any(v is not None for v in repo.app.values(props.get("DesiredCount"))):
        return [f"{name}: DesiredCount is set beside autoscaling (every update would reset it)"]
    return []


@check("DEP-9", "static")
def health_check_path(repo: Repo) -> list[str]:
    return [
        f"{name}: HealthCheckPath is not {HEALTH_PATH}"
        for name, group in _target_groups(repo).items()
        if not repo.app.value_is(repo.app.props(group).get("HealthCheckPath"), HEALTH_PATH)
    ]


# --------------------------------------------------------------------------------------------------
# Monitoring


@check("MON-1", "static")
def log_retention(repo: Repo) -> list[str]:
    groups = repo.app.of_type("AWS::Logs::LogGroup")
    problems = [
        f"{name}: no RetentionInDays"
        for name, group in groups.items()
        if not all(repo.app.values(repo.app.props(group).get("RetentionInDays")))
    ]
    for container in repo.app.containers():
        log = container.get("LogConfiguration") or {}
        group = (log.get("Options") or {}).get("awslogs-group")
        if log.get("LogDriver") != "awslogs" or not repo.app.refs(group) & set(groups):
            problems.append(f"container {container.get('Name')}: not logging to a stack log group")
    return problems


ALARM_METRICS = {
    "target 5xx": ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"),
    "unhealthy hosts": ("UnHealthyHostCount",),
    "no healthy target": ("HealthyHostCount",),
    "CPU": ("CPUUtilization", "CpuUtilized"),
    "memory": ("MemoryUtilization", "MemoryUtilized"),
    # Metrics the app writes into its log lines (core/telemetry.py, Embedded Metric Format).
    "Bedrock errors": ("Errors",),
    "daily tokens": ("Tokens",),
}


def _alarm_metrics(alarm: Any) -> set[str]:
    """Every ``MetricName`` in an alarm, whether CloudFormation or API shaped, metric math too."""
    if isinstance(alarm, dict):
        found = {str(alarm["MetricName"])} if "MetricName" in alarm else set()
        return found.union(*(_alarm_metrics(v) for v in alarm.values()))
    if isinstance(alarm, list):
        return set().union(*(_alarm_metrics(v) for v in alarm))
    return set()


def missing_alarms(alarms: list[dict[str, Any]]) -> list[str]:
    present = set().union(*(_alarm_metrics(a) for a in alarms)) if alarms else set()
    return [kind for kind, names in ALARM_METRICS.items() if not present.intersection(names)]


@check("MON-2", "static")
def alarms_defined(repo: Repo) -> list[str]:
    topics = set(repo.app.of_type("AWS::SNS::Topic"))
    alarms = [repo.app.props(a) for a in repo.app.of_type("AWS::CloudWatch::Alarm").values()]
    notifying = [a for a in alarms if repo.app.refs(a.get("AlarmActions")) & topics]
    missing = missing_alarms(notifying)
    return [f"no alarm on {', '.join(missing)} notifies an SNS topic"] if missing else []


@check("MON-3", "static")
def container_insights(repo: Repo) -> list[str]:
    problems = []
    clusters = repo.app.of_type("AWS::ECS::Cluster")
    if not clusters:
        return ["the app stack has no ECS cluster"]
    for name, cluster in clusters.items():
        settings = repo.app.props(cluster).get("ClusterSettings") or []
        values = [
            v
            for s in settings
            if s.get("Name") == "containerInsights"
            for v in repo.app.values(s.get("Value"))
        ]
        if not values or any(str(v).lower() not in ("enabled", "enhanced") for v in values):
            problems.append(f"{name}: containerInsights is not enabled")
    return problems


# --------------------------------------------------------------------------------------------------
# Network and security


@check("NET-3", "static")
def drop_invalid_headers(repo: Repo) -> list[str]:
    problems = []
    balancers = repo.app.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer")
    if not balancers:
        return ["the app stack has no load balancer"]
    for name, balancer in balancers.items():
        attrs = attributes(repo.app, repo.app.props(balancer), "LoadBalancerAttributes")
        values = attrs.get("routing.http.drop_invalid_header_fields.enabled", [None])
        if not all(str(v).lower() == "true" for v in values):
            problems.append(f"{name}: routing.http.drop_invalid_header_fields.enabled is not true")
    return problems


@check("NET-4", "static")
def tasks_only_from_alb(repo: Repo) -> list[str]:
    name, props = _service(repo)
    network = (props.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
    groups = repo.app.refs(network.get("SecurityGroups"))
    if not groups:
        return [f"{name}: no security group of the stack"]
    problems = []
    for group in sorted(groups):
        resource = repo.app.resources.get(group, {})
        rules = list(repo.app.props(resource).get("SecurityGroupIngress") or [])
        for ingress in repo.app.of_type("AWS::EC2::SecurityGroupIngress").values():
            if group in repo.app.refs(repo.app.props(ingress).get("GroupId")):
                rules.append(repo.app.props(ingress))
        for rule in [v for r in rules for v in repo.app.values(r) if v is not None]:
            if "CidrIp" in rule or "CidrIpv6" in rule or "SourcePrefixListId" in rule:
                problems.append(f"{group}: ingress from an address range, not the load balancer")
            elif "SourceSecurityGroupId" not in rule:
                problems.append(f"{group}: ingress without a source security group")
    return problems


HTTPS_ONLY = ("redirect-to-https", "https-only")
MODERN_TLS = re.compile(r"TLSv1\.[23]_20\d\d")  # TLSv1.2_2021 and later policies


@check("NET-5", "static")
def viewers_use_https(repo: Repo) -> list[str]:
    problems = []
    for name, distribution in _distributions(repo).items():
        config = repo.app.resolve(repo.app.props(distribution).get("DistributionConfig")) or {}
        behaviors = [
            config.get("DefaultCacheBehavior") or {},
            *(config.get("CacheBehaviors") or []),
        ]
        for behavior in behaviors:
            policy = behavior.get("ViewerProtocolPolicy")
            if policy not in HTTPS_ONLY:
                problems.append(f"{name}: ViewerProtocolPolicy {policy} lets viewers use HTTP")
        certificate = config.get("ViewerCertificate") or {}
        if certificate.get("AcmCertificateArn"):
            version = str(certificate.get("MinimumProtocolVersion"))
            if not MODERN_TLS.fullmatch(version):
                problems.append(
                    f"{name}: MinimumProtocolVersion {version} is older than TLSv1.2_2021"
                )
    return problems


@check("NET-6", "static")
def only_cloudfront_reaches_alb(repo: Repo) -> list[str]:
    problems = []
    for name, balancer in _balancers(repo).items():
        rules = _ingress_of(repo.app, _balancer_groups(repo, balancer))
        if not rules:
            problems.append(f"{name}: no ingress rule admits CloudFront")
        for group, rule in rules:
            if "SourcePrefixListId" not in rule or {"CidrIp", "CidrIpv6"} & set(rule):
                problems.append(
                    f"{group}: ingress from something other than CloudFront's prefix list"
                )
    return problems


# --------------------------------------------------------------------------------------------------
# Cost


@check("COST-1", "static")
def scaling_bounded(repo: Repo) -> list[str]:
    targets = repo.app.of_type("AWS::ApplicationAutoScaling::ScalableTarget")
    if not targets:
        return ["the service has no autoscaling target"]
    problems = []
    for name, target in targets.items():
        maximum = repo.app.values(repo.app.props(target).get("MaxCapacity"))
        if not all(isinstance(v, int | str) and str(v).isdigit() for v in maximum):
            problems.append(f"{name}: MaxCapacity has no numeric default")
    policies = repo.app.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    if not any(repo.app.props(p).get("PolicyType") == "TargetTrackingScaling" for p in policies):
        problems.append("no target tracking scaling policy")
    return problems


@check("COST-2", "static")
def images_expire(repo: Repo) -> list[str]:
    repositories = repo.bootstrap.of_type("AWS::ECR::Repository")
    if not repositories:
        return ["the bootstrap stack has no ECR repository"]
    return [
        f"{name}: no LifecyclePolicy"
        for name, repository in repositories.items()
        if not (repo.bootstrap.props(repository).get("LifecyclePolicy") or {}).get(
            "LifecyclePolicyText"
        )
    ]


@check("COST-3", "static")
def efs_lifecycle(repo: Repo) -> list[str]:
    return [
        f"{name}: no TransitionToIA lifecycle policy"
        for name, fs in _file_systems(repo).items()
        if not any("TransitionToIA" in p for p in repo.app.props(fs).get("LifecyclePolicies") or [])
    ]
