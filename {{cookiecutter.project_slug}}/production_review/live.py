"""The live checks: the deployed stacks, read through boto3 (or the clients a test injects).

Each function checks one checklist item (``LIVE_CHECKS`` maps the ids) and returns its problems as
short sentences; why each matters is written under its id in PRODUCTION_CHECKLIST.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from .project import COOKIE_SECRET_ENV, SECRET_NAME, Missing, missing_alarms

STABLE_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
# A new alarm has no data yet; give it this long after its last state change before its
# INSUFFICIENT_DATA counts as a problem (an alarm in ALARM always does).
SETTLING_TIME = timedelta(minutes=15)
PENDING = "PendingConfirmation"
PURGE_JOB = "purge"  # serve.py's job name for core/purge.py
RUN_WINDOW = timedelta(days=1)  # the purge runs daily; a run is due once the stack is this old


def open_page(url: str) -> Any:
    """What a visitor of ``url`` gets, from scripts/probe.py (``.result``: chat, signin, error)."""
    from probe import probe  # scripts/ is on the path of scripts/review.py; live mode only

    return probe(url)


@dataclass
class Live:
    """The deployed stacks through ``client_factory``'s clients, and the app's page through
    ``page_opener`` (tests inject both)."""

    app_stack: str
    bootstrap_stack: str
    client_factory: Callable[[str], Any]
    page_opener: Callable[[str], Any] = open_page
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client_factory(service)
        return self._clients[service]

    def stack(self, name: str) -> dict[str, Any]:
        return self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]

    @cached_property
    def outputs(self) -> dict[str, str]:
        outputs = self.stack(self.app_stack).get("Outputs") or []
        return {o["OutputKey"]: o["OutputValue"] for o in outputs}

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise Missing(f"stack {self.app_stack} has no output {key}")
        return self.outputs[key]

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

    def our_alarms(self) -> list[dict[str, Any]]:
        """The alarms that notify the stack's alarm topic."""
        topic = self.output("AlarmTopicArn")
        pages = self.client("cloudwatch").get_paginator("describe_alarms").paginate()
        alarms = [a for page in pages for a in page.get("MetricAlarms", [])]
        return [a for a in alarms if topic in a.get("AlarmActions", [])]


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


def app_page_runs(live: Live) -> list[str]:
    # Not /_stcore/health: it answers 200 while the page's websocket cannot connect.
    ok = live.page.result in ("chat", "signin")
    return [] if ok else [f"{live.app_url()}: {live.page.detail}"]


def visitors_must_sign_in(live: Live) -> list[str]:
    parameters = live.stack(live.app_stack).get("Parameters") or []
    if {p["ParameterKey"]: p.get("ParameterValue") for p in parameters}.get("SignIn") == "disabled":
        return [
            "sign-in is off (stack parameter SignIn=disabled): anyone who reaches the URL chats"
        ]
    if live.page.result == "signin":
        return []
    if live.page.result == "chat":
        return [f"{live.app_url()} shows the chat to a visitor who has not signed in"]
    return [f"{live.app_url()}: {live.page.detail}"]


def deployed_secrets(live: Live) -> list[str]:
    arn = live.service()["taskDefinition"]
    task = live.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    problems, names = [], set()
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
            # A valueFrom may select a JSON key (arn:...:secret:name:key::): ask for the secret.
            secret = ":".join(value_from.split(":")[:7])
            live.client("secretsmanager").describe_secret(SecretId=secret)
    if COOKIE_SECRET_ENV not in names:
        problems.append(f"{COOKIE_SECRET_ENV} is not among the task definition's secrets")
    return problems


def deployed_efs(live: Live) -> list[str]:
    file_system = live.output("FileSystemId")
    efs = live.client("efs")
    problems = []
    if not efs.describe_file_systems(FileSystemId=file_system)["FileSystems"][0].get("Encrypted"):
        problems.append(f"{file_system} is not encrypted")
    try:
        status = efs.describe_backup_policy(FileSystemId=file_system)["BackupPolicy"]["Status"]
    except efs.exceptions.PolicyNotFound:
        status = "not set"
    if status != "ENABLED":
        problems.append(f"{file_system} backup policy is {status}")
    return problems


def deployed_alarms(live: Live) -> list[str]:
    missing = missing_alarms(live.our_alarms())
    return [f"no alarm on {', '.join(missing)} notifies the AlarmTopicArn topic"] if missing else []


def deployed_log_retention(live: Live) -> list[str]:
    name = live.output("LogGroupName")
    groups = live.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == name), None)
    if group is None:
        return [f"log group {name} not found"]
    return [] if group.get("retentionInDays") else [f"log group {name} never expires"]


def pages(call: Callable[..., dict[str, Any]], token: str, **arguments: Any) -> Iterator[Any]:
    """Every page of a paged AWS call that names its page token ``token``."""
    while True:
        yield (page := call(**arguments))
        if not page.get(token):
            return
        arguments[token] = page[token]


def alarm_topic_confirmed(live: Live) -> list[str]:
    call = live.client("sns").list_subscriptions_by_topic
    found = pages(call, "NextToken", TopicArn=live.output("AlarmTopicArn"))
    subscriptions = [s for page in found for s in page.get("Subscriptions", [])]
    if any(s.get("SubscriptionArn", PENDING) != PENDING for s in subscriptions):
        return []
    if subscriptions:
        return ["the alarm topic's subscriptions are all pending: confirm the e-mail AWS sent"]
    return ["the alarm topic has no subscriber: set AlarmEmail in infra/app-parameters.json"]


def alarms_quiet(live: Live) -> list[str]:
    problems = []
    for alarm in live.our_alarms():  # none: MON-4 fails
        state = alarm.get("StateValue")
        since = alarm.get("StateUpdatedTimestamp") or live.now
        settling = state == "INSUFFICIENT_DATA" and live.now - since < SETTLING_TIME
        if state != "OK" and not settling:
            problems.append(f"{alarm['AlarmName']} is {state}")
    return problems


def _purge_logged(live: Live, since: datetime) -> bool:
    """Whether the app's log group holds a completed purge (core/purge.py's ``purge`` line)."""
    found = pages(
        live.client("logs").filter_log_events,
        "nextToken",
        logGroupName=live.output("LogGroupName"),
        startTime=int(since.timestamp() * 1000),
        filterPattern='{ $.event = "purge" }',
    )
    for event in (event for page in found for event in page.get("events", [])):
        try:  # the filter runs in CloudWatch; the line is checked here as well
            if json.loads(event.get("message", "")).get("event") == PURGE_JOB:
                return True
        except (ValueError, AttributeError):
            continue
    return False


def purge_ran(live: Live) -> list[str]:
    if _purge_logged(live, live.now - RUN_WINDOW):
        return []
    created = live.stack(live.app_stack).get("CreationTime") or live.now
    if live.now - created < RUN_WINDOW:
        return []  # the stack is younger than a day: the first run may not be due yet
    return [
        "no completed purge was logged in the last 24 hours: see the purge task's stopped "
        "reason in ECS and the schedule in EventBridge Scheduler"
    ]


LIVE_CHECKS: dict[str, Callable[[Live], list[str]]] = {
    "AUTH-7": visitors_must_sign_in,
    "SEC-4": deployed_secrets,
    "STA-6": deployed_efs,
    "DEP-11": stacks_stable,
    "DEP-12": service_steady,
    "DEP-13": app_page_runs,
    "MON-4": deployed_alarms,
    "MON-5": deployed_log_retention,
    "MON-10": alarm_topic_confirmed,
    "MON-11": alarms_quiet,
    "DATA-6": purge_ran,
}
