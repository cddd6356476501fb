"""Checks that retention is carried out, not only decided: the purge is scheduled (static) and
it ran (live). Why they matter is written under DATA-5 and DATA-6 in PRODUCTION_CHECKLIST.md; the
functions here say only what they found, one short sentence per problem.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from .live import Live
from .registry import check
from .repository import Repo, container_env

# The windows (stack parameter -> the variable core/purge.py reads).
RETENTION_PARAMETERS = {
    "ConversationRetentionDays": "CONVERSATION_RETENTION_DAYS",
    "TrashRetentionDays": "TRASH_RETENTION_DAYS",
    "QuarantineRetentionDays": "QUARANTINE_RETENTION_DAYS",
}
PURGE_JOB = "purge"  # serve.py's job name for core/purge.py
# The schedule runs daily; a run is due once the stack is this old.
RUN_WINDOW = timedelta(days=1)


def _purge_command(input_text: Any) -> list[str]:
    """The command a schedule's ECS target runs (its container override), or [] if none."""
    try:
        overrides = json.loads(input_text).get("containerOverrides") or []
    except (TypeError, ValueError, AttributeError):
        return []
    return [part for o in overrides if isinstance(o, dict) for part in o.get("command") or []]


@check("DATA-5", "static")
def purge_scheduled(repo: Repo) -> list[str]:
    template = repo.app
    problems = []
    parameters = template.body.get("Parameters") or {}
    environments = [container_env(c) for c in template.containers()]
    for parameter, variable in RETENTION_PARAMETERS.items():
        if parameter not in parameters:
            problems.append(f"the app template has no {parameter} parameter")
        elif not any(parameter in template.refs(env.get(variable)) for env in environments):
            problems.append(f"no container sets {variable} from {parameter}")
    task_definitions = set(template.task_definitions())
    clusters = set(template.of_type("AWS::ECS::Cluster"))
    purging = []
    for name, schedule in template.of_type("AWS::Scheduler::Schedule").items():
        props = template.props(schedule)
        target = props.get("Target") or {}
        ecs = target.get("EcsParameters") or {}
        if (
            template.refs(target.get("Arn")) & clusters
            and template.refs(ecs.get("TaskDefinitionArn")) & task_definitions
            and _purge_command(target.get("Input"))[:1] == [PURGE_JOB]
        ):
            purging.append((name, props))
    if not purging:
        problems.append(
            "no EventBridge Scheduler schedule runs the app's task definition with the "
            f'"{PURGE_JOB}" command'
        )
    for name, props in purging:
        if not template.value_is(props.get("State", "ENABLED"), "ENABLED"):
            problems.append(f"{name} is not ENABLED")
    return problems


def _purge_logged(live: Live, since: datetime) -> bool:
    """Whether the app's log group holds a completed purge (core/purge.py's ``purge`` line)."""
    group = live.output("LogGroupName")
    logs = live.client("logs")
    token = None
    while True:
        paging = {"nextToken": token} if token else {}
        page = logs.filter_log_events(
            logGroupName=group,
            startTime=int(since.timestamp() * 1000),
            filterPattern='{ $.event = "purge" }',
            **paging,
        )
        for event in page.get("events", []):
            try:  # the filter runs in CloudWatch; the line is checked here as well
                if json.loads(event.get("message", "")).get("event") == PURGE_JOB:
                    return True
            except (ValueError, AttributeError):
                continue
        if not (token := page.get("nextToken")):
            return False


@check("DATA-6", "live")
def purge_ran(live: Live, now: datetime | None = None) -> list[str]:
    moment = now or datetime.now(UTC)
    if _purge_logged(live, moment - RUN_WINDOW):
        return []
    created = live.stack(live.app_stack).get("CreationTime") or moment
    if moment - created < RUN_WINDOW:
        return []  # the stack is younger than a day: the first run may not be due yet
    return [
        "no completed purge was logged in the last 24 hours: see the purge task's stopped "
        "reason in ECS and the schedule in EventBridge Scheduler"
    ]
