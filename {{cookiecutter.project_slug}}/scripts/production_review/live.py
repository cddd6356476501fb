"""Live checks: the deployed stacks, read through boto3 (or whatever clients the caller injects).

Why each check matters is written under its id in PRODUCTION_CHECKLIST.md; the functions here say
only what they found, one short sentence per problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .project import COOKIE_SECRET_ENV, SECRET_NAME
from .registry import Missing, check
from .static_stacks import missing_alarms


def open_page(url: str) -> Any:
    """What a visitor of ``url`` gets, from scripts/probe.py (``.result``: chat, signin, error)."""
    from probe import probe  # scripts/ is on the path of scripts/review.py; live mode only

    return probe(url)


@dataclass
class Live:
    """The deployed stacks, read through boto3 clients from ``client_factory``, and the app's page
    through ``page_opener`` (tests inject both)."""

    app_stack: str
    bootstrap_stack: str
    client_factory: Callable[[str], Any]
    page_opener: Callable[[str], Any] = open_page
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

    @cached_property
    def app_parameters(self) -> dict[str, str]:
        stack = self.stack(self.app_stack)
        return {
            p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters") or []
        }

    def app_url(self) -> str:
        url = self.output("AppUrl").rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise Missing(f"AppUrl {url} is not an HTTP(S) URL")
        return url

    @cached_property
    def page(self) -> Any:
        """One probe of the public URL, shared by the checks that need it."""
        return self.page_opener(self.app_url())

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
        if status == "UPDATE_ROLLBACK_COMPLETE":
            problems.append(
                f"stack {name} is {status}: its last update was rolled back and the previous "
                "version is serving; deploy a fixed commit"
            )
        elif status not in STABLE_STATUSES:
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
def app_page_runs(live: Live) -> list[str]:
    # Not /_stcore/health: it answers 200 while the page's websocket cannot connect.
    page = live.page
    if page.result in ("chat", "signin"):
        return []
    return [f"{live.app_url()}: {page.detail}"]


@check("AUTH-7", "live")
def visitors_must_sign_in(live: Live) -> list[str]:
    if live.app_parameters.get("SignIn") == "disabled":
        return [
            "sign-in is off (stack parameter SignIn=disabled): anyone who reaches the URL chats"
        ]
    page = live.page
    if page.result == "signin":
        return []
    if page.result == "chat":
        return [f"{live.app_url()} shows the chat to a visitor who has not signed in"]
    return [f"{live.app_url()}: {page.detail}"]


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
    missing = missing_alarms(notifying)
    return [f"no alarm on {', '.join(missing)} notifies the AlarmTopicArn topic"] if missing else []


@check("MON-5", "live")
def deployed_log_retention(live: Live) -> list[str]:
    name = live.output("LogGroupName")
    groups = live.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == name), None)
    if group is None:
        return [f"log group {name} not found"]
    return [] if group.get("retentionInDays") else [f"log group {name} never expires"]
