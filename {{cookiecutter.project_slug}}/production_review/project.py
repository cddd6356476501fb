"""What this repository is (names baked in when it was generated) and what the checks share."""

from __future__ import annotations

import re
import shutil
from typing import Any


class Missing(Exception):
    """A file, resource, stack or output a check reads is not there: the check fails with this
    message instead of a traceback."""


class ToolError(Exception):
    """A validator the review runs (checkov, zizmor) is missing or gave no report; the message
    says what to do."""


def installed(tool: str, version: str) -> str:
    """The path of ``tool`` on PATH, or a ToolError with the command that installs CI's version."""
    if (path := shutil.which(tool)) is None:
        raise ToolError(
            f"{tool} not found on PATH: install the version CI uses with "
            f"`uv tool install {tool}=={version}`"
        )
    return path


DEFAULT_APP_STACK = "{{ cookiecutter.__app_stack_name }}"
DEFAULT_BOOTSTRAP_STACK = "{{ cookiecutter.__bootstrap_stack_name }}"
DEFAULT_REGION = "{{ cookiecutter.aws_region }}"
GITHUB_REPOSITORY = "{{ cookiecutter.github_repository }}"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"  # the issuer GitHub Actions tokens name

CHECKLIST = "PRODUCTION_CHECKLIST.md"
APP_TEMPLATE = "infra/app.yaml"
APP_PARAMETERS = "infra/app-parameters.json"  # what deploy.yml passes to the app stack
BOOTSTRAP_TEMPLATE = "infra/bootstrap.yaml"
HEALTH_PATH = "/_stcore/health"
COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"  # noqa: S105 (a variable name, not a secret)

# Names of environment values and parameters that must never carry a plain value. Counts of model
# tokens (DAILY_TOKEN_LIMIT, DailyTokenAlarmThreshold) are limits, not credentials. The checkov
# policy infra/checks/cookie_secret.yaml holds the same expression.
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN(?!S?_?(LIMIT|ALARM))|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY",
    re.IGNORECASE,
)

# What the alarms must watch (MON-2 in the templates, MON-4 deployed): kind -> metric names.
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


def metric_names(value: Any) -> set[str]:
    """Every ``MetricName`` in an alarm, CloudFormation or API shaped, metric math included."""
    if isinstance(value, dict):
        found = {str(value["MetricName"])} if "MetricName" in value else set()
        return found.union(*(metric_names(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(metric_names(v) for v in value))
    return set()


def missing_alarms(alarms: list[dict[str, Any]]) -> list[str]:
    """The kinds of ALARM_METRICS that none of these alarms watches."""
    present = metric_names(alarms)
    return [kind for kind, names in ALARM_METRICS.items() if not present.intersection(names)]
