"""Logs someone can read and metrics CloudWatch accepts: one JSON line per turn, one with the stack
trace per failure, Embedded Metric Format that follows the specification, and nothing secret."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import telemetry
from core.chat import ChatTurn
from core.llm import ReplyCutShortError, ThrottledError
from core.messages import Usage
from core.sessions import SessionStore
from tests.emf import emf_problems
from tests.fakes import ScriptedProvider

MODEL = "us.amazon.nova-lite-v1:0"
PROJECT = Path(__file__).resolve().parent.parent
QUESTION = "What is the secret plan for project Bluebird?"
ANSWER = "The plan for Bluebird is confidential."


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the app's formatter writes while the test runs, at INFO and above."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(telemetry.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


def run_turn(store: SessionStore, key: str, provider: ScriptedProvider) -> ChatTurn:
    conversation_id = store.create_conversation(key)
    turn = ChatTurn(store, key, conversation_id, [], QUESTION, provider, MODEL)
    list(turn.stream())
    return turn


def parsed(logs: io.StringIO) -> list[dict[str, Any]]:
    """Every line written so far, parsed: each must be one JSON object."""
    return [json.loads(line) for line in logs.getvalue().splitlines()]


def test_a_turn_is_one_json_line_with_valid_emf(
    store: SessionStore, session_key: str, logs: io.StringIO
) -> None:
    provider = ScriptedProvider([ANSWER], usage=Usage(812, 95, latency_ms=640))
    turn = run_turn(store, session_key, provider)
    (line,) = parsed(logs)
    assert emf_problems(line) == []
    assert line["event"] == "turn" and line["outcome"] == "ok"
    assert line["person"] == telemetry.person_id(session_key)
    assert line["conversation"] == turn._conversation_id
    assert (line["Model"], line["InputTokens"], line["OutputTokens"]) == (MODEL, 812, 95)
    assert line["BedrockLatencyMs"] == 640 and line["Errors"] == 0 and line["Turns"] == 1
    assert isinstance(line["TimeToFirstTokenMs"], int) and isinstance(line["TotalMs"], int)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == telemetry.METRIC_NAMESPACE
    assert ["Service", "Model"] in directive["Dimensions"]
    names = {metric["Name"] for metric in directive["Metrics"]}
    assert names == set(telemetry.METRIC_UNITS)


def test_a_failure_is_counted_by_kind_and_logged_with_its_stack_trace(
    store: SessionStore, session_key: str, logs: io.StringIO
) -> None:
    error = ThrottledError("Bedrock is throttling.", code="throttlingException")
    run_turn(store, session_key, ScriptedProvider(["Partial"], error=error))
    turn_line, failure = (line for line in parsed(logs) if line["logger"] == "core.turns")
    assert emf_problems(turn_line) == []
    assert (turn_line["outcome"], turn_line["Errors"], turn_line["ErrorKind"]) == (
        "error",
        1,
        "Throttling",
    )
    by_kind = turn_line["_aws"]["CloudWatchMetrics"][1]
    assert by_kind["Dimensions"] == [["Service", "ErrorKind"]]
    assert failure["event"] == "turn_failed" and failure["level"] == "ERROR"
    assert "ThrottledError" in failure["stack_trace"]
    assert "Traceback" in failure["stack_trace"]


def test_a_reply_cut_at_the_length_limit_is_not_an_error(
    store: SessionStore, session_key: str, logs: io.StringIO
) -> None:
    cut = ReplyCutShortError("The reply reached the length limit.", code="max_tokens")
    run_turn(store, session_key, ScriptedProvider(["Long"], error=cut, usage=Usage(10, 2048)))
    (line,) = parsed(logs)
    assert (line["outcome"], line["Errors"], line["OutputTokens"]) == ("cut_short", 0, 2048)
    assert emf_problems(line) == []


def test_an_error_before_any_text_has_no_time_to_first_token(
    store: SessionStore, session_key: str, logs: io.StringIO
) -> None:
    error = ThrottledError("Throttled.", code="ThrottlingException")
    run_turn(store, session_key, ScriptedProvider([], error=error))
    line = parsed(logs)[0]
    assert "TimeToFirstTokenMs" not in line and "InputTokens" not in line
    assert emf_problems(line) == []


def test_logs_never_carry_message_text_or_the_session_key(
    store: SessionStore, session_key: str, logs: io.StringIO
) -> None:
    run_turn(store, session_key, ScriptedProvider([ANSWER], usage=Usage(5, 5)))
    error = ThrottledError("Throttled.", code="ThrottlingException")
    run_turn(store, session_key, ScriptedProvider([ANSWER], error=error))
    assert len(parsed(logs)) == 3
    text = logs.getvalue()
    for secret in (session_key, QUESTION, ANSWER, "Bluebird"):
        assert secret not in text


def test_the_validator_rejects_what_cloudwatch_would_drop() -> None:
    line = telemetry.turn_fields(
        telemetry.TurnReport("p", "c", MODEL, "bedrock", "ok", input_tokens=1, output_tokens=2)
    )
    assert emf_problems(line) == []
    assert emf_problems({**line, "InputTokens": "1"}) != []  # a metric must be a number
    assert emf_problems({**line, "Model": None}) != []  # a dimension needs its member
    assert emf_problems({**line, "_aws": {"CloudWatchMetrics": []}}) != []  # Timestamp required
    refused = telemetry.TurnReport("p", "c", MODEL, "echo", "refused")
    assert "_aws" not in telemetry.turn_fields(refused)


def test_logging_is_configured_once_and_writes_json_to_stdout() -> None:
    script = (
        "import logging\n"
        "from core import telemetry\n"
        "telemetry.configure_logging()\n"
        "telemetry.configure_logging()\n"
        "logging.getLogger('core.sessions').warning('conversation %s moved', 'abc')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == (
        "WARNING",
        "core.sessions",
        "conversation abc moved",
    )


def test_person_ids_are_stable_opaque_and_distinct(session_key: str) -> None:
    assert telemetry.person_id(session_key) == telemetry.person_id(session_key)
    assert session_key not in telemetry.person_id(session_key)
    assert telemetry.person_id(session_key) != telemetry.person_id(session_key[::-1])
