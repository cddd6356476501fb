"""The CloudWatch Embedded Metric Format rules a log line must follow, as a checker for tests.

Written from the specification ("Specification: Embedded metric format", Amazon CloudWatch User
Guide, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):

- the line is one JSON object; its root has an ``_aws`` metadata object with ``Timestamp`` (a
  number of milliseconds since the epoch) and ``CloudWatchMetrics`` (an array of MetricDirective);
- a MetricDirective has ``Namespace`` (string), ``Dimensions`` (array of DimensionSets, each an
  array of at most 30 dimension keys) and ``Metrics`` (array of at most 100 MetricDefinitions);
- a MetricDefinition has ``Name`` (string) and optionally ``Unit`` (a CloudWatch unit) and
  ``StorageResolution`` (1 or 60);
- every dimension key and metric name refers to a root member (a "target member"): dimension
  values are strings, metric values are numbers or arrays of at most 100 numbers.

CloudWatch drops a line that breaks these rules without a word, so the app's lines are checked here
rather than discovered missing from a dashboard.
"""

from __future__ import annotations

from typing import Any

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def emf_problems(line: dict[str, Any]) -> list[str]:
    """Every way ``line`` breaks the specification's required structure; [] when it is valid."""
    metadata = line.get("_aws")
    if not isinstance(metadata, dict):
        return ["no _aws metadata object"]
    problems = []
    if not _is_number(metadata.get("Timestamp")):
        problems.append("_aws.Timestamp is not a number of milliseconds")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return [*problems, "_aws.CloudWatchMetrics is not an array"]
    for index, directive in enumerate(directives):
        where = f"CloudWatchMetrics[{index}]"
        if not isinstance(directive, dict):
            problems.append(f"{where} is not an object")
            continue
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024:
            problems.append(f"{where}.Namespace is not a string of 1 to 1024 characters")
        dimension_sets = directive.get("Dimensions")
        if not isinstance(dimension_sets, list):
            problems.append(f"{where}.Dimensions is not an array")
            dimension_sets = []
        for dimension_set in dimension_sets:
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                problems.append(f"{where}: a DimensionSet is not an array of at most 30 keys")
                continue
            for key in dimension_set:
                if not isinstance(key, str) or not isinstance(line.get(key), str):
                    problems.append(f"{where}: dimension {key!r} has no string target member")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > 100:
            problems.append(f"{where}.Metrics is not an array of at most 100 definitions")
            continue
        for metric in metrics:
            name = metric.get("Name") if isinstance(metric, dict) else None
            if not isinstance(name, str):
                problems.append(f"{where}: a MetricDefinition has no Name")
                continue
            value = line.get(name)
            numbers = value if isinstance(value, list) else [value]
            if not numbers or len(numbers) > 100 or not all(_is_number(v) for v in numbers):
                problems.append(f"{where}: metric {name!r} has no numeric target member")
            if "Unit" in metric and metric["Unit"] not in UNITS:
                problems.append(f"{where}: metric {name!r} has an unknown Unit")
            if "StorageResolution" in metric and metric["StorageResolution"] not in (1, 60):
                problems.append(f"{where}: metric {name!r} StorageResolution is not 1 or 60")
    return problems
