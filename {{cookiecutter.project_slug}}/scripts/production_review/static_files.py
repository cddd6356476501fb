"""Static checks of the repository's own files: secrets, lock, Dockerfile, workflows, config.

Why each check matters is written under its id in PRODUCTION_CHECKLIST.md; the functions here say
only what they found, one short sentence per problem.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from .project import HEALTH_PATH
from .registry import check
from .repository import Repo, container_env, dockerfile_env, final_stage, jobs, steps

# --------------------------------------------------------------------------------------------------
# Authentication


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


# --------------------------------------------------------------------------------------------------
# Secrets

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


def _ignored_by(patterns: list[str], relative: Path) -> bool:
    """A small subset of .gitignore: plain and ``dir/`` patterns, matched against each part."""
    for pattern in patterns:
        name = pattern.rstrip("/")
        parts = relative.parts[:-1] if pattern.endswith("/") else relative.parts
        if "/" in name.strip("/"):
            if fnmatch.fnmatch(relative.as_posix(), name.strip("/")):
                return True
        elif any(fnmatch.fnmatch(part, name) for part in parts):
            return True
    return False


def repository_files(root: Path) -> list[Path]:
    """The files git would commit: tracked plus untracked-not-ignored.

    Before ``git init`` (a fresh project), every file except the usual caches and what the
    ``.gitignore`` lists, read with its simple patterns (no ``!`` negations).
    """
    if (root / ".git").exists() and (git := shutil.which("git")):
        listed = subprocess.run(  # noqa: S603 (fixed arguments)
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        )
        names = [n for n in listed.stdout.decode().split("\0") if n]
        return [root / n for n in names if (root / n).is_file()]
    gitignore = root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.is_file() else []
    patterns = [line.strip() for line in lines if line.strip() and line[0] not in "#!"]
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if SKIP_DIRS.intersection(relative.parts) or not path.is_file():
            continue
        if not _ignored_by(patterns, relative):
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


# --------------------------------------------------------------------------------------------------
# Deployment


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
# Network and security


def _streamlit_overrides(repo: Repo, env_name: str) -> list[tuple[str, str]]:
    """Values of a STREAMLIT_* variable set in the Dockerfile or the task definition."""
    found = []
    if (value := dockerfile_env(repo).get(env_name)) is not None:
        found.append(("Dockerfile", value))
    for container in repo.app.containers():
        if (value := container_env(container).get(env_name)) is not None:
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
