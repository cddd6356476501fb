"""Tests of the production review (package production_review, run by scripts/review.py).

The checklist and the checks agree; the review maps checkov's results and the Python checks to the
items; the live checks run against moto's in-memory AWS (`mock_aws`) for the stacks, and a stubbed
page probe for the network part: the review's page opener is replaced by a function returning the
result scripts/probe.py would (the probe itself runs against real servers in the template's
tests/test_probe.py). moto 5.2.5 does not keep an ECS service's `deploymentConfiguration`, so
for that one call (`describe_services`) the tests wrap moto's ECS client and add the configuration
the service was created with; likewise moto cannot put a stack in UPDATE_ROLLBACK_COMPLETE, so one
test wraps `describe_stacks` to report it. Every other call goes to moto unchanged.

checkov and zizmor are not installed here (CI runs them, and the template's tests run the review
with both against injected defects); these tests give the review checkov's JSON report instead,
and put a stand-in for zizmor on PATH that prints the findings a test gives it.
"""

from __future__ import annotations

import json
import os
import re
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
from production_review import checkov, main, project, static, zizmor
from production_review.checklist import Item, parse_checklist, pr_template
from production_review.live import SETTLING_TIME, Live, alarms_quiet, purge_ran

ROOT = Path(__file__).resolve().parent.parent
ITEMS = parse_checklist((ROOT / project.CHECKLIST).read_text(encoding="utf-8"))
REGION = project.DEFAULT_REGION
APP_STACK = project.DEFAULT_APP_STACK
BOOTSTRAP_STACK = project.DEFAULT_BOOTSTRAP_STACK
CHECKOV_IDS = sorted({p for item in ITEMS for p in item.proofs if p.startswith("CKV")})


def result_line(output: str, item_id: str) -> str:
    """The report's one line for an item."""
    lines = [line for line in output.splitlines() if f"| {item_id} |" in line]
    assert len(lines) == 1, f"expected one line for {item_id} in:\n{output}"
    return lines[0]


def checkov_report(root: Path, failed: dict[str, str] | None = None, skip: str = "") -> dict:
    """A checkov JSON report (the shape of `checkov -o json`) of root/infra/app.yaml in which
    every check the checklist names passed on one resource, except those ``failed`` (id ->
    resource) and ``skip`` (absent: it examined nothing)."""
    failed = failed or {}

    def entry(check_id: str, resource: str) -> dict[str, str]:
        path = str(root / project.APP_TEMPLATE)
        return {"check_id": check_id, "resource": resource, "file_abs_path": path}

    passed = [entry(i, "AWS::X::Y.Resource") for i in CHECKOV_IDS if i not in failed and i != skip]
    return {
        "check_type": "cloudformation",
        "results": {
            "passed_checks": passed,
            "failed_checks": [entry(i, r) for i, r in failed.items()],
            "skipped_checks": [],
            "parsing_errors": [],
        },
    }


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    """checkov's report for this repository with every check passing."""
    path = tmp_path / "checkov.json"
    path.write_text(json.dumps(checkov_report(ROOT)))
    return path


def zizmor_finding(ident: str, path: str, line: int, *, ignored: bool = False) -> dict[str, Any]:
    """One finding as `zizmor --format json` prints it (the fields the review reads)."""
    symbolic = {"key": {"Local": {"verbatim_path": path}}, "annotation": "this", "kind": "Primary"}
    concrete = {"location": {"start_point": {"row": line - 1, "column": 0}}}
    location = {"symbolic": symbolic, "concrete": concrete}
    return {"ident": ident, "desc": f"{ident} found", "locations": [location], "ignored": ignored}


@dataclass
class FakeZizmor:
    """The ``zizmor`` on PATH during these tests: prints ``stdout`` and ``stderr``, exits with
    ``exit_code``, and writes the arguments it was called with to ``argv_file``."""

    script: Path
    argv_file: Path

    def says(self, stdout: str = "[]", exit_code: int = 0, stderr: str = "") -> None:
        lines = [
            f"#!{sys.executable}",
            "import json, sys",
            f"open({str(self.argv_file)!r}, 'w').write(json.dumps(sys.argv[1:]))",
            f"sys.stdout.write({stdout!r})",
            f"sys.stderr.write({stderr!r})",
            f"sys.exit({exit_code})",
        ]
        self.script.write_text("\n".join(lines) + "\n")
        self.script.chmod(0o755)

    @property
    def argv(self) -> list[str]:
        return json.loads(self.argv_file.read_text())


@pytest.fixture(autouse=True)
def fake_zizmor(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> FakeZizmor:
    """Every review here runs this zizmor, which finds nothing unless a test says otherwise.
    (Outside ``tmp_path``, which some tests scan.)"""
    folder = tmp_path_factory.mktemp("zizmor")
    fake = FakeZizmor(folder / "zizmor", folder / "argv.json")
    fake.says()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake


# --------------------------------------------------------------------------------------------------
# The checklist, the checks and the pull request template agree


def test_every_item_names_checks_that_exist() -> None:
    policies = [
        yaml.safe_load(p.read_text()) for p in sorted((ROOT / checkov.POLICIES).glob("*.yaml"))
    ]
    own = {policy["metadata"]["id"] for policy in policies}
    assert len(own) == len(policies)  # one id per policy file
    for item in ITEMS:
        for proof in item.proofs:
            audit = proof.removeprefix(zizmor.PREFIX)
            assert (
                proof in static.CHECKS
                or proof in own
                or re.fullmatch(r"CKV_AWS_\d+", proof)
                or (proof.startswith(zizmor.PREFIX) and audit in zizmor.AUDITS)
            ), (item.id, proof)
    assert own <= set(CHECKOV_IDS)  # every policy proves an item
    assert set(static.CHECKS) <= {p for item in ITEMS for p in item.proofs}


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
    assert template == pr_template(ITEMS)
    for item in ITEMS:
        assert (f"**{item.id}**" in template) == (item.mode == "manual")


def test_drift_between_checklist_and_checks_fails_the_review(tmp_path: Path) -> None:
    """An item naming an unknown check or zizmor audit, and a check no item names, are failures
    of their own."""
    items = [
        Item("NEW-1", "An item with a misspelt check", "static", ("no_such_check",)),
        Item("NEW-2", "An item with a misspelt audit", "static", ("zizmor/unpined-uses",)),
    ]
    outcomes = main.review(items, static.Repo(tmp_path), checkov.Results(), None, zizmor.Findings())
    statuses = {outcome.item.id: outcome.status for outcome in outcomes}
    assert statuses.pop("NEW-1") == statuses.pop("NEW-2") == "FAIL"
    live_ids = {item.id for item in ITEMS if item.mode == "live"}
    assert statuses == {name: "FAIL" for name in [*static.CHECKS, *live_ids]}


def test_malformed_checklist_is_rejected() -> None:
    with pytest.raises(ValueError, match="AUTH-1"):
        parse_checklist("### AUTH-1: no review line\n\nText.\n")
    with pytest.raises(ValueError, match="A-1"):
        parse_checklist("### A-1: x\n- **Review:** static. Proved by nothing.\n")
    with pytest.raises(ValueError, match="duplicate"):
        parse_checklist("### A-1: x\n- **Review:** manual\n### A-1: y\n- **Review:** manual\n")


def test_cloudformation_short_tags_become_long_form() -> None:
    body = yaml.load(
        "A: !Ref X\nB: !GetAtt R.Arn\nC: !Sub '${R}'\nD: !If [Cond, 1, 2]\n",
        Loader=static.CfnLoader,  # noqa: S506 (a SafeLoader subclass)
    )
    assert body == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["R", "Arn"]},
        "C": {"Fn::Sub": "${R}"},
        "D": {"Fn::If": ["Cond", 1, 2]},
    }


# --------------------------------------------------------------------------------------------------
# Static mode: this repository passes; checkov's results decide the items that name them


def test_this_repository_passes_the_static_review(
    report_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main.main(["--static", "--root", str(ROOT), "--checkov-report", str(report_file)])
    output = capsys.readouterr().out
    assert code == 0, output
    for item in ITEMS:
        expected = {"static": "pass", "live": "not run", "manual": "manual"}[item.mode]
        assert result_line(output, item.id).startswith(f"| {expected} |")


@pytest.mark.parametrize(
    ("failed", "skip", "reason"),
    [
        ({"CKV_AWS_42": "AWS::EFS::FileSystem.FileSystem"}, "", "CKV_AWS_42 fails on AWS::EFS"),
        ({}, "CKV_AWS_42", "CKV_AWS_42 examined no resource"),
    ],
    ids=["failed", "examined-nothing"],
)
def test_a_check_that_fails_or_examines_nothing_fails_its_item(
    tmp_path: Path, failed: dict[str, str], skip: str, reason: str
) -> None:
    results = checkov.results_for(checkov_report(ROOT, failed, skip), ROOT)
    (sta_2,) = [item for item in ITEMS if item.id == "STA-2"]
    assert sta_2.proofs == ("CKV_AWS_42",)
    (outcome,) = [
        o for o in main.review(ITEMS, static.Repo(ROOT), results, None) if o.item == sta_2
    ]
    assert outcome.status == "FAIL" and reason in outcome.detail


def test_the_report_counts_only_this_repository_and_its_parse_errors(tmp_path: Path) -> None:
    """A report of several folders (as CI or the template's tests make) is read for ours only."""
    elsewhere = checkov_report(tmp_path / "other", {"CKV_AWS_42": "AWS::EFS::FileSystem.Other"})
    ours = checkov_report(ROOT)
    results = checkov.results_for([ours, elsewhere], ROOT)
    assert results.problems("CKV_AWS_42") == []
    ours["results"]["parsing_errors"] = [str(ROOT / project.APP_TEMPLATE)]
    (problem,) = checkov.results_for(ours, ROOT).problems("CKV_AWS_42")
    assert "could not parse" in problem


def test_without_checkov_the_review_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "")
    assert main.main(["--static", "--root", str(ROOT)]) == 2
    assert f"uv tool install checkov=={checkov.CHECKOV_VERSION}" in capsys.readouterr().err


def test_zizmor_findings_fail_the_items_that_name_their_audit(
    report_file: Path, fake_zizmor: FakeZizmor, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each finding is reported where zizmor found it; a finding a ``# zizmor: ignore`` comment
    silenced is not."""
    findings = [
        zizmor_finding("unpinned-uses", ".github/workflows/ci.yml", 42),
        zizmor_finding("concurrency-limits", ".github/workflows/deploy.yml", 1, ignored=True),
    ]
    fake_zizmor.says(json.dumps(findings))
    code = main.main(["--static", "--root", str(ROOT), "--checkov-report", str(report_file)])
    output = capsys.readouterr().out
    assert code == 1
    expected = "zizmor/unpinned-uses: .github/workflows/ci.yml:42: unpinned-uses found (this)"
    assert result_line(output, "DEP-5") == (
        f"| FAIL | DEP-5 | Every GitHub Action is pinned to a full commit SHA | {expected} |"
    )
    assert result_line(output, "DEP-10").startswith("| pass |")
    assert fake_zizmor.argv[:6] == [
        "--offline",
        "--strict-collection",
        "--persona",
        "pedantic",
        "--no-exit-codes",
        "--format",
    ]


@pytest.mark.parametrize(
    ("stdout", "exit_code", "stderr", "reason"),
    [
        ("", 1, " INFO zizmor\nfatal: no audit was performed\nStack backtrace:\n 0: x", "exit 1"),
        ("not JSON", 0, "", "unreadable output"),
    ],
    ids=["failed", "unreadable"],
)
def test_a_zizmor_that_audits_nothing_fails_its_items(
    report_file: Path,
    fake_zizmor: FakeZizmor,
    capsys: pytest.CaptureFixture[str],
    stdout: str,
    exit_code: int,
    stderr: str,
    reason: str,
) -> None:
    """With --strict-collection zizmor fails on a workflow it cannot parse: never a pass."""
    fake_zizmor.says(stdout, exit_code, stderr)
    code = main.main(["--static", "--root", str(ROOT), "--checkov-report", str(report_file)])
    output = capsys.readouterr().out
    assert code == 1
    for item_id in ("DEP-5", "DEP-6", "DEP-10"):
        line = result_line(output, item_id)
        assert line.startswith("| FAIL |") and "zizmor could not audit .github" in line
        assert reason in line and "Stack backtrace" not in line and "INFO" not in line


def test_without_zizmor_the_review_says_how_to_install_it(
    report_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "")
    options = ["--static", "--root", str(ROOT), "--checkov-report", str(report_file)]
    assert main.main(options) == 2
    assert f"uv tool install zizmor=={zizmor.ZIZMOR_VERSION}" in capsys.readouterr().err


@pytest.mark.parametrize("workflow", ["ci.yml", "deploy.yml"])
def test_the_checkov_and_zizmor_versions_are_the_ones_the_workflows_pin(workflow: str) -> None:
    text = (ROOT / ".github/workflows" / workflow).read_text(encoding="utf-8")
    assert f'CHECKOV_VERSION: "{checkov.CHECKOV_VERSION}"' in text
    assert f'ZIZMOR_VERSION: "{zizmor.ZIZMOR_VERSION}"' in text


def test_secret_scan_without_git_honours_gitignore(tmp_path: Path) -> None:
    """Before `git init`, ignored files (a local .env, conversations) are not "committed"."""
    (tmp_path / ".gitignore").write_text("# local\n.env\n.sessions/\n*.log\n")
    for name in (".env", ".sessions/a.jsonl", "logs/run.log", "app/.env.local", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    files = {p.relative_to(tmp_path).as_posix() for p in static.repository_files(tmp_path)}
    assert files == {".gitignore", "app/.env.local", "notes.txt"}
    assert static.no_committed_secrets(static.Repo(tmp_path)) == [
        "app/.env.local must not be committed"
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
    assert static.subject_is_scoped(subject) is scoped


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
    tmp_path: Path,
    page: PageSeen = SIGN_IN,
) -> tuple[int, str]:
    opened: list[str] = []

    def open_page(url: str) -> PageSeen:
        opened.append(url)
        return page

    report = tmp_path / "checkov.json"
    report.write_text(json.dumps(checkov_report(ROOT)))
    options = ["--root", str(ROOT), "--checkov-report", str(report)]
    code = main.main(options, client_factory=factory, page_opener=open_page)
    output = capsys.readouterr().out
    assert opened in ([], [APP_URL]), opened  # the public URL, probed at most once
    return code, output


LIVE_IDS = [item.id for item in ITEMS if item.mode == "live"]


def test_live_review_passes_on_a_deployment_that_meets_the_checklist(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    factory = Deployment().create(monkeypatch)
    code, output = run_live(factory, capsys, tmp_path)
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
    tmp_path: Path,
) -> None:
    changes, item_id, reason = BROKEN[case]
    factory = Deployment(**changes).create(monkeypatch)
    code, output = run_live(factory, capsys, tmp_path)
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
    tmp_path: Path,
) -> None:
    """DEP-13 needs a page that runs (chat or sign-in); AUTH-7 needs the sign-in page."""
    factory = Deployment().create(monkeypatch)
    code, output = run_live(factory, capsys, tmp_path, page=page)
    assert code == 1
    for item_id in LIVE_IDS:
        line = result_line(output, item_id)
        if item_id in failing:
            assert line.startswith(f"| FAIL | {item_id} |") and reason in line, line
        else:
            assert line.startswith("| pass |"), line


def test_live_review_fails_auth_7_when_sign_in_is_disabled(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    factory = Deployment(sign_in="disabled").create(monkeypatch)
    code, output = run_live(factory, capsys, tmp_path, page=CHAT)
    assert code == 1
    line = result_line(output, "AUTH-7")
    assert line.startswith("| FAIL | AUTH-7 |") and "sign-in is off" in line, line
    assert result_line(output, "DEP-13").startswith("| pass |")


def test_live_review_fails_every_live_item_when_the_stack_is_missing(
    aws: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, output = run_live(
        lambda service: boto3.client(service, region_name=REGION), capsys, tmp_path
    )
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
    just_now = datetime.now(UTC)
    assert alarms_quiet(Live(APP_STACK, BOOTSTRAP_STACK, factory, now=just_now)) == []
    later = just_now + SETTLING_TIME + timedelta(minutes=1)
    live = Live(APP_STACK, BOOTSTRAP_STACK, factory, now=later)
    assert alarms_quiet(live) == [f"{name} is INSUFFICIENT_DATA"]


def test_the_purge_must_have_run_in_the_last_day_once_the_stack_is_a_day_old(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATA-6 against moto's CloudWatch Logs. moto ignores the JSON filter pattern and returns
    every line, so the "turn" line beside the purge line also shows that only a purge counts."""
    factory = Deployment().create(monkeypatch)
    just_now = datetime.now(UTC)
    assert purge_ran(Live(APP_STACK, BOOTSTRAP_STACK, factory, now=just_now)) == []
    later = Live(APP_STACK, BOOTSTRAP_STACK, factory, now=just_now + timedelta(days=2))
    (stale,) = purge_ran(later)  # that run is two days old by then
    assert "no completed purge" in stale


def test_a_young_stack_without_a_purge_yet_passes_and_an_old_one_fails(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = Deployment(purge_logged=False).create(monkeypatch)
    just_now = datetime.now(UTC)
    young = Live(APP_STACK, BOOTSTRAP_STACK, factory, now=just_now)
    assert purge_ran(young) == []  # created just now: not due yet
    old = Live(APP_STACK, BOOTSTRAP_STACK, factory, now=just_now + timedelta(days=2))
    (problem,) = purge_ran(old)
    assert "no completed purge was logged in the last 24 hours" in problem
