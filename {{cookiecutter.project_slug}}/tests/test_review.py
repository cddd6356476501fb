"""Tests of scripts/review.py: the checklist and the review agree; each mode proves what it says.

The live checks run against moto's in-memory AWS (`mock_aws`) for the stacks, and a stubbed
page probe for the network part: the review's page opener is replaced by a function returning the
result scripts/probe.py would (the probe itself runs against real servers in the template's
tests/test_probe.py). moto 5.2.5 does not keep an ECS service's `deploymentConfiguration`, so
for that one call (`describe_services`) the tests wrap moto's ECS client and add the configuration
the service was created with; likewise moto cannot put a stack in UPDATE_ROLLBACK_COMPLETE, so one
test wraps `describe_stacks` to report it. Every other call goes to moto unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from core.telemetry import METRIC_NAMESPACE

ROOT = Path(__file__).resolve().parent.parent


# scripts/ is not a package: put it on the path the way `python scripts/review.py` does.
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))
review = importlib.import_module("review")
checklist = importlib.import_module("production_review.checklist")
project = importlib.import_module("production_review.project")
registry = importlib.import_module("production_review.registry")
report = importlib.import_module("production_review.report")
repository = importlib.import_module("production_review.repository")
static_files = importlib.import_module("production_review.static_files")
static_stacks = importlib.import_module("production_review.static_stacks")

ITEMS = checklist.parse_checklist((ROOT / project.CHECKLIST).read_text(encoding="utf-8"))
REGION = project.DEFAULT_REGION
APP_STACK = project.DEFAULT_APP_STACK
BOOTSTRAP_STACK = project.DEFAULT_BOOTSTRAP_STACK


def result_line(output: str, item_id: str) -> str:
    """The report's one line for an item."""
    lines = [line for line in output.splitlines() if f"| {item_id} |" in line]
    assert len(lines) == 1, f"expected one line for {item_id} in:\n{output}"
    return lines[0]


# --------------------------------------------------------------------------------------------------
# The checklist, the checks and the pull request template agree


def test_every_checked_item_has_exactly_one_check_of_its_mode() -> None:
    checked = {item.id: item.mode for item in ITEMS if item.mode != "manual"}
    registered = {check.id: check.mode for check in registry.CHECKS.values()}
    assert registered == checked


def test_every_manual_item_says_what_to_decide() -> None:
    text = (ROOT / project.CHECKLIST).read_text(encoding="utf-8")
    blocks = text.split("\n### ")[1:]
    for block in blocks:
        item_id = block.split(":", 1)[0]
        manual = "- **Review:** manual" in block
        assert manual == ("- **Decide:**" in block), item_id


def test_checklist_has_the_agreed_sections() -> None:
    prefixes = {item.id.split("-")[0] for item in ITEMS}
    assert {"AUTH", "SEC", "STA", "CACHE", "DEP", "MON", "COST", "DATA"} <= prefixes


def test_pull_request_template_lists_the_manual_items() -> None:
    template = (ROOT / ".github" / "pull_request_template.md").read_text(encoding="utf-8")
    assert template == checklist.pr_template(ITEMS)
    for item in ITEMS:
        assert (f"**{item.id}**" in template) == (item.mode == "manual")


def test_drift_between_checklist_and_checks_fails_the_review(tmp_path: Path) -> None:
    """An item without a check, and a check without an item, are failures of their own."""
    items = [checklist.Item("NEW-1", "An item nobody checks yet", "static")]
    outcomes = report.review(items, repository.Repo(tmp_path), None)
    statuses = {outcome.item.id: outcome.status for outcome in outcomes}
    assert statuses.pop("NEW-1") == "FAIL"
    assert statuses == {item_id: "FAIL" for item_id in registry.CHECKS}


def test_malformed_checklist_is_rejected() -> None:
    with pytest.raises(ValueError, match="AUTH-1"):
        checklist.parse_checklist("### AUTH-1: no review line\n\nText.\n")
    with pytest.raises(ValueError, match="duplicate"):
        checklist.parse_checklist(
            "### A-1: x\n- **Review:** manual\n### A-1: y\n- **Review:** manual\n"
        )


def test_cloudformation_short_tags_become_long_form() -> None:
    body = yaml.load(
        "A: !Ref X\nB: !GetAtt R.Arn\nC: !Sub '${R}'\nD: !If [Cond, 1, 2]\n",
        Loader=repository.CfnLoader,  # noqa: S506 (a SafeLoader subclass)
    )
    assert body == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["R", "Arn"]},
        "C": {"Fn::Sub": "${R}"},
        "D": {"Fn::If": ["Cond", 1, 2]},
    }


RESOLVE_TEMPLATE = """
Parameters:
  SignIn: {Type: String, Default: cognito}
  Domain: {Type: String, Default: ""}
Conditions:
  UseCognito: !Equals [!Ref SignIn, cognito]
  SignInRequired: !Not [!Equals [!Ref SignIn, disabled]]
  HasDomain: !And [!Condition SignInRequired, !Not [!Equals [!Ref Domain, ""]]]
Resources:
  Task:
    Properties:
      Environment:
        - {Name: AUTH_MODE, Value: !If [SignInRequired, oidc, none]}
        - !If [HasDomain, {Name: DOMAIN, Value: !Ref Domain}, !Ref AWS::NoValue]
      Secrets:
        - !If [UseCognito, {Name: S, ValueFrom: !Ref Pool}, !Ref AWS::NoValue]
"""


@pytest.mark.parametrize(
    ("deployed", "environment", "secrets"),
    [
        (
            {},
            [{"Name": "AUTH_MODE", "Value": "oidc"}],
            [{"Name": "S", "ValueFrom": {"Ref": "Pool"}}],
        ),
        (
            {"SignIn": "oidc", "Domain": "example.com"},
            [{"Name": "AUTH_MODE", "Value": "oidc"}, {"Name": "DOMAIN", "Value": "example.com"}],
            [],
        ),
        (
            {"SignIn": "disabled", "Domain": "example.com"},
            [{"Name": "AUTH_MODE", "Value": "none"}],
            [],
        ),
    ],
)
def test_resolve_follows_the_deployed_parameters(
    deployed: dict[str, str], environment: list[dict[str, Any]], secrets: list[dict[str, Any]]
) -> None:
    """One branch of each Fn::If, chosen by the deployed values; AWS::NoValue entries vanish;
    a Ref to a resource stays a reference."""
    body = yaml.load(RESOLVE_TEMPLATE, Loader=repository.CfnLoader)  # noqa: S506 (a SafeLoader)
    template = repository.Template(body, deployed)
    task = body["Resources"]["Task"]["Properties"]
    assert template.resolve(task["Environment"]) == environment
    assert template.resolve(task["Secrets"]) == secrets
    assert template.resolve({"Ref": "AWS::NoValue"}) is None


def test_resolve_names_a_missing_condition() -> None:
    template = repository.Template({"Conditions": {}})
    with pytest.raises(registry.Missing, match="Absent"):
        template.resolve({"Fn::If": ["Absent", 1, 2]})


# --------------------------------------------------------------------------------------------------
# Static mode: this repository passes


def test_this_repository_passes_the_static_review(capsys: pytest.CaptureFixture[str]) -> None:
    code = review.main(["--static", "--root", str(ROOT)])
    output = capsys.readouterr().out
    assert code == 0, output
    for item in ITEMS:
        expected = {"static": "pass", "live": "not run", "manual": "manual"}[item.mode]
        assert result_line(output, item.id).startswith(f"| {expected} |")


def test_secret_scan_without_git_honours_gitignore(tmp_path: Path) -> None:
    """Before `git init`, ignored files (a local .env, conversations) are not "committed"."""
    (tmp_path / ".gitignore").write_text("# local\n.env\n.sessions/\n*.log\n")
    for name in (".env", ".sessions/a.jsonl", "logs/run.log", "app/.env.local", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    files = {p.relative_to(tmp_path).as_posix() for p in static_files.repository_files(tmp_path)}
    assert files == {".gitignore", "app/.env.local", "notes.txt"}
    assert static_files.no_committed_secrets(repository.Repo(tmp_path)) == [
        "app/.env.local must not be committed"
    ]


def test_lock_check_without_uv_reads_the_lock(tmp_path: Path) -> None:
    """Where uv is not installed, the review compares pyproject.toml with the lock's metadata."""
    assert static_files._lock_problems_without_uv(ROOT) == []
    for name in ("pyproject.toml", "uv.lock"):
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pytest==', '"pytest==0.0.1", "x==', 1))
    assert static_files._lock_problems_without_uv(tmp_path) == [
        "uv.lock is out of date with dependency group dev"
    ]


@pytest.mark.parametrize(
    ("pattern", "scoped"),
    [
        ("repo:{repo}:ref:refs/heads/main", False),
        ("repo:{repo}:environment:production", True),
        ("repo:{owner}@*/{name}@*:ref:refs/heads/main", False),
        ("repo:{owner}@*/{name}@*:environment:production", True),
        ("repo:{owner}@123/{name}@456:environment:production", True),
        ("repo:{repo}:*", False),
        ("repo:{repo}:ref:refs/heads/*", False),
        ("repo:{repo}:pull_request", False),
        ("repo:x{repo}:ref:refs/heads/main", False),
        ("repo:{owner}/*:ref:refs/heads/main", False),
        ("repo:{owner}@*/*:environment:production", False),
    ],
)
def test_deploy_role_subjects_must_name_this_repository(pattern: str, scoped: bool) -> None:
    owner, name = project.GITHUB_REPOSITORY.split("/")
    subject = pattern.format(repo=project.GITHUB_REPOSITORY, owner=owner, name=name)
    assert static_stacks._sub_is_scoped(subject) is scoped


# --------------------------------------------------------------------------------------------------
# Live mode against moto


APP_URL = "https://chat.example.com"


@dataclass(frozen=True)
class PageSeen:
    """What scripts/probe.py reports (``result`` and ``detail``), for the stubbed page opener."""

    result: str
    detail: str


CHAT = PageSeen("chat", "the page shows the chat input")
SIGN_IN = PageSeen("signin", "the page asks the visitor to sign in")


@dataclass
class EcsWithDeploymentConfiguration:
    """moto's ECS client, plus the `deploymentConfiguration` moto drops from describe_services."""

    moto: Any
    configuration: dict[str, Any] = field(default_factory=dict)

    def describe_services(self, **kwargs: Any) -> dict[str, Any]:
        response = self.moto.describe_services(**kwargs)
        for service in response["services"]:
            service["deploymentConfiguration"] = self.configuration
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.moto, name)


@dataclass
class CloudFormationWithStatus:
    """moto's CloudFormation client reporting a status moto cannot reach on its own (a rollback)."""

    moto: Any
    status: str

    def describe_stacks(self, **kwargs: Any) -> dict[str, Any]:
        response = self.moto.describe_stacks(**kwargs)
        for stack in response["Stacks"]:
            stack["StackStatus"] = self.status
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.moto, name)


@dataclass
class SnsWithPendingSubscriptions:
    """moto's SNS client, whose e-mail subscriptions are confirmed at once, showing them as
    AWS does until someone clicks the confirmation link."""

    moto: Any

    def list_subscriptions_by_topic(self, **kwargs: Any) -> dict[str, Any]:
        response = self.moto.list_subscriptions_by_topic(**kwargs)
        for subscription in response["Subscriptions"]:
            subscription["SubscriptionArn"] = "PendingConfirmation"
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.moto, name)


OUTPUTS_TEMPLATE = """
Parameters:
  AppUrl: {Type: String}
  SignIn: {Type: String}
  ClusterName: {Type: String}
  ServiceName: {Type: String}
  LogGroupName: {Type: String}
  FileSystemId: {Type: String}
Resources:
  AlarmTopic:
    Type: AWS::SNS::Topic
Outputs:
  AppUrl: {Value: !Ref AppUrl}
  ClusterName: {Value: !Ref ClusterName}
  ServiceName: {Value: !Ref ServiceName}
  LogGroupName: {Value: !Ref LogGroupName}
  FileSystemId: {Value: !Ref FileSystemId}
  AlarmTopicArn: {Value: !Ref AlarmTopic}
"""

BOOTSTRAP_TEMPLATE = """
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""

ALARM_METRICS = (
    ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
    ("AWS/ApplicationELB", "UnHealthyHostCount"),
    ("AWS/ApplicationELB", "HealthyHostCount"),
    (METRIC_NAMESPACE, "Errors"),
    (METRIC_NAMESPACE, "Tokens"),
    ("AWS/ECS", "CPUUtilization"),
    ("AWS/ECS", "MemoryUtilization"),
)


@dataclass
class Deployment:
    """What a healthy deploy leaves in the account; each field is a way to break it."""

    app_url: str = APP_URL
    sign_in: str = "cognito"
    encrypted: bool = True
    backups: bool = True
    alarm_metrics: tuple[tuple[str, str], ...] = ALARM_METRICS
    circuit_breaker: dict[str, bool] = field(
        default_factory=lambda: {"enable": True, "rollback": True}
    )
    running: int = 2
    desired: int = 2
    log_retention: int | None = 30
    plain_environment: dict[str, str] = field(default_factory=dict)
    cookie_secret_from_secrets_manager: bool = True
    bootstrap_stack: bool = True
    stack_status: str | None = None
    alarm_subscription: str | None = "confirmed"  # or "pending", or None for no subscriber
    firing_alarm: str | None = None  # the metric of an alarm left in ALARM
    purge_logged: bool = True  # the daily purge task logged a completed run just now (DATA-6)

    def create(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
        """Create the resources in moto; return the client factory the review should use."""
        monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(self.running))
        cfn = boto3.client("cloudformation", region_name=REGION)
        efs = boto3.client("efs", region_name=REGION)
        file_system = efs.create_file_system(
            CreationToken="sessions", Encrypted=self.encrypted, Backup=self.backups
        )["FileSystemId"]
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName=f"/ecs/{APP_STACK}")
        if self.log_retention:
            logs.put_retention_policy(
                logGroupName=f"/ecs/{APP_STACK}", retentionInDays=self.log_retention
            )
        logs.create_log_stream(logGroupName=f"/ecs/{APP_STACK}", logStreamName="app/app/1")
        lines = [{"event": "turn", "outcome": "ok"}]  # not a purge: must not count as one
        if self.purge_logged:
            lines.append({"event": "purge", "removed_trash": 2, "removed_conversations": 0})
        logs.put_log_events(
            logGroupName=f"/ecs/{APP_STACK}",
            logStreamName="app/app/1",
            logEvents=[
                {"timestamp": int(datetime.now(UTC).timestamp() * 1000), "message": json.dumps(x)}
                for x in lines
            ],
        )
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=f"{APP_STACK}/cookie-secret", SecretString="generated-by-the-stack"
        )["ARN"]
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName=APP_STACK)
        secrets = [{"name": project.COOKIE_SECRET_ENV, "valueFrom": secret}]
        environment = [{"name": "SESSIONS_DIR", "value": "/data/sessions"}]
        environment += [{"name": k, "value": v} for k, v in self.plain_environment.items()]
        if not self.cookie_secret_from_secrets_manager:
            secrets = []
            environment.append({"name": project.COOKIE_SECRET_ENV, "value": "in-plain-sight"})
        task = ecs.register_task_definition(
            family=APP_STACK,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "app",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:" + "0" * 64,
                    "environment": environment,
                    "secrets": secrets,
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=APP_STACK, serviceName="app", taskDefinition=task, desiredCount=self.desired
        )
        if self.bootstrap_stack:
            cfn.create_stack(StackName=BOOTSTRAP_STACK, TemplateBody=BOOTSTRAP_TEMPLATE)
        parameters = {
            "AppUrl": self.app_url,
            "SignIn": self.sign_in,
            "ClusterName": APP_STACK,
            "ServiceName": "app",
            "LogGroupName": f"/ecs/{APP_STACK}",
            "FileSystemId": file_system,
        }
        cfn.create_stack(
            StackName=APP_STACK,
            TemplateBody=OUTPUTS_TEMPLATE,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        )
        outputs = cfn.describe_stacks(StackName=APP_STACK)["Stacks"][0]["Outputs"]
        topic = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "AlarmTopicArn")
        sns = boto3.client("sns", region_name=REGION)
        if self.alarm_subscription is not None:
            sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="on-call@example.org")
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for namespace, metric in self.alarm_metrics:
            cloudwatch.put_metric_alarm(
                AlarmName=f"{APP_STACK}-{metric}",
                Namespace=namespace,
                MetricName=metric,
                Statistic="Average",
                Period=60,
                EvaluationPeriods=3,
                Threshold=80,
                ComparisonOperator="GreaterThanThreshold",
                AlarmActions=[topic],
            )
        if self.firing_alarm is not None:
            cloudwatch.set_alarm_state(
                AlarmName=f"{APP_STACK}-{self.firing_alarm}", StateValue="ALARM", StateReason="test"
            )
        wrapped_ecs = EcsWithDeploymentConfiguration(
            ecs, {"deploymentCircuitBreaker": self.circuit_breaker}
        )

        def factory(service: str) -> Any:
            if service == "ecs":
                return wrapped_ecs
            if service == "cloudformation" and self.stack_status:
                return CloudFormationWithStatus(cfn, self.stack_status)
            if service == "sns" and self.alarm_subscription == "pending":
                return SnsWithPendingSubscriptions(sns)
            return boto3.client(service, region_name=REGION)

        return factory


def run_live(
    factory: Callable[[str], Any],
    capsys: pytest.CaptureFixture[str],
    page: PageSeen = SIGN_IN,
) -> tuple[int, str]:
    opened: list[str] = []

    def open_page(url: str) -> PageSeen:
        opened.append(url)
        return page

    code = review.main(["--root", str(ROOT)], client_factory=factory, page_opener=open_page)
    output = capsys.readouterr().out
    assert opened in ([], [APP_URL]), opened  # the public URL, probed at most once
    return code, output


LIVE_IDS = [item.id for item in ITEMS if item.mode == "live"]


def test_live_review_passes_on_a_deployment_that_meets_the_checklist(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    factory = Deployment().create(monkeypatch)
    code, output = run_live(factory, capsys)
    assert code == 0, output
    for item_id in LIVE_IDS:
        assert result_line(output, item_id).startswith("| pass |"), output


# Each case breaks one thing and names the item that must fail, with a word of its reason.
BROKEN: dict[str, tuple[dict[str, Any], str, str]] = {
    "efs unencrypted": ({"encrypted": False}, "STA-6", "not encrypted"),
    "efs without backups": ({"backups": False}, "STA-6", "backup policy"),
    "no alarms": ({"alarm_metrics": ()}, "MON-4", "no alarm"),
    "no memory alarm": ({"alarm_metrics": ALARM_METRICS[:-1]}, "MON-4", "memory"),
    "no Bedrock error alarm": (
        {"alarm_metrics": tuple(m for m in ALARM_METRICS if m[1] != "Errors")},
        "MON-4",
        "Bedrock errors",
    ),
    "nobody subscribed": ({"alarm_subscription": None}, "MON-10", "no subscriber"),
    "subscription unconfirmed": ({"alarm_subscription": "pending"}, "MON-10", "pending"),
    "an alarm firing": ({"firing_alarm": "HealthyHostCount"}, "MON-11", "is ALARM"),
    "circuit breaker off": ({"circuit_breaker": {"enable": False}}, "DEP-12", "circuit breaker"),
    "rollback off": (
        {"circuit_breaker": {"enable": True, "rollback": False}},
        "DEP-12",
        "circuit breaker",
    ),
    "tasks not running": ({"running": 1}, "DEP-12", "1 of 2"),
    "no bootstrap stack": ({"bootstrap_stack": False}, "DEP-11", "does not exist"),
    "rolled back": ({"stack_status": "UPDATE_ROLLBACK_COMPLETE"}, "DEP-11", "rolled back"),
    "log group never expires": ({"log_retention": None}, "MON-5", "never expires"),
    "plain secret": ({"plain_environment": {"API_TOKEN": "x"}}, "SEC-4", "API_TOKEN"),
    "cookie secret in plain env": (
        {"cookie_secret_from_secrets_manager": False},
        "SEC-4",
        project.COOKIE_SECRET_ENV,
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_live_review_fails_naming_the_broken_item(
    case: str,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    changes, item_id, reason = BROKEN[case]
    factory = Deployment(**changes).create(monkeypatch)
    code, output = run_live(factory, capsys)
    assert code == 1
    line = result_line(output, item_id)
    assert line.startswith(f"| FAIL | {item_id} |") and reason in line, line
    others = [i for i in LIVE_IDS if i != item_id]
    for other in others:
        assert result_line(output, other).startswith("| pass |"), output


@pytest.mark.parametrize(
    ("page", "failing", "reason"),
    [
        (
            PageSeen("error", "websocket upgrade refused: HTTP 404"),
            {"DEP-13", "AUTH-7"},
            "websocket upgrade refused",
        ),
        (CHAT, {"AUTH-7"}, "shows the chat to a visitor who has not signed in"),
    ],
    ids=["websocket-refused", "chat-without-sign-in"],
)
def test_live_review_fails_on_what_a_visitor_gets(
    page: PageSeen,
    failing: set[str],
    reason: str,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """DEP-13 needs a page that runs (chat or sign-in); AUTH-7 needs the sign-in page."""
    factory = Deployment().create(monkeypatch)
    code, output = run_live(factory, capsys, page=page)
    assert code == 1
    for item_id in LIVE_IDS:
        line = result_line(output, item_id)
        if item_id in failing:
            assert line.startswith(f"| FAIL | {item_id} |") and reason in line, line
        else:
            assert line.startswith("| pass |"), line


def test_live_review_fails_auth_7_when_sign_in_is_disabled(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = Deployment(sign_in="disabled").create(monkeypatch)
    code, output = run_live(factory, capsys, page=CHAT)
    assert code == 1
    line = result_line(output, "AUTH-7")
    assert line.startswith("| FAIL | AUTH-7 |") and "sign-in is off" in line, line
    assert result_line(output, "DEP-13").startswith("| pass |")


def test_live_review_fails_every_live_item_when_the_stack_is_missing(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_live(lambda service: boto3.client(service, region_name=REGION), capsys)
    assert code == 1
    for item_id in LIVE_IDS:
        assert result_line(output, item_id).startswith(f"| FAIL | {item_id} |")


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_TOKEN", True),
        ("AWS_SESSION_TOKEN", True),
        ("GITHUB_TOKEN", True),
        ("TokenSecret", True),
        ("DAILY_TOKEN_LIMIT", False),
        ("DailyTokenLimit", False),
        ("DailyTokenAlarmThreshold", False),
    ],
)
def test_token_counts_are_not_mistaken_for_credentials(name: str, secret: bool) -> None:
    assert bool(project.SECRET_NAME.search(name)) is secret


def test_a_new_alarm_may_lack_data_for_a_while(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a deploy an alarm may not have data yet: INSUFFICIENT_DATA counts as a problem
    only once it has lasted longer than the settling time (ALARM always does)."""
    factory = Deployment().create(monkeypatch)
    name = f"{APP_STACK}-HealthyHostCount"
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason="no data yet"
    )
    live_monitoring = importlib.import_module("production_review.live_monitoring")
    live = review.Live(APP_STACK, BOOTSTRAP_STACK, factory)
    just_now = datetime.now(UTC)
    assert live_monitoring.alarms_quiet(live, now=just_now) == []
    later = just_now + live_monitoring.SETTLING_TIME + timedelta(minutes=1)
    assert live_monitoring.alarms_quiet(live, now=later) == [f"{name} is INSUFFICIENT_DATA"]


def test_the_purge_must_have_run_in_the_last_day_once_the_stack_is_a_day_old(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATA-6 against moto's CloudWatch Logs. moto ignores the JSON filter pattern and returns
    every line, so the "turn" line beside the purge line also shows that only a purge counts."""
    retention = importlib.import_module("production_review.retention")
    just_now = datetime.now(UTC)
    two_days_on = just_now + timedelta(days=2)

    logged = review.Live(APP_STACK, BOOTSTRAP_STACK, Deployment().create(monkeypatch))
    assert retention.purge_ran(logged, now=just_now) == []
    (stale,) = retention.purge_ran(logged, now=two_days_on)  # that run is two days old by then
    assert "no completed purge" in stale


def test_a_young_stack_without_a_purge_yet_passes_and_an_old_one_fails(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    retention = importlib.import_module("production_review.retention")
    never = review.Live(
        APP_STACK, BOOTSTRAP_STACK, Deployment(purge_logged=False).create(monkeypatch)
    )
    just_now = datetime.now(UTC)
    assert retention.purge_ran(never, now=just_now) == []  # created just now: not due yet
    (problem,) = retention.purge_ran(never, now=just_now + timedelta(days=2))
    assert "no completed purge was logged in the last 24 hours" in problem
