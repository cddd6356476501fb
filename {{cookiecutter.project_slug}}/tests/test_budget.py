"""The daily token allowance: counted per person and UTC day, shared across processes, refused
before the model is called, and explained."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.budget import BudgetExceededError, DailyAllowance, describe_wait, next_reset
from core.chat import ChatTurn
from core.identity import owner_id_for
from core.messages import Usage
from core.sessions import SessionStore, new_session_key
from tests.fakes import ScriptedProvider

MODEL = "us.amazon.nova-lite-v1:0"
PROJECT = Path(__file__).resolve().parent.parent
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(moment: datetime) -> DailyAllowance:
    """An allowance of 1,000 tokens in a temporary root, whose clock says ``moment``."""
    return DailyAllowance(Path(os.environ["BUDGET_ROOT"]), 1000, clock=lambda: moment)


@pytest.fixture(autouse=True)
def budget_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BUDGET_ROOT", str(tmp_path))
    return tmp_path


def test_usage_adds_up_per_person_and_day(session_key: str) -> None:
    allowance = at(NOON)
    allowance.record(session_key, MODEL, Usage(300, 100))
    allowance.record(session_key, MODEL, Usage(50, 25, source="estimate"))
    allowance.record(new_session_key(), MODEL, Usage(999, 999))
    assert allowance.used_today(session_key) == 475
    assert [r.usage.source for r in allowance.records_today(session_key)] == ["bedrock", "estimate"]
    # The next UTC day starts from zero: the reset is a new file, nothing is rewritten.
    assert at(datetime(2026, 12, 1, 0, 0, tzinfo=UTC)).used_today(session_key) == 0


def test_the_turn_after_the_allowance_is_refused_with_the_reset_time(session_key: str) -> None:
    allowance = at(NOON)
    allowance.check(session_key)
    allowance.record(session_key, MODEL, Usage(700, 300))
    with pytest.raises(BudgetExceededError) as refused:
        allowance.check(session_key)
    assert "1,000 tokens" in refused.value.user_message
    assert "midnight UTC (in 12 h 0 min)" in refused.value.user_message


def test_zero_means_no_limit(session_key: str, tmp_path: Path) -> None:
    allowance = DailyAllowance(tmp_path, 0)
    allowance.record(session_key, MODEL, Usage(10**9, 10**9))
    allowance.check(session_key)  # does not raise


def test_the_reset_is_the_next_midnight_utc() -> None:
    assert next_reset(NOON) == datetime(2026, 12, 1, tzinfo=UTC)
    assert describe_wait(datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC)) == "in 1 min"


def test_a_line_torn_by_a_crash_is_skipped_and_not_glued_onto(session_key: str) -> None:
    allowance = at(NOON)
    allowance.record(session_key, MODEL, Usage(10, 10))
    (day_file,) = (Path(os.environ["BUDGET_ROOT"]) / session_key / "usage").iterdir()
    with day_file.open("ab") as file:
        file.write(b'{"at":"2026-11-30T12:00:00Z","model":"x","input_tok')
    assert allowance.used_today(session_key) == 20
    allowance.record(session_key, MODEL, Usage(5, 5))
    assert allowance.used_today(session_key) == 30
    assert oct(day_file.stat().st_mode & 0o777) == "0o600"


def test_a_signed_in_person_has_an_allowance_of_their_own(session_key: str, tmp_path: Path) -> None:
    """Signed in, the store key is the person's owner id (core/identity.py), not a browser key."""
    person = owner_id_for("https://login.example.com", "alice")
    allowance = DailyAllowance(tmp_path, 10)
    allowance.record(person, MODEL, Usage(6, 4))
    with pytest.raises(BudgetExceededError):
        allowance.check(person)
    allowance.check(session_key)  # an anonymous browser counts separately: does not raise
    assert (tmp_path / person / "usage").is_dir()


@pytest.mark.parametrize("key", ["../etc", "", "A" * 36, "not-a-key"])
def test_only_valid_store_keys_name_a_usage_folder(key: str, tmp_path: Path) -> None:
    allowance = DailyAllowance(tmp_path, 10)
    with pytest.raises(ValueError, match="valid store key"):
        allowance.record(key, MODEL, Usage(1, 1))
    assert list(tmp_path.iterdir()) == []


def test_a_refused_turn_keeps_what_was_typed_and_never_calls_the_model(
    store: SessionStore, session_key: str
) -> None:
    allowance = DailyAllowance(store.root, 100)
    allowance.record(session_key, MODEL, Usage(90, 10))
    provider = ScriptedProvider(["never"])
    conversation_id = store.create_conversation(session_key)
    turn = ChatTurn(
        store, session_key, conversation_id, [], "My long question", provider, MODEL,
        allowance=allowance,
    )  # fmt: skip
    assert list(turn.stream()) == []
    assert provider.seen == []  # Bedrock was never called
    question, reply = store.read_messages(session_key, conversation_id)
    assert (question.role, question.content) == ("user", "My long question")
    assert reply.incomplete and reply.content == "" and reply.usage is None
    assert reply.error is not None and "resets at midnight UTC" in reply.error
    assert turn.refusal is not None and turn.error is None


def test_a_turn_records_its_usage_in_the_allowance(store: SessionStore, session_key: str) -> None:
    allowance = DailyAllowance(store.root, 0)
    provider = ScriptedProvider(["Hi"], usage=Usage(12, 3, latency_ms=40))
    conversation_id = store.create_conversation(session_key)
    turn = ChatTurn(
        store, session_key, conversation_id, [], "Hello", provider, MODEL, allowance=allowance
    )
    list(turn.stream())
    (record,) = allowance.records_today(session_key)
    assert (record.model, record.usage.total_tokens) == (MODEL, 15)


def test_two_processes_share_one_allowance_without_losing_a_turn(tmp_path: Path) -> None:
    """Two tasks (processes), two sessions each (threads), one person, one folder: every turn is
    counted, nobody spends past the limit by more than one turn each, and all end refused."""
    key, limit, turn_tokens = new_session_key(), 3000, 100
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.budget_worker", str(tmp_path), key, str(limit)],
            cwd=PROJECT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        output, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        results.append(output.split())
    allowed = sum(int(words[1]) for words in results)
    assert all(words[3] == "True" for words in results), results
    used = DailyAllowance(tmp_path, limit).used_today(key)
    assert used == allowed * turn_tokens  # no append lost, none torn
    assert limit <= used < limit + 4 * turn_tokens  # at most one turn over, per concurrent runner
    with pytest.raises(BudgetExceededError):
        DailyAllowance(tmp_path, limit).check(key)


@pytest.mark.parametrize("limit", [0, 100])
def test_usage_that_cannot_be_read_or_recorded_never_fails_the_turn_or_leaks_the_key(
    store: SessionStore, session_key: str, caplog: pytest.LogCaptureFixture, limit: int
) -> None:
    allowance = DailyAllowance(store.root, limit)
    conversation_id = store.create_conversation(session_key)
    (store.root / session_key / "usage").write_text("not a folder")
    provider = ScriptedProvider(["Hi"], usage=Usage(3, 4))
    turn = ChatTurn(
        store, session_key, conversation_id, [], "Hello", provider, MODEL, allowance=allowance
    )
    assert "".join(turn.stream()) == "Hi"
    assert store.read_messages(session_key, conversation_id)[-1].usage == Usage(3, 4)
    assert "usage not recorded" in caplog.text
    assert ("allowance not checked" in caplog.text) is (limit > 0)
    assert session_key not in caplog.text
