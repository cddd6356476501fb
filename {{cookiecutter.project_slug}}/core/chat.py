"""One chat turn: store the user's message, stream the model's reply, store the reply.

The order is what makes the app lose nothing. The user's message is written before the model is
called, so a failing model, a crashed task or a closed tab never eats what was typed. The reply is
written when the stream ends, however it ends: complete, cut by an error (kept and marked
incomplete, with the reason), or abandoned because the page stopped reading (kept, marked
incomplete). Two appends per turn: the cost of a turn does not grow with the conversation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from core.llm import Provider, ProviderError
from core.messages import Message
from core.sessions import SessionStore

TITLE_MAX_CHARS = 48
INTERRUPTED = "The reply was interrupted before it finished (the page was closed or rerun)."


def title_from(text: str) -> str:
    """A conversation's title: the first line of its first message, shortened for the sidebar."""
    first_line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    if len(first_line) <= TITLE_MAX_CHARS:
        return first_line or "New conversation"
    return first_line[: TITLE_MAX_CHARS - 1].rstrip() + "…"


class ChatTurn:
    """A single exchange. Create it (the user message is stored at once), then iterate
    ``stream()`` to display the reply; afterwards ``reply`` and ``error`` say how it went.

    ``stream()`` never raises a ``ProviderError``: a failure ends the stream and is kept in
    ``error`` so the UI can show the partial text and the explanation side by side.
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
    ) -> None:
        self._store = store
        self._session_key = session_key
        self._conversation_id = conversation_id
        self._provider = provider
        self._model_id = model_id
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
        try:
            for chunk in self._provider.stream_reply(self._history, self._model_id):
                chunks.append(chunk)
                yield chunk
            finished = True
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
            )
            self._store.append_messages(self._session_key, self._conversation_id, [self.reply])
