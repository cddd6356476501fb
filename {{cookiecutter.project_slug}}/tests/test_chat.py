"""One chat turn: what is stored, in which order, and what survives a failure."""

from __future__ import annotations

from core.chat import INTERRUPTED, ChatTurn, title_from
from core.llm import AccessDeniedError, ProviderError, to_bedrock_messages
from core.messages import Message, Usage
from core.sessions import SessionStore
from tests.fakes import ScriptedProvider

MODEL = "us.amazon.nova-lite-v1:0"


def start(
    store: SessionStore, session_key: str, provider: ScriptedProvider, text: str = "Hello"
) -> tuple[str, ChatTurn]:
    conversation_id = store.create_conversation(session_key)
    history = store.read_messages(session_key, conversation_id)
    return conversation_id, ChatTurn(
        store, session_key, conversation_id, history, text, provider, MODEL
    )


def test_a_turn_stores_the_question_first_and_the_answer_when_it_ends(
    store: SessionStore, session_key: str
) -> None:
    conversation_id, turn = start(store, session_key, ScriptedProvider(["Hi ", "there"]))
    # Before the model is even called, the question is safe on disk.
    assert [m.content for m in store.read_messages(session_key, conversation_id)] == ["Hello"]

    assert "".join(turn.stream()) == "Hi there"

    user, reply = store.read_messages(session_key, conversation_id)
    assert (user.role, user.content) == ("user", "Hello")
    assert (reply.role, reply.content, reply.model) == ("assistant", "Hi there", MODEL)
    assert not reply.incomplete
    assert reply.error is None
    assert turn.error is None


def test_the_first_message_names_the_conversation(store: SessionStore, session_key: str) -> None:
    conversation_id, turn = start(
        store, session_key, ScriptedProvider(["ok"]), "Plan the offsite\nwith details"
    )
    list(turn.stream())
    (summary,) = store.list_conversations(session_key)
    assert (summary.id, summary.title) == (conversation_id, "Plan the offsite")


def test_later_turns_send_the_history_and_keep_the_title(
    store: SessionStore, session_key: str
) -> None:
    provider = ScriptedProvider(["answer"])
    conversation_id, first = start(store, session_key, provider, "First question")
    list(first.stream())
    history = store.read_messages(session_key, conversation_id)
    second = ChatTurn(store, session_key, conversation_id, history, "Follow-up", provider, MODEL)
    list(second.stream())
    assert [m.content for m in provider.seen[-1]] == ["First question", "answer", "Follow-up"]
    assert store.list_conversations(session_key)[0].title == "First question"
    assert len(store.read_messages(session_key, conversation_id)) == 4


def test_an_error_mid_stream_keeps_the_partial_reply_marked_incomplete(
    store: SessionStore, session_key: str
) -> None:
    failure = ProviderError("The model stopped halfway.", code="modelStreamErrorException")
    conversation_id, turn = start(store, session_key, ScriptedProvider(["Half an "], failure))

    assert "".join(turn.stream()) == "Half an "  # the stream ends; it does not raise

    assert turn.error is failure
    _, reply = store.read_messages(session_key, conversation_id)
    assert reply.content == "Half an "
    assert reply.incomplete
    assert reply.error == "The model stopped halfway."


def test_an_error_before_any_text_is_stored_with_its_explanation(
    store: SessionStore, session_key: str
) -> None:
    failure = AccessDeniedError("Enable the model in the Amazon Bedrock console.")
    conversation_id, turn = start(store, session_key, ScriptedProvider([], failure))
    assert list(turn.stream()) == []
    user, reply = store.read_messages(session_key, conversation_id)
    assert user.content == "Hello"
    assert (reply.content, reply.incomplete) == ("", True)
    assert reply.error == "Enable the model in the Amazon Bedrock console."


def test_a_stream_abandoned_by_the_page_is_still_stored(
    store: SessionStore, session_key: str
) -> None:
    conversation_id, turn = start(store, session_key, ScriptedProvider(["one ", "two ", "three"]))
    stream = turn.stream()
    assert next(stream) == "one "
    stream.close()  # what Python does when Streamlit stops iterating (Stop button, rerun)
    _, reply = store.read_messages(session_key, conversation_id)
    assert reply.content == "one "
    assert reply.incomplete
    assert reply.error == INTERRUPTED


def test_incomplete_replies_are_not_shown_to_the_model_as_answers(
    store: SessionStore, session_key: str
) -> None:
    failing = ScriptedProvider(["partial"], ProviderError("boom"))
    conversation_id, turn = start(store, session_key, failing, "Q1")
    list(turn.stream())
    history = [*store.read_messages(session_key, conversation_id), Message("user", "Q2")]
    assert to_bedrock_messages(history, 20) == [{"role": "user", "content": [{"text": "Q1\n\nQ2"}]}]


def test_titles_are_one_short_line() -> None:
    assert title_from("  Hello   world \nsecond line") == "Hello world"
    assert title_from("") == "New conversation"
    long = title_from("x" * 200)
    assert len(long) == 48
    assert long.endswith("…")


def test_the_reply_keeps_the_usage_the_provider_reported(
    store: SessionStore, session_key: str
) -> None:
    usage = Usage(812, 95, latency_ms=640)
    conversation_id, turn = start(store, session_key, ScriptedProvider(["Hi"], usage=usage))
    list(turn.stream())
    question, reply = store.read_messages(session_key, conversation_id)
    assert question.usage is None
    assert reply.usage == usage == turn.usage


def test_messages_stored_before_usage_existed_read_as_before() -> None:
    old = {"role": "assistant", "content": "Hi", "created_at": "2026-01-01T00:00:00.000+00:00"}
    assert Message.from_dict(old).usage is None
    assert "usage" not in Message.from_dict(old).to_dict()  # and are written back unchanged
    damaged = {**old, "usage": {"input_tokens": "many", "output_tokens": 1, "source": "bedrock"}}
    assert Message.from_dict(damaged).usage is None  # a bad counter never hides the message
    stored = Message("assistant", "Hi", usage=Usage(3, 4, 5)).to_dict()
    assert Message.from_dict(stored).usage == Usage(3, 4, 5)
