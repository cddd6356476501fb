"""The static checks no validator can express: they compare files (the Dockerfile with the task
definition, the workflows with the deploy role's trust), read the values the deploy passes
(infra/app-parameters.json), or read files checkov does not (workflows, Streamlit's config, the
lock). Everything a checkov policy can say about one resource is in infra/checks/ instead, and
what zizmor says about the workflows is zizmor's (production_review/zizmor.py).

Each check is named in its item's "Review:" line, returns its problems as short sentences (none:
it passes), and leaves the why to PRODUCTION_CHECKLIST.md.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .project import (
    APP_PARAMETERS,
    APP_TEMPLATE,
    BOOTSTRAP_TEMPLATE,
    GITHUB_OIDC_HOST,
    GITHUB_REPOSITORY,
    HEALTH_PATH,
    SECRET_NAME,
    Missing,
    missing_alarms,
)


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that turns CloudFormation's short forms (``!Ref x``) into long ones."""


def _long_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _long_form)


@dataclass
class Repo:
    """Parsed, cached views of the repository's files."""

    root: Path

    def text(self, relative: str) -> str:
        if not (self.root / relative).is_file():
            raise Missing(f"{relative} not found")
        return (self.root / relative).read_text(encoding="utf-8")

    @cached_property
    def app(self) -> dict[str, Any]:
        return yaml.load(self.text(APP_TEMPLATE), Loader=CfnLoader)  # noqa: S506 (safe)

    @cached_property
    def bootstrap(self) -> dict[str, Any]:
        return yaml.load(self.text(BOOTSTRAP_TEMPLATE), Loader=CfnLoader)  # noqa: S506 (safe)

    @cached_property
    def parameters(self) -> dict[str, Any]:
        """The app stack's parameters as deployed: infra/app-parameters.json over the defaults."""
        defaults = {k: p.get("Default") for k, p in (self.app.get("Parameters") or {}).items()}
        return defaults | json.loads(self.text(APP_PARAMETERS))

    @cached_property
    def dockerfile(self) -> list[tuple[str, str]]:
        """Instructions as (KEYWORD, arguments), continuations joined, comments dropped."""
        text = re.sub(r"(?m)^\s*#.*\n", "", self.text("Dockerfile")).replace("\\\n", " ")
        lines = [line.strip().partition(" ") for line in text.splitlines() if line.strip()]
        return [(keyword.upper(), rest.strip()) for keyword, _, rest in lines]

    @cached_property
    def final_stage(self) -> list[tuple[str, str]]:
        """The instructions of the last build stage: what the image runs."""
        starts = [i for i, (keyword, _) in enumerate(self.dockerfile) if keyword == "FROM"]
        return self.dockerfile[starts[-1] :] if starts else self.dockerfile

    @cached_property
    def workflows(self) -> dict[str, dict[str, Any]]:
        files = sorted((self.root / ".github/workflows").glob("*.y*ml"))
        if not files:
            raise Missing(".github/workflows has no workflow")
        return {f.name: yaml.safe_load(f.read_text(encoding="utf-8")) or {} for f in files}


def of_type(body: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    """Name -> Properties of the template's resources of one type."""
    resources = (body.get("Resources") or {}).items()
    return {k: v.get("Properties") or {} for k, v in resources if v.get("Type") == type_name}


def refs(value: Any) -> set[str]:
    """Names a value refers to through Ref, GetAtt or ${Name} in Sub."""
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value))
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, arg in value.items():
        if key == "Ref" and isinstance(arg, str):
            found.add(arg)
        elif key == "Fn::GetAtt":
            found.add(arg[0] if isinstance(arg, list) else str(arg).split(".")[0])
        elif key == "Fn::Sub" and isinstance(text := arg[0] if isinstance(arg, list) else arg, str):
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)} | refs(arg)
        else:
            found |= refs(arg)
    return found


def branches(value: Any) -> list[Any]:
    """Both branches of an ``Fn::If`` (recursively), else the value itself."""
    if isinstance(value, dict) and list(value) == ["Fn::If"] and len(value["Fn::If"]) == 3:
        return branches(value["Fn::If"][1]) + branches(value["Fn::If"][2])
    return [value]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def containers(body: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = of_type(body, "AWS::ECS::TaskDefinition").values()
    return [c for task in tasks for c in task.get("ContainerDefinitions") or []]


def environment(container: dict[str, Any]) -> dict[str, Any]:
    entries = [e for entry in container.get("Environment") or [] for e in branches(entry)]
    return {e.get("Name"): e.get("Value") for e in entries if isinstance(e, dict)}


def ingress(body: dict[str, Any], groups: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """(group, rule) for the inbound rules of these security groups, inline or separate."""
    found = [
        (name, r)
        for name, group in of_type(body, "AWS::EC2::SecurityGroup").items()
        if name in groups
        for rule in group.get("SecurityGroupIngress") or []
        for r in branches(rule)
    ]
    for rule in of_type(body, "AWS::EC2::SecurityGroupIngress").values():
        found += [(group, rule) for group in sorted(refs(rule.get("GroupId")) & groups)]
    return [(group, rule) for group, rule in found if isinstance(rule, dict)]


CHECKS: dict[str, Callable[[Repo], list[str]]] = {}


def check(function: Callable[[Repo], list[str]]) -> Callable[[Repo], list[str]]:
    """Register a check under its function name, the name the checklist uses."""
    CHECKS[function.__name__] = function
    return function


# --------------------------------------------------------------------------------------------------
# The deployed parameters (infra/app-parameters.json): checkov sees only the template's defaults.

SIGN_IN_MODES = ("cognito", "oidc")
CREDENTIALS = "configure-aws-credentials"  # the action that assumes an AWS role


@check
def sign_in_parameter(repo: Repo) -> list[str]:
    default = ((repo.app.get("Parameters") or {}).get("SignIn") or {}).get("Default")
    problems = [] if default in SIGN_IN_MODES else [f"SignIn defaults to {default!r}"]
    if (mode := repo.parameters.get("SignIn")) not in SIGN_IN_MODES:
        problems.append(f"SignIn is {mode!r}: anyone who reaches the URL can chat")
    return problems


def _whole_number(repo: Repo, name: str) -> list[str]:
    value = str(repo.parameters.get(name, ""))
    return [] if value.isdigit() and int(value) > 0 else [f"{name} is {value!r}"]


@check
def log_retention_deployed(repo: Repo) -> list[str]:
    return _whole_number(repo, "LogRetentionDays")


@check
def max_tasks_deployed(repo: Repo) -> list[str]:
    return _whole_number(repo, "MaxTasks")


@check
def alarm_email_set(repo: Repo) -> list[str]:
    empty = not str(repo.parameters.get("AlarmEmail") or "").strip()
    return ["AlarmEmail is empty: alarms reach nobody"] if empty else []


@check
def secret_parameters_have_no_default(repo: Repo) -> list[str]:
    return [
        f"{stack} parameter {name} has a default value"
        for stack, body in (("app", repo.app), ("bootstrap", repo.bootstrap))
        for name, parameter in (body.get("Parameters") or {}).items()
        if SECRET_NAME.search(name) and parameter.get("Default") not in (None, "")
    ]


# --------------------------------------------------------------------------------------------------
# Across resources of the templates


def subject_is_scoped(sub: str) -> bool:
    """``repo:OWNER/NAME:environment:X``, or the form with ``@ID`` suffixes that may be ``*``.

    Only an environment subject puts the environment's protection rules (required reviewers,
    allowed branches) in front of the role; a ``*`` anywhere else lets other refs or repos in.
    """
    owner, _, name = (re.escape(part) for part in GITHUB_REPOSITORY.lower().partition("/"))
    forms = (rf"repo:{owner}/{name}", rf"repo:{owner}@(\*|\d+)/{name}@(\*|\d+)")
    return any(re.fullmatch(form + r":environment:[a-z0-9_.-]+", sub.lower()) for form in forms)


@check
def deploy_role_trust(repo: Repo) -> list[str]:
    problems, trusted = [], 0
    for role_name, role in of_type(repo.bootstrap, "AWS::IAM::Role").items():
        for statement in (role.get("AssumeRolePolicyDocument") or {}).get("Statement") or []:
            if GITHUB_OIDC_HOST not in json.dumps(statement.get("Principal")):
                continue
            trusted += 1
            conditions = statement.get("Condition") or {}
            aud = (conditions.get("StringEquals") or {}).get(f"{GITHUB_OIDC_HOST}:aud")
            if aud not in ("sts.amazonaws.com", ["sts.amazonaws.com"]):
                problems.append(f"{role_name}: aud must be sts.amazonaws.com under StringEquals")
            subs = []
            for operator, tests in conditions.items():
                if (value := (tests or {}).get(f"{GITHUB_OIDC_HOST}:sub")) is not None:
                    subs += as_list(value)
                    if operator not in ("StringEquals", "StringLike"):
                        problems.append(f"{role_name}: sub condition under {operator}")
            if not subs:
                problems.append(f"{role_name}: trusts GitHub without a sub condition")
            for sub in subs:
                text = str(sub.get("Fn::Sub", sub)) if isinstance(sub, dict) else str(sub)
                if not subject_is_scoped(text):
                    problems.append(f"{role_name}: sub {text!r} is not this repo's environment")
    return problems + ([] if trusted else ["no IAM role trusts the GitHub OIDC provider"])


@check
def bedrock_scoped(repo: Repo) -> list[str]:
    documents = [
        (name, policy.get("PolicyDocument"))
        for name, role in of_type(repo.app, "AWS::IAM::Role").items()
        for policy in role.get("Policies") or []
    ]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        documents += [(n, p.get("PolicyDocument")) for n, p in of_type(repo.app, kind).items()]
    problems, granted = [], False
    for name, document in documents:
        for statement in as_list((document or {}).get("Statement") or []):
            actions = [str(a).lower() for a in as_list(statement.get("Action"))]
            if not any(a.startswith("bedrock:") for a in actions):
                continue
            granted = True
            if {"bedrock:*", "*"} & set(actions):
                problems.append(f"{name}: grants bedrock:*")
            for resource in as_list(statement.get("Resource")):
                text = resource if isinstance(resource, str) else json.dumps(resource)
                if text.strip() == "*" or text.rstrip("\"'}]) ").endswith("/*"):
                    problems.append(f"{name}: Bedrock on resource {text}")
    return problems + ([] if granted else ["no statement grants Bedrock access to the app"])


@check
def load_balancer_admits_only_cloudfront(repo: Repo) -> list[str]:
    balancers = of_type(repo.app, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    if not balancers:
        return ["the app stack has no load balancer"]
    problems = []
    for name, balancer in balancers.items():
        rules = ingress(repo.app, refs(balancer.get("SecurityGroups")))
        if not rules:
            problems.append(f"{name}: no ingress rule admits CloudFront")
        for group, rule in rules:
            if "SourcePrefixListId" not in rule or {"CidrIp", "CidrIpv6"} & set(rule):
                problems.append(
                    f"{group}: ingress from something other than CloudFront's prefix list"
                )
    return problems


def env_values(repo: Repo, variable: str) -> list[Any]:
    """The values the app stack's containers give an environment variable."""
    return [env[variable] for c in containers(repo.app) if variable in (env := environment(c))]


def _set_from(repo: Repo, values: list[Any], parameter: str, what: str) -> list[str]:
    """Each value must follow its stack parameter, or app-parameters.json changes nothing."""
    if parameter not in (repo.app.get("Parameters") or {}):
        return [f"the app stack has no {parameter} parameter"]
    if values and all(parameter in refs(value) for value in values):
        return []
    return [f"{what} does not come from {parameter}"]


@check
def secrets_from_secrets_manager(repo: Repo) -> list[str]:
    """checkov sees that the cookie secret is in Secrets, not where ValueFrom points."""
    # The stack's own secrets, or the ARN of one an administrator made (its parameter).
    allowed = set(of_type(repo.app, "AWS::SecretsManager::Secret")) | {"OidcClientSecretArn"}
    entries = [e for c in containers(repo.app) for s in c.get("Secrets") or [] for e in branches(s)]
    sources = [
        (entry["Name"], source)
        for entry in entries
        if isinstance(entry, dict) and "ValueFrom" in entry
        for source in branches(entry["ValueFrom"])  # each option's secret, not just one of them
    ]
    unsafe = [n for n, s in sources if not (refs(s) & allowed or ":secretsmanager:" in str(s))]
    return [f"{name} is not read from Secrets Manager" for name in dict.fromkeys(unsafe)]


@check
def budget_and_allowance_follow_parameters(repo: Repo) -> list[str]:
    budgets = of_type(repo.app, "AWS::Budgets::Budget").values()
    notices = [n for b in budgets for n in b.get("NotificationsWithSubscribers") or []]
    addresses = [s.get("Address") for n in notices for s in n.get("Subscribers") or []]
    amounts = [(b.get("Budget") or {}).get("BudgetLimit") for b in budgets]
    limits = env_values(repo, "DAILY_TOKEN_LIMIT")
    return (
        _set_from(repo, addresses, "AlarmEmail", "a budget's e-mail subscriber")
        + _set_from(repo, amounts, "MonthlyBudgetUsd", "the budget's amount")
        + _set_from(repo, limits, "DailyTokenLimit", "the task's DAILY_TOKEN_LIMIT")
    )


RETENTION = {
    "ConversationRetentionDays": "CONVERSATION_RETENTION_DAYS",
    "TrashRetentionDays": "TRASH_RETENTION_DAYS",
    "QuarantineRetentionDays": "QUARANTINE_RETENTION_DAYS",
}


@check
def purge_follows_this_stack(repo: Repo) -> list[str]:
    """The windows come from the stack's parameters, and the schedule runs on its own cluster."""
    problems = [
        problem
        for parameter, variable in RETENTION.items()
        for problem in _set_from(repo, env_values(repo, variable), parameter, variable)
    ]
    clusters = set(of_type(repo.app, "AWS::ECS::Cluster"))
    for name, schedule in of_type(repo.app, "AWS::Scheduler::Schedule").items():
        if not refs((schedule.get("Target") or {}).get("Arn")) & clusters:
            problems.append(f"{name} does not run on this stack's ECS cluster")
    return problems


@check
def efs_retained(repo: Repo) -> list[str]:
    """checkov's CloudFormation graph does not show DeletionPolicy, so it is read here."""
    resources = (repo.app.get("Resources") or {}).items()
    systems = {k: v for k, v in resources if v.get("Type") == "AWS::EFS::FileSystem"}
    if not systems:
        return ["the app stack has no EFS file system"]
    return [
        f"{name}: {policy} is not Retain"
        for name, system in systems.items()
        for policy in ("DeletionPolicy", "UpdateReplacePolicy")
        if system.get(policy) != "Retain"
    ]


@check
def alarms_defined(repo: Repo) -> list[str]:
    topics = set(of_type(repo.app, "AWS::SNS::Topic"))
    alarms = of_type(repo.app, "AWS::CloudWatch::Alarm").values()
    missing = missing_alarms([a for a in alarms if refs(a.get("AlarmActions")) & topics])
    return [f"no alarm on {', '.join(missing)} notifies an SNS topic"] if missing else []


APP_METRICS = ("Turns", "Errors", "InputTokens", "OutputTokens", "TimeToFirstTokenMs")


@check
def dashboard_shows_alarms_and_metrics(repo: Repo) -> list[str]:
    dashboards = of_type(repo.app, "AWS::CloudWatch::Dashboard")
    if not dashboards:
        return ["the app stack has no CloudWatch dashboard"]
    alarms = set(of_type(repo.app, "AWS::CloudWatch::Alarm"))
    problems = []
    for name, dashboard in dashboards.items():
        body = dashboard.get("DashboardBody")
        if missing := sorted(alarms - refs(body)):
            problems.append(f"{name} does not show the alarms {', '.join(missing)}")
        if missing := [m for m in APP_METRICS if f'\\"{m}\\"' not in json.dumps(body)]:
            problems.append(f"{name} does not graph {', '.join(missing)}")
    return problems


# --------------------------------------------------------------------------------------------------
# The image (Dockerfile), alone and against the task definition


def dockerfile_env(repo: Repo) -> dict[str, str]:
    """ENV values of the final stage (``ENV A=1 B=2`` and ``ENV A 1``)."""
    env: dict[str, str] = {}
    for keyword, args in repo.final_stage:
        if keyword == "ENV" and (pairs := re.findall(r"""(\w+)=("[^"]*"|'[^']*'|\S+)""", args)):
            env.update({k: v.strip("\"'") for k, v in pairs})
        elif keyword == "ENV" and len(parts := args.split(None, 1)) == 2:
            env[parts[0]] = parts[1].strip("\"'")
    return env


@check
def sessions_dir_on_efs(repo: Repo) -> list[str]:
    tasks = of_type(repo.app, "AWS::ECS::TaskDefinition").values()
    volumes = [v for t in tasks for v in t.get("Volumes") or [] if "EFSVolumeConfiguration" in v]
    volumes = {v.get("Name") for v in volumes}
    if not volumes:
        return ["the task definition has no EFS volume"]
    mounts = [
        str(mount.get("ContainerPath"))
        for container in containers(repo.app)
        for mount in container.get("MountPoints") or []
        if mount.get("SourceVolume") in volumes
    ]
    if not mounts:
        return ["no container mounts the EFS volume"]
    values = [environment(c).get("SESSIONS_DIR") for c in containers(repo.app)]
    sessions = next((v for v in values if v), None) or dockerfile_env(repo).get("SESSIONS_DIR")
    if not sessions:
        return ["SESSIONS_DIR is set neither in the task definition nor in the Dockerfile"]
    if not any(f"{sessions}/".startswith(m.rstrip("/") + "/") for m in mounts):
        return [f"SESSIONS_DIR {sessions} is outside the EFS mount ({', '.join(mounts)})"]
    return []


@check
def non_root_user(repo: Repo) -> list[str]:
    users = [args for keyword, args in repo.final_stage if keyword == "USER"]
    if not users:
        return ["the final stage has no USER: the container would run as root"]
    root = users[-1].split(":")[0] in ("root", "0")
    return [f"the final stage runs as USER {users[-1]}"] if root else []


@check
def image_healthcheck(repo: Repo) -> list[str]:
    checks = [args for keyword, args in repo.final_stage if keyword == "HEALTHCHECK"]
    if not checks or checks[-1].upper() == "NONE":
        return ["the final stage has no HEALTHCHECK"]
    return [] if HEALTH_PATH in checks[-1] else [f"the HEALTHCHECK does not probe {HEALTH_PATH}"]


@check
def base_images_pinned(repo: Repo) -> list[str]:
    problems, args, stages = [], {}, set()
    for keyword, rest in repo.dockerfile:
        if keyword == "ARG" and "=" in rest and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip("\"'")
        if keyword != "FROM":
            continue
        words = [w for w in rest.split() if not w.startswith("--")]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), words[0])
        earlier_stage = image.lower() in stages
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        pinned = "@sha256:" in image or re.match(r"\d+\.\d+\.\d+", tag)
        if not (earlier_stage or image == "scratch" or pinned):
            problems.append(f"FROM {image}: pin an exact x.y.z version or a digest")
    return problems


def _streamlit_setting(repo: Repo, section: str, key: str) -> list[tuple[str, str]]:
    """Where a Streamlit option is set, and to what: config.toml, the image, the task definition."""
    config = tomllib.loads(repo.text(".streamlit/config.toml")).get(section) or {}
    found = [(".streamlit/config.toml", str(config[key]))] if key in config else []
    variable = "STREAMLIT_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", f"{section}_{key}").upper()
    if variable in (image := dockerfile_env(repo)):
        found.append(("Dockerfile", image[variable]))
    for container in containers(repo.app):
        if variable in (env := environment(container)):
            found.append((f"container {container.get('Name')}", str(env[variable])))
    return [(where, value.lower()) for where, value in found]


@check
def xsrf_and_cors(repo: Repo) -> list[str]:
    return [
        f"{where} sets server.{key} to {value}"
        for key in ("enableXsrfProtection", "enableCORS")
        for where, value in _streamlit_setting(repo, "server", key)
        if value != "true"
    ]


@check
def no_error_details(repo: Repo) -> list[str]:
    settings = _streamlit_setting(repo, "client", "showErrorDetails")
    if not settings:
        return ["client.showErrorDetails is not set (Streamlit shows full tracebacks by default)"]
    shown = [(w, v) for w, v in settings if v not in ("none", "false")]
    return [f"{w} sets client.showErrorDetails to {v}" for w, v in shown]


# --------------------------------------------------------------------------------------------------
# Workflows, against the deploy role


def steps(repo: Repo) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, workflow in repo.workflows.items():
        for job_id, job in (workflow.get("jobs") or {}).items():
            yield from ((name, job_id, step) for step in job.get("steps") or [])


def _assumes_aws_role(job: dict[str, Any]) -> bool:
    return any(CREDENTIALS in str(s.get("uses", "")) for s in job.get("steps") or [])


AWS_KEYS = re.compile(r"(?i)aws[-_](access[-_]key[-_]id|secret[-_]access[-_]key|session[-_]token)")


@check
def oidc_only(repo: Repo) -> list[str]:
    problems = [
        f"{path.relative_to(repo.root)} mentions {found[0]}"
        for path in sorted((repo.root / ".github").rglob("*"))
        if path.is_file() and (found := AWS_KEYS.search(path.read_text(errors="replace")))
    ]
    credentials = [(n, j, s) for n, j, s in steps(repo) if CREDENTIALS in str(s.get("uses", ""))]
    problems += [
        f"{name} job {job}: AWS credentials without role-to-assume"
        for name, job, step in credentials
        if not (step.get("with") or {}).get("role-to-assume")
    ]
    return problems + ([] if credentials else ["no workflow step assumes an AWS role"])


@check
def id_token_only_where_a_role_is_assumed(repo: Repo) -> list[str]:
    """zizmor (excessive-permissions) does not know which jobs use their OIDC token."""
    return [
        f"{name} job {job_id}: id-token: write without assuming a role"
        for name, workflow in repo.workflows.items()
        for job_id, job in (workflow.get("jobs") or {}).items()
        if isinstance(grants := job.get("permissions"), dict)
        and grants.get("id-token") == "write"
        and not _assumes_aws_role(job)
    ]


@check
def deploys_not_cancelled(repo: Repo) -> list[str]:
    """zizmor (concurrency-limits) asks for a concurrency group, and is as content with one that
    cancels the deploy in progress."""
    workflow = repo.workflows.get("deploy.yml")
    if workflow is None:
        return [".github/workflows/deploy.yml not found"]
    jobs = [job for job in (workflow.get("jobs") or {}).values() if _assumes_aws_role(job)]
    groups = [workflow.get("concurrency")] + [job.get("concurrency") for job in jobs]
    if any(isinstance(g, dict) and g.get("cancel-in-progress") for g in groups):
        return ["deploy.yml cancels a deploy in progress"]
    return []


# --------------------------------------------------------------------------------------------------
# The repository itself

SECRET_PATTERNS = {
    "an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "an AWS secret access key": re.compile(
        r"aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{40}\b", re.IGNORECASE
    ),
    "a private key": re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----"),
    "a GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})"),
    "a Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
}
SECRET_FILES = (".env", ".env.*", "*.pem", "*.p12", "*.pfx", "*.key", "id_rsa", "id_ed25519")
SECRET_FILES += ("secrets.toml",)  # Streamlit's local secrets file
SAFE_FILES = (".env.example", ".env.sample", ".env.template")
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache"}


def repository_files(root: Path) -> list[Path]:
    """The files git would commit: tracked plus untracked-not-ignored.

    Before ``git init``, every file but the usual caches and what the ``.gitignore``'s simple
    patterns (plain and ``dir/``, no ``!``) exclude.
    """
    if (root / ".git").exists() and (git := shutil.which("git")):
        command = [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        listed = subprocess.run(command, cwd=root, capture_output=True, check=True)  # noqa: S603
        return [root / n for n in listed.stdout.decode().split("\0") if n and (root / n).is_file()]
    ignore = root / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    patterns = [line.strip() for line in lines if line.strip() and line[0] not in "#!"]

    def ignored(relative: Path) -> bool:
        for pattern in patterns:
            name = pattern.strip("/")
            if "/" in name:
                if fnmatch.fnmatch(relative.as_posix(), name):
                    return True
            elif any(
                fnmatch.fnmatch(p, name)
                for p in relative.parts[: -1 if pattern.endswith("/") else None]
            ):
                return True
        return False

    found = [
        p for p in root.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(root).parts)
    ]
    return sorted(p for p in found if not ignored(p.relative_to(root)))


@check
def no_committed_secrets(repo: Repo) -> list[str]:
    problems = []
    for path in repository_files(repo.root):
        relative = path.relative_to(repo.root).as_posix()
        if path.name not in SAFE_FILES and any(fnmatch.fnmatch(path.name, p) for p in SECRET_FILES):
            problems.append(f"{relative} must not be committed")
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        text = data.decode("utf-8", errors="replace")
        for what, pattern in SECRET_PATTERNS.items():
            if match := pattern.search(text):
                problems.append(
                    f"{relative}:{text.count(chr(10), 0, match.start()) + 1} holds {what}"
                )
    return problems


@check
def dependencies_locked(repo: Repo) -> list[str]:
    if not (repo.root / "uv.lock").is_file():
        return ["uv.lock is missing: run `uv lock` and commit it"]
    if (uv := shutil.which("uv")) is None:
        return ["uv is not on PATH: install it to check that uv.lock matches pyproject.toml"]
    done = subprocess.run(  # noqa: S603 (fixed arguments)
        [uv, "lock", "--check"], cwd=repo.root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return [f"`uv lock --check` failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"]
    return []
