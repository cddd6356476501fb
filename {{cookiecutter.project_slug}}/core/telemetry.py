"""Structured logs: one JSON object per line, and CloudWatch metrics embedded in them.

``configure_logging`` installs one JSON formatter on the root logger, once per process; every
module keeps using the standard ``logging`` API. On ECS the ``awslogs`` driver ships stdout to the
stack's log group, where CloudWatch reads the ``_aws`` member of a line as Embedded Metric Format
(EMF) and turns it into metrics: no agent, no PutMetricData permission, no extra cost per call.

What a line may contain is deliberate (PRODUCTION_CHECKLIST.md, DATA-3): never message text, never
a session key or identity token. A person appears only as ``person``, a one-way hash of their store
key, which lets an operator count people and follow one person's turns without being able to open
their conversations (the key is the bearer secret; its hash is not).

One ``turn`` line per model call (outcome ``ok``, ``cut_short``, ``interrupted`` or ``error``, plus
``refused`` when the daily allowance stopped the turn before Bedrock was called), and one
``turn_failed`` line with the stack trace for every error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.config import PROJECT_SLUG

logger = logging.getLogger("core.turns")

# CloudWatch names, shared with infra/app.yaml (alarms and dashboard); a template test checks that
# every metric the stack reads is one listed here.
METRIC_NAMESPACE = PROJECT_SLUG
SERVICE_DIMENSION = "Service"
MODEL_DIMENSION = "Model"
ERROR_KIND_DIMENSION = "ErrorKind"
METRIC_UNITS = {
    "Turns": "Count",
    "InputTokens": "Count",
    "OutputTokens": "Count",
    "Tokens": "Count",  # input + output: what the daily token alarm sums
    "TimeToFirstTokenMs": "Milliseconds",
    "Errors": "Count",
}

Outcome = Literal["ok", "cut_short", "interrupted", "error", "refused"]

_CONFIGURED = "_json_logging_configured"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, the record's ``fields`` (see
    ``log_turn``) and, for records with an exception, its stack trace as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))


def configure_logging(level: int = logging.INFO) -> None:
    """Send every log record to stdout as JSON; safe to call again (it does nothing then)."""
    root = logging.getLogger()
    if getattr(root, _CONFIGURED, False):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # The AWS SDK narrates every credential lookup and connection at INFO: keep its warnings only.
    for chatty in ("botocore", "boto3", "urllib3"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    setattr(root, _CONFIGURED, True)


def person_id(store_key: str) -> str:
    """An opaque, stable id for a person in logs: a hash of the store key, never the key."""
    return hashlib.sha256(f"person:{store_key}".encode()).hexdigest()[:16]


def error_kind(code: str | None) -> str:
    """A bounded metric dimension from an error code: ``throttlingException`` -> ``Throttling``."""
    if not code:
        return "Unknown"
    kind = code.removesuffix("Exception").removesuffix("exception") or code
    return kind[0].upper() + kind[1:]


@dataclass(frozen=True)
class TurnReport:
    """What one turn did, without what was said."""

    person: str  # person_id(...), never the key
    conversation: str
    model: str
    provider: str
    outcome: Outcome
    error_code: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    bedrock_latency_ms: int | None = None
    time_to_first_token_ms: int | None = None
    total_ms: int | None = None


def turn_fields(report: TurnReport, *, now_ms: int | None = None) -> dict[str, Any]:
    """The ``turn`` line's members, with an EMF ``_aws`` block unless the turn was refused (no
    model call happened, so there is nothing to count as a turn)."""
    fields: dict[str, Any] = {
        "event": "turn",
        "person": report.person,
        "conversation": report.conversation,
        MODEL_DIMENSION: report.model,
        "provider": report.provider,
        "outcome": report.outcome,
        "error_code": report.error_code,
        "BedrockLatencyMs": report.bedrock_latency_ms,
        "TotalMs": report.total_ms,
    }
    if report.outcome == "refused":
        return fields
    values = {
        "Turns": 1,
        "InputTokens": report.input_tokens,
        "OutputTokens": report.output_tokens,
        "Tokens": (
            report.input_tokens + report.output_tokens
            if report.input_tokens is not None and report.output_tokens is not None
            else None
        ),
        "TimeToFirstTokenMs": report.time_to_first_token_ms,
        "Errors": 1 if report.outcome == "error" else 0,
    }
    present = {name: value for name, value in values.items() if value is not None}
    fields.update(present)
    fields[SERVICE_DIMENSION] = METRIC_NAMESPACE
    directives: list[dict[str, Any]] = [
        {
            "Namespace": METRIC_NAMESPACE,
            "Dimensions": [[SERVICE_DIMENSION], [SERVICE_DIMENSION, MODEL_DIMENSION]],
            "Metrics": [{"Name": name, "Unit": METRIC_UNITS[name]} for name in present],
        }
    ]
    if report.outcome == "error":
        fields[ERROR_KIND_DIMENSION] = error_kind(report.error_code)
        directives.append(
            {
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [[SERVICE_DIMENSION, ERROR_KIND_DIMENSION]],
                "Metrics": [{"Name": "Errors", "Unit": "Count"}],
            }
        )
    timestamp = now_ms if now_ms is not None else int(time.time() * 1000)
    fields["_aws"] = {"Timestamp": timestamp, "CloudWatchMetrics": directives}
    return fields


def log_turn(report: TurnReport, error: BaseException | None = None) -> None:
    """Write the ``turn`` line, and a ``turn_failed`` line with the stack trace for an error."""
    logger.info("turn", extra={"fields": turn_fields(report)})
    if error is not None and report.outcome == "error":
        failure = {
            "event": "turn_failed",
            "person": report.person,
            "conversation": report.conversation,
            MODEL_DIMENSION: report.model,
            "error_code": report.error_code,
        }
        trace = (type(error), error, error.__traceback__)
        logger.error("turn failed", exc_info=trace, extra={"fields": failure})
