"""Checklist-driven production review: prove what a machine can prove of PRODUCTION_CHECKLIST.md.

    uv run python scripts/review.py --static     # the repository only (CI, laptops)
    uv run python scripts/review.py              # the repository and the deployed stacks (boto3)

The checklist is the source of truth: this script reads its items (id, title, and whether the review
checks it statically, live or not at all) and runs the one check function registered for each
checked id. It prints a Markdown report with one line per item and exits 1 when any check fails,
so a checklist item without a check, or a check without an item, is itself a failure (and a test).

Each check returns the problems it found, as short sentences; no problem means the item passes. A
check that crashes fails its own item with the error rather than hiding the others.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

DEFAULT_APP_STACK = "{{ cookiecutter.__app_stack_name }}"
DEFAULT_BOOTSTRAP_STACK = "{{ cookiecutter.__bootstrap_stack_name }}"
DEFAULT_REGION = "{{ cookiecutter.aws_region }}"
GITHUB_REPOSITORY = "{{ cookiecutter.github_repository }}"

CHECKLIST = "PRODUCTION_CHECKLIST.md"
APP_TEMPLATE = "infra/app.yaml"
BOOTSTRAP_TEMPLATE = "infra/bootstrap.yaml"
HEALTH_PATH = "/_stcore/health"
COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"  # noqa: S105 (a variable name, not a secret)
MODES = ("static", "live", "manual")

# Names of environment values and parameters that must never carry a plain value.
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY", re.IGNORECASE
)


# --------------------------------------------------------------------------------------------------
# The checklist


@dataclass(frozen=True)
class Item:
    """One checklist item: ``### ID: title`` and its ``- **Review:** mode`` line."""

    id: str
    title: str
    mode: str


ITEM_HEADING = re.compile(r"^### ([A-Z]+-\d+): (.+?)\s*$")
REVIEW_LINE = re.compile(r"^- \*\*Review:\*\* (\w+)")


def parse_checklist(text: str) -> list[Item]:
    """Read the items of PRODUCTION_CHECKLIST.md in order; ValueError on a malformed item."""
    items: list[Item] = []
    current: tuple[str, str] | None = None
    mode: str | None = None

    def close() -> None:
        if current is None:
            return
        if mode not in MODES:
            raise ValueError(f"{current[0]}: needs a '- **Review:** static|live|manual' line")
        items.append(Item(current[0], current[1], mode))

    for line in text.splitlines():
        if heading := ITEM_HEADING.match(line):
            close()
            current, mode = (heading[1], heading[2]), None
        elif line.startswith("#"):
            close()
            current, mode = None, None
        elif current and (review := REVIEW_LINE.match(line)):
            mode = review[1]
    close()
    ids = [item.id for item in items]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"duplicate checklist ids: {', '.join(duplicates)}")
    return items


def pr_template(items: list[Item]) -> str:
    """The pull request template: the checklist's manual items as boxes to tick.

    Generated, so it cannot drift: `--pr-template` prints it and a test compares it with the file.
    """
    boxes = "\n".join(f"- [ ] **{i.id}** {i.title}" for i in items if i.mode == "manual")
    return f"""## What and why

<!-- What does this change, and why? Link the issue. -->

## How it was tested

<!-- Commands run, screenshots, links. CI runs the tests and the static production review. -->

## Production checklist: decisions no machine can check

Tick each item this change affects once the decision in PRODUCTION_CHECKLIST.md is made (and
recorded there); leave the others. `uv run python scripts/review.py --static` checks the rest.

{boxes}
"""


# --------------------------------------------------------------------------------------------------
# Check registry


@dataclass(frozen=True)
class Check:
    id: str
    mode: str
    run: Callable[..., list[str]]


CHECKS: dict[str, Check] = {}


CheckFunction = Callable[..., list[str]]


def check(item_id: str, mode: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the function as THE check of a checklist item (one per item)."""

    def register(func: CheckFunction) -> CheckFunction:
        if item_id in CHECKS:
            raise ValueError(f"two checks for {item_id}")
        CHECKS[item_id] = Check(item_id, mode, func)
        return func

    return register


# --------------------------------------------------------------------------------------------------
# Reading the repository


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    """Turn a short-form intrinsic (``!Ref x``, ``!Sub s``) into its long form (``{"Ref": x}``)."""
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref" or suffix == "Condition":
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form intrinsic function tags."""


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cfn(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506 (safe)


@dataclass
class Repo:
    """Lazy, cached views of the files the static checks read."""

    root: Path

    def text(self, relative: str) -> str:
        path = self.root / relative
        if not path.is_file():
            raise Missing(f"{relative} not found")
        return path.read_text(encoding="utf-8")

    @cached_property
    def app(self) -> Template:
        return Template(self._cfn(APP_TEMPLATE))

    @cached_property
    def bootstrap(self) -> Template:
        return Template(self._cfn(BOOTSTRAP_TEMPLATE))

    def _cfn(self, relative: str) -> dict[str, Any]:
        self.text(relative)  # raises Missing with a readable message
        return load_cfn(self.root / relative)

    @cached_property
    def dockerfile(self) -> list[tuple[str, str]]:
        return parse_dockerfile(self.text("Dockerfile"))

    @cached_property
    def workflows(self) -> dict[str, dict[str, Any]]:
        folder = self.root / ".github" / "workflows"
        files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
        if not files:
            raise Missing(".github/workflows has no workflow")
        return {f.name: yaml.safe_load(f.read_text(encoding="utf-8")) or {} for f in files}

    @cached_property
    def streamlit_config(self) -> dict[str, Any]:
        return tomllib.loads(self.text(".streamlit/config.toml"))


class Missing(Exception):
    """A file a check needs is not there: the check fails with this message."""


@dataclass
class Template:
    """A parsed CloudFormation template with the lookups the checks need."""

    body: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources") or {}

    def of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == type_name}

    def props(self, resource: dict[str, Any]) -> dict[str, Any]:
        return resource.get("Properties") or {}

    def values(self, value: Any) -> list[Any]:
        """Every concrete value a property can take: both branches of Fn::If, parameter defaults.

        A check that must hold "in every configuration" tests all of them.
        """
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                return self.values(arg[1]) + self.values(arg[2])
            if key == "Ref" and arg in (self.body.get("Parameters") or {}):
                parameter = self.body["Parameters"][arg]
                return [parameter.get("Default")]
            if key == "Ref" and arg == "AWS::NoValue":
                return [None]
        return [value]

    def value_is(self, value: Any, *accepted: Any) -> bool:
        """True when every possible value is one of ``accepted`` (compared as lowercase text)."""
        wanted = {str(a).lower() for a in accepted}
        return all(str(v).lower() in wanted for v in self.values(value))

    def task_definitions(self) -> dict[str, dict[str, Any]]:
        return self.of_type("AWS::ECS::TaskDefinition")

    def containers(self) -> Iterator[dict[str, Any]]:
        for resource in self.task_definitions().values():
            yield from self.props(resource).get("ContainerDefinitions") or []

    def refs(self, value: Any) -> set[str]:
        """Logical ids a value refers to through Ref, GetAtt or ${Name} in Sub."""
        found: set[str] = set()
        if isinstance(value, dict):
            for key, arg in value.items():
                if key == "Ref" and isinstance(arg, str):
                    found.add(arg)
                elif key == "Fn::GetAtt":
                    found.add(arg[0] if isinstance(arg, list) else str(arg).split(".")[0])
                elif key == "Fn::Sub":
                    text = arg[0] if isinstance(arg, list) else arg
                    found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                    found |= self.refs(arg[1] if isinstance(arg, list) else None)
                else:
                    found |= self.refs(arg)
        elif isinstance(value, list):
            for element in value:
                found |= self.refs(element)
        return found


def attributes(template: Template, props: dict[str, Any], key: str) -> dict[str, list[Any]]:
    """Key/value attribute lists (``LoadBalancerAttributes``, ...) as name -> possible values."""
    result: dict[str, list[Any]] = {}
    for entry in props.get(key) or []:
        if isinstance(entry, dict) and "Key" in entry:
            result[entry["Key"]] = template.values(entry.get("Value"))
    return result


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """Instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last build stage (from its FROM on): what the image runs."""
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :] if starts else instructions


def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return workflow.get("jobs") or {}


def steps(workflows: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, workflow in workflows.items():
        for job_id, job in jobs(workflow).items():
            for step in job.get("steps") or []:
                yield name, job_id, step


# --------------------------------------------------------------------------------------------------
# Static checks: authentication


@check("AUTH-2", "static")
def oidc_only(repo: Repo) -> list[str]:
    problems = []
    key_names = re.compile(
        r"aws-access-key-id|aws-secret-access-key|aws-session-token|"
        r"AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN",
        re.IGNORECASE,
    )
    for path in sorted((repo.root / ".github").rglob("*")):
        if path.is_file() and (found := key_names.search(path.read_text(errors="replace"))):
            problems.append(f"{path.relative_to(repo.root)} mentions {found[0]}")
    credential_steps = [
        (name, job_id, step)
        for name, job_id, step in steps(repo.workflows)
        if "configure-aws-credentials" in str(step.get("uses", ""))
    ]
    for name, job_id, step in credential_steps:
        if not (step.get("with") or {}).get("role-to-assume"):
            problems.append(f"{name} job {job_id}: AWS credentials without role-to-assume")
    if not credential_steps:
        problems.append("no workflow step assumes an AWS role with configure-aws-credentials")
    return problems


def _github_principal(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal") or {}
    federated = principal.get("Federated") if isinstance(principal, dict) else None
    return "token.actions.githubusercontent.com" in json.dumps(federated) or (
        statement.get("Action") == "sts:AssumeRoleWithWebIdentity"
    )


def _sub_is_scoped(pattern: str) -> bool:
    """``repo:OWNER/NAME:ref:refs/heads/main`` or ``...:environment:NAME``, in either sub form.

    The second form (``repo:OWNER@ID/NAME@ID:...``) may use ``*`` for the numeric ids; a ``*``
    anywhere else would let other branches, pull requests or repositories assume the role.
    """
    owner, _, name = (re.escape(part) for part in GITHUB_REPOSITORY.lower().partition("/"))
    context = r"(ref:refs/heads/main|environment:[a-z0-9_.-]+)"
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
                    problems.append(f"{name}: sub {text!r} is not limited to this repository")
    if not trusted:
        problems.append("no IAM role trusts the GitHub OIDC provider")
    return problems


def _statements(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict):
        statements = document.get("Statement") or []
        yield from statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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
        for statement in _statements(document):
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            if not any(a.lower().startswith("bedrock:") for a in actions):
                continue
            bedrock_statements += 1
            if any(a.lower() in ("bedrock:*", "*") for a in actions):
                problems.append(f"{name}: grants bedrock:*")
            for resource in _as_list(statement.get("Resource")):
                text = resource if isinstance(resource, str) else json.dumps(resource)
                if text.strip() == "*" or text.rstrip("\"'}]) ").endswith("/*"):
                    problems.append(f"{name}: Bedrock on resource {text}")
    if not bedrock_statements:
        problems.append("no statement grants Bedrock access to the app")
    return problems


# --------------------------------------------------------------------------------------------------
# Static checks: secrets

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
SAFE_FILES = (".env.example", ".env.sample", ".env.template")
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache"}
SKIP_DIRS |= {".mypy_cache", ".sessions"}


def repository_files(root: Path) -> list[Path]:
    """The files git would commit: tracked plus untracked-not-ignored; every file without git."""
    if (root / ".git").exists() and (git := shutil.which("git")):
        listed = subprocess.run(  # noqa: S603 (fixed arguments)
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        )
        names = [n for n in listed.stdout.decode().split("\0") if n]
        return [root / n for n in names if (root / n).is_file()]
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not SKIP_DIRS.intersection(relative.parts):
            files.append(path)
    return sorted(files)


@check("SEC-1", "static")
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
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{relative}:{line} holds {what}")
    return problems


def _secret_names(container: dict[str, Any]) -> set[str]:
    return {str(s.get("Name")) for s in container.get("Secrets") or []}


@check("SEC-2", "static")
def secrets_not_plain(repo: Repo) -> list[str]:
    problems = []
    secret_resources = set(repo.app.of_type("AWS::SecretsManager::Secret"))
    containers = list(repo.app.containers())
    if not containers:
        return ["no container definition in the app stack"]
    for container in containers:
        name = container.get("Name", "?")
        for entry in container.get("Environment") or []:
            if SECRET_NAME.search(str(entry.get("Name", ""))):
                problems.append(f"container {name}: {entry.get('Name')} is a plain value")
        for entry in container.get("Secrets") or []:
            source = entry.get("ValueFrom")
            if not (repo.app.refs(source) & secret_resources or ":secretsmanager:" in str(source)):
                problems.append(
                    f"container {name}: {entry.get('Name')} is not from Secrets Manager"
                )
    if not any(COOKIE_SECRET_ENV in _secret_names(c) for c in containers):
        problems.append(f"{COOKIE_SECRET_ENV} is not in the task definition's Secrets")
    return problems


@check("SEC-3", "static")
def secrets_generated(repo: Repo) -> list[str]:
    problems = []
    for name, secret in repo.app.of_type("AWS::SecretsManager::Secret").items():
        props = repo.app.props(secret)
        if "SecretString" in props or "GenerateSecretString" not in props:
            problems.append(f"{name}: needs GenerateSecretString, not a SecretString")
    for template_name, template in (("app", repo.app), ("bootstrap", repo.bootstrap)):
        for name, parameter in (template.body.get("Parameters") or {}).items():
            if SECRET_NAME.search(name) and parameter.get("Default") not in (None, ""):
                problems.append(f"{template_name} parameter {name} has a default value")
    return problems


# --------------------------------------------------------------------------------------------------
# Static checks: state


def _efs_volumes(repo: Repo) -> dict[str, dict[str, Any]]:
    volumes = {}
    for task in repo.app.task_definitions().values():
        for volume in repo.app.props(task).get("Volumes") or []:
            if "EFSVolumeConfiguration" in volume:
                volumes[volume.get("Name")] = volume["EFSVolumeConfiguration"]
    return volumes


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e.get("Name"): e.get("Value") for e in container.get("Environment") or []}


def _dockerfile_env(repo: Repo) -> dict[str, str]:
    """ENV values of the image's final stage (``ENV A=1 B=2`` and ``ENV A 1`` forms)."""
    env: dict[str, str] = {}
    for keyword, args in final_stage(repo.dockerfile):
        if keyword != "ENV":
            continue
        pairs = re.findall(r"""(\w+)=("[^"]*"|'[^']*'|\S+)""", args)
        if pairs:
            env.update({k: v.strip("\"'") for k, v in pairs})
        elif len(parts := args.split(None, 1)) == 2:
            env[parts[0]] = parts[1].strip("\"'")
    return env


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
    sessions_dirs = [_env(c).get("SESSIONS_DIR") for c in repo.app.containers()]
    sessions_dir = next((s for s in sessions_dirs if s), None) or _dockerfile_env(repo).get(
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
    for statement in _statements(document):
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
# Static checks: caching

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # managed cache policy
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"  # managed origin request policy


@check("CACHE-1", "static")
def cloudfront_no_cache(repo: Repo) -> list[str]:
    problems = []
    for name, distribution in repo.app.of_type("AWS::CloudFront::Distribution").items():
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
# Static checks: deployment


def _lock_problems_without_uv(root: Path) -> list[str]:
    """Compare pyproject's requirements with those uv recorded in the lock for the project."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    lock = tomllib.loads((root / "uv.lock").read_text(encoding="utf-8"))
    name = project["project"]["name"]
    entry = next((p for p in lock.get("package", []) if p.get("name") == name), None)
    if entry is None:
        return [f"uv.lock has no entry for the project {name}"]
    metadata = entry.get("metadata") or {}

    def normal(requirement: str) -> str:
        """``Name[b,a] == 1`` and ``name[a,b]==1`` compare equal."""
        text = re.sub(r"\s+", "", requirement).lower().replace("_", "-")
        return re.sub(r"\[([^]]*)\]", lambda m: "[" + ",".join(sorted(m[1].split(","))) + "]", text)

    def recorded(entries: list[dict[str, Any]]) -> set[str]:
        return {
            normal(
                e["name"]
                + (f"[{','.join(e['extras'])}]" if e.get("extras") else "")
                + e.get("specifier", "")
                + (f";{e['marker']}" if e.get("marker") else "")
            )
            for e in entries
        }

    problems = []
    wanted = {normal(r) for r in project["project"].get("dependencies", [])}
    if wanted != recorded(metadata.get("requires-dist", [])):
        problems.append("uv.lock is out of date with [project] dependencies")
    for group, requirements in (project.get("dependency-groups") or {}).items():
        locked = recorded((metadata.get("requires-dev") or {}).get(group, []))
        if {normal(r) for r in requirements} != locked:
            problems.append(f"uv.lock is out of date with dependency group {group}")
    return problems


@check("DEP-1", "static")
def dependencies_locked(repo: Repo) -> list[str]:
    if not (repo.root / "uv.lock").is_file():
        return ["uv.lock is missing: run `uv lock` and commit it"]
    uv = shutil.which("uv")
    if uv is None:
        return _lock_problems_without_uv(repo.root)
    result = subprocess.run(  # noqa: S603 (fixed arguments)
        [uv, "lock", "--check"], cwd=repo.root, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["uv lock --check failed"])[-1]
        return [f"`uv lock --check` failed: {last}"]
    return []


@check("DEP-2", "static")
def non_root_user(repo: Repo) -> list[str]:
    users = [args for keyword, args in final_stage(repo.dockerfile) if keyword == "USER"]
    if not users:
        return ["the final stage has no USER: the container would run as root"]
    user = users[-1].split(":")[0].strip()
    if user in ("root", "0"):
        return [f"the final stage runs as USER {users[-1]}"]
    return []


@check("DEP-3", "static")
def image_healthcheck(repo: Repo) -> list[str]:
    checks = [args for keyword, args in final_stage(repo.dockerfile) if keyword == "HEALTHCHECK"]
    if not checks or checks[-1].strip().upper() == "NONE":
        return ["the final stage has no HEALTHCHECK"]
    if HEALTH_PATH not in checks[-1]:
        return [f"the HEALTHCHECK does not probe {HEALTH_PATH}"]
    return []


@check("DEP-4", "static")
def base_images_pinned(repo: Repo) -> list[str]:
    problems = []
    args: dict[str, str] = {}
    stages: set[str] = set()
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
        if earlier_stage or image == "scratch" or "@sha256:" in image:
            continue
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not re.match(r"\d+\.\d+\.\d+", tag):
            problems.append(f"FROM {image}: pin an exact x.y.z version or a digest")
    return problems


FULL_SHA = re.compile(r"@[0-9a-f]{40}$")


@check("DEP-5", "static")
def actions_pinned(repo: Repo) -> list[str]:
    problems = []
    for name, workflow in repo.workflows.items():
        uses = [(job_id, job.get("uses")) for job_id, job in jobs(workflow).items()]
        uses += [(job_id, step.get("uses")) for _, job_id, step in steps({name: workflow})]
        for job_id, action in uses:
            if not action or action.startswith(("./", "$/")):
                continue  # this repository, at the running commit
            if action.startswith("docker://"):
                if "@sha256:" not in action:
                    problems.append(f"{name} job {job_id}: {action} is not pinned to a digest")
            elif not FULL_SHA.search(action):
                problems.append(f"{name} job {job_id}: {action} is not pinned to a commit SHA")
    return problems


def _grants(permissions: Any) -> dict[str, str]:
    if permissions is None:
        return {}
    if isinstance(permissions, str):
        return {"*": permissions}
    return {str(k): str(v) for k, v in permissions.items()}


def _assumes_aws_role(job: dict[str, Any]) -> bool:
    uses = [str(step.get("uses", "")) for step in job.get("steps") or []]
    return any("configure-aws-credentials" in u for u in uses)


@check("DEP-6", "static")
def least_privilege_permissions(repo: Repo) -> list[str]:
    problems = []
    for name, workflow in repo.workflows.items():
        if "permissions" not in workflow:
            problems.append(f"{name}: no top-level permissions (the repository default applies)")
        for scope, value in _grants(workflow.get("permissions")).items():
            if value not in ("read", "none", "read-all"):
                problems.append(f"{name}: top-level permission {scope}: {value}")
        for job_id, job in jobs(workflow).items():
            grants = _grants(job.get("permissions"))
            if "write-all" in grants.values():
                problems.append(f"{name} job {job_id}: write-all")
            if grants.get("id-token") == "write" and not _assumes_aws_role(job):
                problems.append(f"{name} job {job_id}: id-token: write without assuming a role")
    return problems


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


@check("DEP-10", "static")
def deploys_serialised(repo: Repo) -> list[str]:
    workflow = repo.workflows.get("deploy.yml")
    if workflow is None:
        return [".github/workflows/deploy.yml not found"]
    groups = [workflow.get("concurrency")]
    groups += [job.get("concurrency") for job in jobs(workflow).values() if _assumes_aws_role(job)]
    groups = [g for g in groups if g]
    if not groups:
        return ["deploy.yml has no concurrency group"]
    cancelling = [g for g in groups if isinstance(g, dict) and g.get("cancel-in-progress")]
    return ["deploy.yml cancels a deploy in progress"] if cancelling else []


# --------------------------------------------------------------------------------------------------
# Static checks: monitoring


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
    "CPU": ("CPUUtilization", "CpuUtilized"),
    "memory": ("MemoryUtilization", "MemoryUtilized"),
}


def _alarm_metrics(alarm: Any) -> set[str]:
    """Every ``MetricName`` in an alarm, whether CloudFormation or API shaped, metric math too."""
    if isinstance(alarm, dict):
        found = {str(alarm["MetricName"])} if "MetricName" in alarm else set()
        return found.union(*(_alarm_metrics(v) for v in alarm.values()))
    if isinstance(alarm, list):
        return set().union(*(_alarm_metrics(v) for v in alarm))
    return set()


def _missing_alarms(alarms: list[dict[str, Any]]) -> list[str]:
    present = set().union(*(_alarm_metrics(a) for a in alarms)) if alarms else set()
    return [kind for kind, names in ALARM_METRICS.items() if not present.intersection(names)]


@check("MON-2", "static")
def alarms_defined(repo: Repo) -> list[str]:
    topics = set(repo.app.of_type("AWS::SNS::Topic"))
    alarms = [repo.app.props(a) for a in repo.app.of_type("AWS::CloudWatch::Alarm").values()]
    notifying = [a for a in alarms if repo.app.refs(a.get("AlarmActions")) & topics]
    problems = [f"no alarm on {kind} notifies an SNS topic" for kind in _missing_alarms(notifying)]
    return problems


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
# Static checks: network and security


def _streamlit_overrides(repo: Repo, env_name: str) -> list[tuple[str, str]]:
    """Values of a STREAMLIT_* variable set in the Dockerfile or the task definition."""
    found = []
    if (value := _dockerfile_env(repo).get(env_name)) is not None:
        found.append(("Dockerfile", value))
    for container in repo.app.containers():
        if (value := _env(container).get(env_name)) is not None:
            found.append((f"container {container.get('Name')}", str(value)))
    return found


def _streamlit_setting(repo: Repo, section: str, key: str) -> list[tuple[str, str]]:
    """Where a Streamlit option is set, and to what: config.toml and the environment overrides."""
    value = (repo.streamlit_config.get(section) or {}).get(key)
    found = [(".streamlit/config.toml", str(value).lower())] if value is not None else []
    variable = "STREAMLIT_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", f"{section}_{key}").upper()
    return found + [(where, v.lower()) for where, v in _streamlit_overrides(repo, variable)]


@check("NET-1", "static")
def xsrf_and_cors(repo: Repo) -> list[str]:
    problems = []
    for key in ("enableXsrfProtection", "enableCORS"):
        for where, value in _streamlit_setting(repo, "server", key):
            if value != "true":
                problems.append(f"{where} sets server.{key} to {value}")
    return problems


@check("NET-2", "static")
def no_error_details(repo: Repo) -> list[str]:
    settings = _streamlit_setting(repo, "client", "showErrorDetails")
    if not settings:
        return ["client.showErrorDetails is not set (Streamlit shows full tracebacks by default)"]
    return [
        f"{where} sets client.showErrorDetails to {value}"
        for where, value in settings
        if value not in ("none", "false")
    ]


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


def _from_secrets_manager(value: Any) -> bool:
    return "resolve:secretsmanager:" in json.dumps(value)


def _is_forbidden(action: Any) -> bool:
    if not isinstance(action, dict):
        return False
    config = action.get("FixedResponseConfig") or {}
    return action.get("Type") == "fixed-response" and str(config.get("StatusCode")) == "403"


def _origin_secret_headers(repo: Repo, distributions: dict[str, dict[str, Any]]) -> set[str]:
    """Names of the headers CloudFront adds with a value from Secrets Manager."""
    names = set()
    for distribution in distributions.values():
        config = repo.app.props(distribution).get("DistributionConfig") or {}
        for origin in config.get("Origins") or []:
            for header in origin.get("OriginCustomHeaders") or []:
                if _from_secrets_manager(header.get("HeaderValue")):
                    names.add(str(header.get("HeaderName")).lower())
    return names


@check("NET-6", "static")
def only_cloudfront_reaches_alb(repo: Repo) -> list[str]:
    distributions = repo.app.of_type("AWS::CloudFront::Distribution")
    if not distributions:
        return []  # no CloudFront: the load balancer is the front door (see NET-5)
    headers = _origin_secret_headers(repo, distributions)
    if not headers:
        return ["CloudFront sends no origin header whose value comes from Secrets Manager"]
    problems = []
    checked = [
        condition
        for rule in repo.app.of_type("AWS::ElasticLoadBalancingV2::ListenerRule").values()
        for condition in repo.app.props(rule).get("Conditions") or []
        if str((condition.get("HttpHeaderConfig") or {}).get("HttpHeaderName")).lower() in headers
        and _from_secrets_manager(condition["HttpHeaderConfig"].get("Values"))
    ]
    if not checked:
        problems.append("no listener rule checks CloudFront's secret origin header")
    for name, listener in repo.app.of_type("AWS::ElasticLoadBalancingV2::Listener").items():
        actions = repo.app.props(listener).get("DefaultActions") or []
        possible = [a for action in actions for a in repo.app.values(action)]
        if not any(_is_forbidden(a) for a in possible):
            problems.append(f"{name}: with CloudFront on, its default action is not a 403")
    return problems


# --------------------------------------------------------------------------------------------------
# Static checks: cost


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


# --------------------------------------------------------------------------------------------------
# Live checks: the deployed stacks through boto3


@dataclass
class Live:
    """The deployed stacks, read through boto3 clients from ``client_factory`` (tests inject)."""

    app_stack: str
    bootstrap_stack: str
    client_factory: Callable[[str], Any]
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client_factory(service)
        return self._clients[service]

    def stack(self, name: str) -> dict[str, Any]:
        return self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]

    @cached_property
    def outputs(self) -> dict[str, str]:
        stack = self.stack(self.app_stack)
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise Missing(f"stack {self.app_stack} has no output {key}")
        return self.outputs[key]

    def service(self) -> dict[str, Any]:
        cluster, name = self.output("ClusterName"), self.output("ServiceName")
        found = self.client("ecs").describe_services(cluster=cluster, services=[name])["services"]
        if not found:
            raise Missing(f"service {name} not found in cluster {cluster}")
        return found[0]


STABLE_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")


@check("DEP-11", "live")
def stacks_stable(live: Live) -> list[str]:
    problems = []
    for name in (live.bootstrap_stack, live.app_stack):
        status = live.stack(name)["StackStatus"]
        if status not in STABLE_STATUSES:
            problems.append(f"stack {name} is {status}")
    return problems


@check("DEP-12", "live")
def service_steady(live: Live) -> list[str]:
    service = live.service()
    problems = []
    desired, running = service.get("desiredCount", 0), service.get("runningCount", 0)
    if desired < 1 or running != desired:
        problems.append(f"{running} of {desired} desired tasks running")
    breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    if not (breaker.get("enable") and breaker.get("rollback")):
        problems.append("the deployment circuit breaker with rollback is off")
    return problems


@check("DEP-13", "live")
def app_healthy(live: Live) -> list[str]:
    url = live.output("AppUrl").rstrip("/") + HEALTH_PATH
    if not url.startswith(("https://", "http://")):
        return [f"AppUrl {url} is not an HTTP(S) URL"]
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (scheme checked)
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, TimeoutError) as error:
        return [f"{url} unreachable: {error}"]
    return [] if status == 200 else [f"{url} answered HTTP {status}"]


def _secret_id(value_from: str) -> str:
    """The secret ARN of a ``valueFrom`` that may select a JSON key (``arn:...:secret:x:key::``)."""
    parts = value_from.split(":")
    return ":".join(parts[:7]) if value_from.startswith("arn:") and len(parts) > 7 else value_from


@check("SEC-4", "live")
def deployed_secrets(live: Live) -> list[str]:
    arn = live.service()["taskDefinition"]
    task = live.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    problems = []
    names: set[str] = set()
    for container in task.get("containerDefinitions") or []:
        for entry in container.get("environment") or []:
            if SECRET_NAME.search(entry.get("name", "")):
                problems.append(f"{container['name']}: {entry['name']} is a plain value")
        for entry in container.get("secrets") or []:
            names.add(entry["name"])
            value_from = entry.get("valueFrom", "")
            if ":secretsmanager:" not in value_from:
                problems.append(f"{container['name']}: {entry['name']} is not from Secrets Manager")
                continue
            live.client("secretsmanager").describe_secret(SecretId=_secret_id(value_from))
    if COOKIE_SECRET_ENV not in names:
        problems.append(f"{COOKIE_SECRET_ENV} is not among the task definition's secrets")
    return problems


@check("STA-6", "live")
def deployed_efs(live: Live) -> list[str]:
    file_system_id = live.output("FileSystemId")
    efs = live.client("efs")
    problems = []
    system = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"][0]
    if not system.get("Encrypted"):
        problems.append(f"{file_system_id} is not encrypted")
    try:
        status = efs.describe_backup_policy(FileSystemId=file_system_id)["BackupPolicy"]["Status"]
    except efs.exceptions.PolicyNotFound:
        status = "not set"
    if status != "ENABLED":
        problems.append(f"{file_system_id} backup policy is {status}")
    return problems


@check("MON-4", "live")
def deployed_alarms(live: Live) -> list[str]:
    topic = live.output("AlarmTopicArn")
    pages = live.client("cloudwatch").get_paginator("describe_alarms").paginate()
    alarms = [a for page in pages for a in page.get("MetricAlarms", [])]
    notifying = [a for a in alarms if topic in a.get("AlarmActions", [])]
    return [f"no alarm on {kind} notifies {topic}" for kind in _missing_alarms(notifying)]


@check("MON-5", "live")
def deployed_log_retention(live: Live) -> list[str]:
    name = live.output("LogGroupName")
    groups = live.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == name), None)
    if group is None:
        return [f"log group {name} not found"]
    return [] if group.get("retentionInDays") else [f"log group {name} never expires"]


# --------------------------------------------------------------------------------------------------
# Running the review and printing the report


@dataclass(frozen=True)
class Outcome:
    item: Item
    status: str  # pass | FAIL | manual | not run
    detail: str = ""


def run_check(item: Item, argument: Any) -> Outcome:
    try:
        problems = CHECKS[item.id].run(argument)
    except Exception as error:  # one broken check must not hide the others
        return Outcome(item, "FAIL", f"{type(error).__name__}: {error}")
    return Outcome(item, "FAIL", "; ".join(problems)) if problems else Outcome(item, "pass")


def review(items: list[Item], repo: Repo, live: Live | None) -> list[Outcome]:
    outcomes = []
    for item in items:
        registered = CHECKS.get(item.id)
        if item.mode == "manual":
            outcomes.append(Outcome(item, "manual", "a decision for the team"))
        elif registered is None or registered.mode != item.mode:
            outcomes.append(Outcome(item, "FAIL", f"scripts/review.py has no {item.mode} check"))
        elif item.mode == "static":
            outcomes.append(run_check(item, repo))
        elif live is None:
            outcomes.append(Outcome(item, "not run", "live check (run without --static)"))
        else:
            outcomes.append(run_check(item, live))
    listed = {item.id for item in items}
    for orphan in sorted(set(CHECKS) - listed):
        outcomes.append(Outcome(Item(orphan, "not in the checklist", "?"), "FAIL", CHECKLIST))
    return outcomes


def report(outcomes: list[Outcome], heading: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"## Production review: {heading}", "", "| Result | Item | Check | Details |"]
    lines.append("| --- | --- | --- | --- |")
    for o in outcomes:
        row = [o.status, o.item.id, o.item.title, o.detail]
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    statuses = ("pass", "FAIL", "manual", "not run")
    counts = {s: sum(o.status == s for o in outcomes) for s in statuses}
    lines += ["", "Totals: " + ", ".join(f"{s} {n}" for s, n in counts.items())]
    return "\n".join(lines) + "\n"


def boto3_clients(region: str) -> Callable[[str], Any]:
    import boto3  # only the live review needs AWS

    session = boto3.Session(region_name=region)
    return lambda service: session.client(service)


def main(argv: list[str] | None = None, client_factory: Callable[[str], Any] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--static", action="store_true", help="check the repository only")
    parser.add_argument("--app-stack", default=DEFAULT_APP_STACK)
    parser.add_argument("--bootstrap-stack", default=DEFAULT_BOOTSTRAP_STACK)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument(
        "--pr-template", action="store_true", help="print .github/pull_request_template.md"
    )
    args = parser.parse_args(argv)

    items = parse_checklist((args.root / CHECKLIST).read_text(encoding="utf-8"))
    if args.pr_template:
        sys.stdout.write(pr_template(items))
        return 0
    live = None
    heading = "static (repository only)"
    if not args.static:
        factory = client_factory or boto3_clients(args.region)
        live = Live(args.app_stack, args.bootstrap_stack, factory)
        stacks = f"{args.bootstrap_stack}, {args.app_stack} in {args.region}"
        heading = f"static and live (stacks {stacks})"
    outcomes = review(items, Repo(args.root.resolve()), live)
    sys.stdout.write(report(outcomes, heading))
    return 1 if any(o.status == "FAIL" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
