"""One chat turn: store the user's message, stream the model's reply, store the reply.

The order is what makes the app lose nothing. The user's message is written before the model is
called, so a failing model, a crashed task or a closed tab never eats what was typed. The reply is
written when the stream ends, however it ends: complete, cut by an error (kept and marked
incomplete, with the reason), or abandoned because the page stopped reading (kept, marked
incomplete). Two appends per turn: the cost of a turn does not grow with the conversation.

Each turn is metered: the tokens the provider reports are kept in the stored reply and added to the
person's daily usage, and the turn is logged as one JSON line with its metrics (core/telemetry.py).
When the daily allowance is used up, the turn is refused before the model is called; the question
is already stored, so nothing typed is lost, and the reply says when the allowance resets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from core import telemetry
from core.budget import BudgetExceededError, DailyAllowance
from core.llm import Provider, ProviderError, ReplyCutShortError
from core.messages import Message, Usage
from core.sessions import DEFAULT_TITLE, TITLE_MAX_CHARS, SessionStore

logger = logging.getLogger(__name__)

INTERRUPTED = "The reply was interrupted before it finished (the page was closed or rerun)."


def title_from(text: str) -> str:
    """A conversation's title: the first line of its first message, shortened for the sidebar."""
    first_line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    if len(first_line) <= TITLE_MAX_CHARS:
        return first_line or DEFAULT_TITLE
    return first_line[: TITLE_MAX_CHARS - 1].rstrip() + "…"


class ChatTurn:
    """A single exchange. Create it (the user message is stored at once), then iterate
    ``stream()`` to display the reply; afterwards ``reply`` and ``error`` say how it went.

    ``stream()`` never raises a ``ProviderError``: a failure ends the stream and is kept in
    ``error`` so the UI can show the partial text and the explanation side by side. A refusal by
    the daily ``allowance`` is kept in ``refusal`` the same way.
    """

    def __init__(
        self,
        store: SessionStore,
        session_key: str,
        conversation_id: str,
        history: Sequence[Message],
        user_text: str,
        provider: Provider,
        model_id: str,
        *,
        allowance: DailyAllowance | None = None,
    ) -> None:
        self._store = store
        self._session_key = session_key
        self._conversation_id = conversation_id
        self._provider = provider
        self._model_id = model_id
        self._allowance = allowance
        self.usage: Usage | None = None
        self.refusal: BudgetExceededError | None = None
        self.user_message = Message(role="user", content=user_text)
        self._history = [*history, self.user_message]
        self.reply: Message | None = None
        self.error: ProviderError | None = None
        store.append_messages(session_key, conversation_id, [self.user_message])
        if not history:
            store.rename_conversation(session_key, conversation_id, title_from(user_text))

    def stream(self) -> Iterator[str]:
        """Yield the reply's chunks; store the reply when the stream ends, however it ends."""
        chunks: list[str] = []
        error: str | None = None
        finished = False
        started = time.monotonic()
        first_chunk_at: float | None = None
        try:
            self._check_allowance()
            replies = self._provider.stream_reply(self._history, self._model_id, self._on_usage)
            for chunk in replies:
                if first_chunk_at is None:
                    first_chunk_at = time.monotonic()
                chunks.append(chunk)
                yield chunk
            finished = True
        except BudgetExceededError as refusal:
            self.refusal = refusal
            error = refusal.user_message
        except ProviderError as failure:
            self.error = failure
            error = failure.user_message
        finally:
            # Reached on success, on a provider error, and on GeneratorExit when the consumer
            # stops early (Streamlit stops a run when the user clicks Stop or the page reruns).
            if not finished and error is None:
                error = INTERRUPTED
            self.reply = Message(
                role="assistant",
                content="".join(chunks),
                model=self._model_id,
                incomplete=not finished,
                error=error,
                usage=self.usage,
            )
            self._store.append_messages(self._session_key, self._conversation_id, [self.reply])
            self._meter(started, first_chunk_at)

    def _check_allowance(self) -> None:
        """Raise ``BudgetExceededError`` when today's allowance is used up.

        If the usage file cannot be read (an EFS error, a damaged folder), the turn goes ahead
        and the problem is logged: the allowance guards cost, and an outage of its counter must
        not stop everyone from chatting.
        """
        if self._allowance is None:
            return
        try:
            self._allowance.check(self._session_key)
        except OSError as error:
            logger.warning(
                "conversation %s: allowance not checked: %s",
                self._conversation_id,
                error.strerror or type(error).__name__,
            )

    def _on_usage(self, usage: Usage) -> None:
        self.usage = usage

    def _meter(self, started: float, first_chunk_at: float | None) -> None:
        """Add the reply's tokens to today's usage and write the turn's log line.

        Never raises: the reply is already stored, and a full disk or a log problem must not
        turn a good answer into an error on the page.
        """
        try:
            if self._allowance is not None and self.usage is not None:
                self._allowance.record(self._session_key, self._model_id, self.usage)
        except (OSError, ValueError) as error:
            # The reason only: an OSError's text names the file, whose path holds the key.
            reason = error.strerror if isinstance(error, OSError) else str(error)
            logger.warning("conversation %s: usage not recorded: %s", self._conversation_id, reason)
        outcome, error_code = self._outcome()
        now = time.monotonic()
        report = telemetry.TurnReport(
            person=telemetry.person_id(self._session_key),
            conversation=self._conversation_id,
            model=self._model_id,
            provider=self._provider.name,
            outcome=outcome,
            error_code=error_code,
            input_tokens=self.usage.input_tokens if self.usage else None,
            output_tokens=self.usage.output_tokens if self.usage else None,
            bedrock_latency_ms=self.usage.latency_ms if self.usage else None,
            time_to_first_token_ms=(
                round((first_chunk_at - started) * 1000) if first_chunk_at is not None else None
            ),
            total_ms=round((now - started) * 1000),
        )
        telemetry.log_turn(report, self.error if outcome == "error" else None)

    def _outcome(self) -> tuple[telemetry.Outcome, str | None]:
        """How the turn ended, and the error code the log and the ErrorKind metric carry.

        A reply cut at the length limit is not a Bedrock failure (the model did its job), and
        neither is a refusal by the allowance (Bedrock was never called).
        """
        if self.refusal is not None:
            return "refused", "DailyTokenLimit"
        if isinstance(self.error, ReplyCutShortError):
            return "cut_short", self.error.code
        if self.error is not None:
            return "error", self.error.code
        if self.reply is not None and self.reply.incomplete:
            return "interrupted", None
        return "ok", None
