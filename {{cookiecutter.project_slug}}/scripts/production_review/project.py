"""What this repository is: names baked in when it was generated, and constants the checks share."""

from __future__ import annotations

import re

DEFAULT_APP_STACK = "{{ cookiecutter.__app_stack_name }}"
DEFAULT_BOOTSTRAP_STACK = "{{ cookiecutter.__bootstrap_stack_name }}"
DEFAULT_REGION = "{{ cookiecutter.aws_region }}"
GITHUB_REPOSITORY = "{{ cookiecutter.github_repository }}"

CHECKLIST = "PRODUCTION_CHECKLIST.md"
APP_TEMPLATE = "infra/app.yaml"
APP_PARAMETERS = "infra/app-parameters.json"  # what deploy.yml passes to the app stack
BOOTSTRAP_TEMPLATE = "infra/bootstrap.yaml"
HEALTH_PATH = "/_stcore/health"
COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"  # noqa: S105 (a variable name, not a secret)

# Names of environment values and parameters that must never carry a plain value. Counts of model
# tokens (DAILY_TOKEN_LIMIT, DailyTokenAlarmThreshold) are limits, not credentials.
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN(?!S?_?(LIMIT|ALARM))|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY",
    re.IGNORECASE,
)
