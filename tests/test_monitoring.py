"""The stack watches what the app really emits, and may create what it watches with.

- Every metric an alarm or the dashboard reads from the app's namespace is one the baked app's
  core/telemetry.py writes, with the dimension it writes, under every option set of the stack: a
  renamed metric would otherwise leave an alarm that can never fire.

(The execution role's permissions for these resource types are proven, with every other type's,
by tests/test_permission_coverage.py.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.bakery import VARIATIONS, Baker
from tests.support.cloudformation import Evaluator, load_template
from tests.support.stack_parameters import APP_OPTIONS, IMAGE

# What the app's telemetry module declares and writes, read by the baked project's own Python.
EMITTED = """
import json
from core import telemetry
report = telemetry.TurnReport(
    "p", "c", "us.amazon.nova-lite-v1:0", "bedrock", "error", error_code="ThrottlingException",
    input_tokens=5, output_tokens=7, time_to_first_token_ms=10, total_ms=20,
)
line = telemetry.turn_fields(report)
print(json.dumps({"namespace": telemetry.METRIC_NAMESPACE, "line": line}))
"""


def emitted(project: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-c", EMITTED], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output)


def emitted_metrics(line: dict[str, Any]) -> dict[str, set[frozenset[tuple[str, str]]]]:
    """metric name -> the dimension sets (name, value) it is published with."""
    published: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dimensions = frozenset((key, line[key]) for key in dimension_set)
            for metric in directive["Metrics"]:
                published.setdefault(metric["Name"], set()).add(dimensions)
    return published


def alarm_reads(alarm: dict[str, Any]) -> list[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, dimensions) of a plain alarm or of each metric of a metric math one."""
    props = alarm["Properties"]
    if "MetricName" in props:
        dims = frozenset((d["Name"], d["Value"]) for d in props.get("Dimensions", []))
        return [(props["Namespace"], props["MetricName"], dims)]
    reads = []
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
            reads.append((metric["Namespace"], metric["MetricName"], dims))
    return reads


def dashboard_reads(body: str, namespace: str) -> list[tuple[str, frozenset[tuple[str, str]]]]:
    """(metric, dimensions) of every dashboard series in ``namespace``, expanding "." shorthand."""
    reads = []
    for widget in json.loads(body)["widgets"]:
        previous: list[Any] = []
        for series in widget.get("properties", {}).get("metrics", []):
            plain = [part for part in series if isinstance(part, str)]
            if plain == ["..."]:
                plain = previous
            plain = [p if p != "." else previous[i] for i, p in enumerate(plain)]
            previous = plain
            if plain[0] == namespace:
                pairs = frozenset(zip(plain[2::2], plain[3::2], strict=True))
                reads.append((plain[1], pairs))
    return reads


@pytest.fixture(scope="module", params=sorted(VARIATIONS))
def project(request: pytest.FixtureRequest, bake: Baker) -> Path:
    return bake(**VARIATIONS[request.param])


@pytest.mark.parametrize("option", sorted(APP_OPTIONS))
def test_alarms_and_dashboard_read_metrics_the_app_emits(project: Path, option: str) -> None:
    app = emitted(project)
    namespace, published = app["namespace"], emitted_metrics(app["line"])
    evaluator = Evaluator(
        load_template(project / "infra/app.yaml"), {"ImageUri": IMAGE, **APP_OPTIONS[option]}
    )
    resources = {
        name: evaluator.value(spec)
        for name, spec in evaluator.template["Resources"].items()
        if evaluator.exists(name)
    }
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    read = [(m, d) for a in alarms for ns, m, d in alarm_reads(a) if ns == namespace]
    assert {m for m, _ in read} >= {"Errors", "Turns", "Tokens"}, "the app alarms are missing"
    (dashboard,) = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    shown = dashboard_reads(dashboard["Properties"]["DashboardBody"], namespace)
    assert {m for m, _ in shown} >= {"Turns", "Errors", "InputTokens", "OutputTokens"}
    for metric, dimensions in read + shown:
        assert metric in published, f"{metric} is read by the stack but never written by the app"
        assert dimensions in published[metric], f"{metric} is never written with {dimensions}"
    # Every alarm notifies the topic, and the dashboard shows every alarm.
    body = dashboard["Properties"]["DashboardBody"]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert resource["Properties"]["AlarmActions"] == ["<AlarmTopic>"], name
            assert f"<{name}.Arn>" in body, f"{name} is not on the dashboard"


def test_the_dashboard_body_is_json_for_every_variation(project: Path) -> None:
    evaluator = Evaluator(load_template(project / "infra/app.yaml"))
    body = evaluator.value(
        evaluator.template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    )
    widgets = json.loads(body)["widgets"]
    assert widgets and all(re.fullmatch(r"alarm|metric", w["type"]) for w in widgets)


def test_alarms_and_the_task_stop_rule_may_publish_to_the_topic(bake: Baker) -> None:
    """A topic policy replaces the default one: it must name every publisher, scoped."""
    evaluator = Evaluator(load_template(bake() / "infra/app.yaml"), {"ImageUri": IMAGE})
    resources = evaluator.template["Resources"]
    (policy,) = [r for r in resources.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    document = evaluator.value(policy["Properties"])
    assert document["Topics"] == ["<AlarmTopic>"]
    publishers = {
        s["Principal"]["Service"]: s
        for s in document["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s["Action"] == "sns:Publish"
    }
    assert set(publishers) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for statement in publishers.values():
        assert statement["Resource"] == "<AlarmTopic>"
    cloudwatch = publishers["cloudwatch.amazonaws.com"]["Condition"]
    assert cloudwatch == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    events = publishers["events.amazonaws.com"]["Condition"]
    assert events == {"ArnEquals": {"aws:SourceArn": "<TaskStoppedRule.Arn>"}}
    rule = evaluator.value(resources["TaskStoppedRule"]["Properties"])
    assert [target["Arn"] for target in rule["Targets"]] == ["<AlarmTopic>"]
    assert rule["EventPattern"]["detail"]["clusterArn"] == ["<Cluster.Arn>"]
