"""Static checks of what reaches a person when the app breaks or costs too much.

Why each check matters is written under its id in PRODUCTION_CHECKLIST.md; the functions here say
only what they found, one short sentence per problem.
"""

from __future__ import annotations

import json
from typing import Any

from .registry import check
from .repository import Repo, container_env

# The app's own metrics (core/telemetry.py) that the dashboard must show.
APP_METRICS = ("Turns", "Errors", "InputTokens", "OutputTokens", "TimeToFirstTokenMs")


def _parameter_value(repo: Repo, name: str) -> Any:
    """What the deploy passes for a parameter: infra/app-parameters.json, else its default."""
    parameter = (repo.app.body.get("Parameters") or {}).get(name)
    if parameter is None:
        return None
    return repo.app.parameter_values.get(name, parameter.get("Default"))


@check("MON-7", "static")
def alarm_email_set(repo: Repo) -> list[str]:
    value = _parameter_value(repo, "AlarmEmail")
    if value is None:
        return ["the app stack has no AlarmEmail parameter"]
    if not str(value).strip():
        return ["AlarmEmail is empty in infra/app-parameters.json: alarms reach nobody"]
    subscriptions = repo.app.of_type("AWS::SNS::Subscription").values()
    if not any(
        repo.app.props(s).get("Protocol") == "email"
        and "AlarmEmail" in repo.app.refs(repo.app.props(s).get("Endpoint"))
        for s in subscriptions
    ):
        return ["no e-mail subscription of the alarm topic uses AlarmEmail"]
    return []


@check("MON-8", "static")
def dashboard_shows_alarms_and_metrics(repo: Repo) -> list[str]:
    dashboards = repo.app.of_type("AWS::CloudWatch::Dashboard")
    if not dashboards:
        return ["the app stack has no CloudWatch dashboard"]
    alarms = set(repo.app.of_type("AWS::CloudWatch::Alarm"))
    problems = []
    for name, dashboard in dashboards.items():
        body = repo.app.props(dashboard).get("DashboardBody")
        text = json.dumps(body)
        shown = repo.app.refs(body)
        if missing := sorted(alarms - shown):
            problems.append(f"{name} does not show the alarms {', '.join(missing)}")
        if missing := [m for m in APP_METRICS if f'\\"{m}\\"' not in text]:
            problems.append(f"{name} does not graph {', '.join(missing)}")
    return problems


def _stopped_task_rules(repo: Repo) -> list[tuple[str, dict[str, Any]]]:
    rules = []
    for name, rule in repo.app.of_type("AWS::Events::Rule").items():
        pattern = repo.app.props(rule).get("EventPattern") or {}
        detail = pattern.get("detail") or {}
        if "ECS Task State Change" in (pattern.get("detail-type") or []) and "STOPPED" in (
            detail.get("lastStatus") or []
        ):
            rules.append((name, rule))
    return rules


@check("MON-9", "static")
def task_stops_notify(repo: Repo) -> list[str]:
    topics = set(repo.app.of_type("AWS::SNS::Topic"))
    rules = _stopped_task_rules(repo)
    if not rules:
        return ["no EventBridge rule watches for stopped ECS tasks"]
    targets = [t.get("Arn") for _, rule in rules for t in repo.app.props(rule).get("Targets") or []]
    notifying = [arn for arn in targets if repo.app.refs(arn) & topics]
    if not notifying:
        return ["no rule on stopped tasks targets an SNS topic"]
    policies = [repo.app.props(p) for p in repo.app.of_type("AWS::SNS::TopicPolicy").values()]
    problems = []
    for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
        if not any(_allows_publish(policy, service) for policy in policies):
            problems.append(f"no topic policy lets {service} publish to the alarm topic")
    return problems


def _allows_publish(policy: dict[str, Any], service: str) -> bool:
    """Whether a topic policy allows ``service`` to ``sns:Publish``."""
    statements = (policy.get("PolicyDocument") or {}).get("Statement") or []
    return any(
        statement.get("Effect") == "Allow"
        and service in json.dumps(statement.get("Principal"))
        and "sns:Publish" in json.dumps(statement.get("Action"))
        for statement in statements
    )


@check("COST-6", "static")
def budgets_are_offered(repo: Repo) -> list[str]:
    problems = []
    if _parameter_value(repo, "MonthlyBudgetUsd") is None:
        problems.append("the app stack has no MonthlyBudgetUsd parameter")
    budgets = repo.app.of_type("AWS::Budgets::Budget").values()
    if not any("AlarmEmail" in repo.app.refs(repo.app.props(b)) for b in budgets):
        problems.append("no AWS Budgets budget e-mails AlarmEmail")
    limits = [
        repo.app.refs(container_env(c).get("DAILY_TOKEN_LIMIT")) for c in repo.app.containers()
    ]
    if not any("DailyTokenLimit" in refs for refs in limits):
        problems.append("the task's DAILY_TOKEN_LIMIT does not come from DailyTokenLimit")
    return problems
