"""The Streamlit page: widgets and layout only; the chatbot itself lives in core/.

Where things are:
- settings (environment variables): core/config.py
- conversations on disk (EFS on AWS): core/sessions.py
- Bedrock and the offline echo model: core/llm.py
- one question and its streamed answer, stored as they happen: core/chat.py
- tokens, estimated cost and the daily allowance: core/prices.py, core/budget.py
- JSON logs and CloudWatch metrics: core/telemetry.py
- the browser's session key (localStorage): browser_session.py
- sign-in (AUTH_MODE=oidc) and who is on the page: signin.py, core/identity.py

``st.session_state`` holds only UI state (which conversation is open, a pending delete); the
conversation itself is read from the store on every run, so any replica can serve any run.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass

import streamlit as st

import browser_session
import signin
from core import erase, export, llm, telemetry
from core.budget import DailyAllowance
from core.chat import ChatTurn
from core.config import PROJECT_NAME, ConfigError, Settings, load_settings
from core.messages import Message
from core.prices import PriceTable, format_cost, load_price_table
from core.sessions import ConversationSummary, CorruptConversationError, SessionStore

# st.session_state keys (UI state only).
OPEN = "open_conversation"  # id of the open conversation; None = a new one, not stored yet
CONFIRM_DELETE = "confirm_delete"  # id of the conversation waiting for delete confirmation
NOTICE = "notice"  # a message for the next run, e.g. after a delete
MODEL = "model_id"  # the model picker's value
SHOWN_MESSAGES = "shown_messages"  # how many of the open conversation's latest messages are drawn
SHOWN_CONVERSATIONS = "shown_conversations"  # how many of the latest conversations are listed
CONFIRM_DELETE_ALL = "confirm_delete_all"  # True while "Delete all my conversations" awaits a yes

# A page run draws only the latest messages and conversations, so a turn costs the same in a long
# conversation as in a short one; "Show earlier messages" / "Show more conversations" grow the
# window by the same step, so every message and conversation stays reachable. The model's context
# is a separate limit (HISTORY_MAX_MESSAGES): it is cut from the stored history, not from the page.
MESSAGE_WINDOW = 20
CONVERSATION_WINDOW = 30


@dataclass(frozen=True)
class App:
    """What every browser session of this process shares."""

    settings: Settings
    store: SessionStore
    provider: llm.Provider
    allowance: DailyAllowance
    prices: PriceTable


@st.cache_resource(show_spinner=False)
def load_app() -> App:
    """Settings, store, provider, allowance and prices, built once per process.

    Logging is configured here too, once per process, before anything logs. A ``ConfigError`` is
    not cached: it is raised again on the next run, after the fix.
    """
    telemetry.configure_logging()
    settings = load_settings()
    return App(
        settings=settings,
        store=SessionStore(settings.sessions_dir),
        provider=llm.make_provider(settings),
        allowance=DailyAllowance(settings.sessions_dir, settings.daily_token_limit),
        prices=load_price_table(),
    )


# --- UI state changes (button callbacks: they run before the next script run) ------------------


def open_conversation(conversation_id: str | None) -> None:
    st.session_state[OPEN] = conversation_id
    st.session_state[CONFIRM_DELETE] = None
    st.session_state[SHOWN_MESSAGES] = MESSAGE_WINDOW


def show_more(state_key: str, step: int) -> None:
    st.session_state[state_key] = st.session_state.get(state_key, step) + step


def ask_to_delete(conversation_id: str) -> None:
    st.session_state[CONFIRM_DELETE] = conversation_id


def cancel_delete() -> None:
    st.session_state[CONFIRM_DELETE] = None


def delete_conversation(
    store: SessionStore, session_key: str, summary: ConversationSummary
) -> None:
    """Soft delete: the store moves the file to its trash area; nothing is erased."""
    store.delete_conversation(session_key, summary.id)
    st.session_state[CONFIRM_DELETE] = None
    if st.session_state.get(OPEN) == summary.id:
        st.session_state[OPEN] = None
    st.session_state[NOTICE] = f"Deleted “{summary.title}”."


def set_confirm_delete_all(waiting: bool) -> None:
    st.session_state[CONFIRM_DELETE_ALL] = waiting


def delete_all_conversations(store: SessionStore, session_key: str) -> None:
    """Soft delete of everything: each conversation goes to the store's trash (core/erase.py)."""
    moved = erase.trash_all(store, session_key)
    st.session_state[CONFIRM_DELETE_ALL] = False
    st.session_state[OPEN] = None
    st.session_state[NOTICE] = f"Deleted all your conversations ({moved})."


# --- Rendering ----------------------------------------------------------------------------------


def choose_open_conversation(conversations: list[ConversationSummary]) -> str | None:
    """The conversation to show: the one picked in this tab if it still exists, else the newest.

    After a reload the tab's UI state is gone, so the most recently updated conversation opens:
    that is the one the user was just in.
    """
    ids = {summary.id for summary in conversations}
    if OPEN in st.session_state:
        picked = st.session_state[OPEN]
        if picked is None or picked in ids:
            return picked
    newest = conversations[0].id if conversations else None
    st.session_state[OPEN] = newest
    return newest


def render_history(history: list[Message], prices: PriceTable) -> None:
    """The latest messages of the open conversation, under a button that reveals earlier ones."""
    shown = st.session_state.get(SHOWN_MESSAGES, MESSAGE_WINDOW)
    earlier = len(history) - shown
    if earlier > 0:
        st.button(
            f"Show earlier messages ({earlier} more)",
            icon=":material/expand_less:",
            key="show-earlier-messages",
            on_click=show_more,
            args=(SHOWN_MESSAGES, MESSAGE_WINDOW),
        )
    for message in history[max(earlier, 0) :]:
        render_message(message, prices)


def render_message(message: Message, prices: PriceTable) -> None:
    with st.chat_message(message.role):
        if message.content:
            st.markdown(message.content)
        render_outcome(message, prices)


def describe_usage(message: Message, prices: PriceTable) -> str:
    """``"812 tokens in · 95 out · ≈ 0.0001 USD"``; estimates say so and have no cost."""
    usage = message.usage
    if usage is None:
        return ""
    if usage.source == "estimate":
        return f"≈ {usage.input_tokens:,} tokens in · {usage.output_tokens:,} out (estimated)"
    cost = format_cost(prices.cost(usage, message.model), prices.currency)
    return " · ".join(
        part
        for part in (f"{usage.input_tokens:,} tokens in", f"{usage.output_tokens:,} out", cost)
        if part
    )


def render_outcome(message: Message, prices: PriceTable) -> None:
    """Below an assistant reply: which model wrote it, what it cost, why it is missing or
    incomplete."""
    if message.role != "assistant":
        return
    if message.incomplete and not message.content:
        st.error(f"No reply. {message.error or ''}".strip())
    elif message.incomplete:
        st.warning(f"Incomplete reply: the text above is what arrived. {message.error or ''}")
    if message.model:
        st.caption(message.model)
    if usage := describe_usage(message, prices):
        st.caption(usage)


def render_usage(app: App, session_key: str, history: list[Message], turn: ChatTurn | None) -> None:
    """Sidebar lines: tokens and estimated cost of the open conversation and of today."""
    replies = [m for m in history if m.role == "assistant"]
    if turn is not None and turn.reply is not None:
        replies.append(turn.reply)
    conversation_tokens = sum(m.usage.total_tokens for m in replies if m.usage)
    conversation_cost = app.prices.total((m.usage, m.model) for m in replies)
    currency = app.prices.currency
    st.caption(
        f"This conversation: {conversation_tokens:,} tokens "
        f"{format_cost(conversation_cost, currency)}".strip()
    )
    try:
        today = app.allowance.records_today(session_key)
    except OSError:
        st.caption("Today (UTC): usage unavailable")  # core/chat.py logs the cause
        return
    today_tokens = sum(r.usage.total_tokens for r in today)
    today_cost = app.prices.total((r.usage, r.model) for r in today)
    limit = app.allowance.limit
    allowance = f" of {limit:,}" if limit else ""
    st.caption(
        f"Today (UTC): {today_tokens:,}{allowance} tokens "
        f"{format_cost(today_cost, currency)}".strip()
    )


def render_conversation_list(
    store: SessionStore,
    session_key: str,
    conversations: list[ConversationSummary],
    open_id: str | None,
) -> None:
    st.subheader("Conversations")
    if not conversations:
        st.caption("Nothing stored yet: your first message starts one.")
    shown = st.session_state.get(SHOWN_CONVERSATIONS, CONVERSATION_WINDOW)
    listed = conversations[:shown]
    if open_id is not None and all(summary.id != open_id for summary in listed):
        # The open conversation is always listed, even when older than the window.
        listed += [summary for summary in conversations if summary.id == open_id]
    for summary in listed:
        title_col, delete_col = st.columns([6, 1], gap="small", vertical_alignment="center")
        title_col.button(
            summary.title,
            key=f"open-{summary.id}",
            type="primary" if summary.id == open_id else "secondary",
            width="stretch",
            on_click=open_conversation,
            args=(summary.id,),
        )
        delete_col.button(
            "",
            icon=":material/delete:",
            type="tertiary",
            key=f"delete-{summary.id}",
            help="Delete this conversation",
            on_click=ask_to_delete,
            args=(summary.id,),
        )
        if st.session_state.get(CONFIRM_DELETE) == summary.id:
            st.warning(
                f"Delete “{summary.title}”? It leaves this list; the server keeps the file in its "
                "trash area, so an administrator can still restore it."
            )
            yes_col, no_col = st.columns(2)
            yes_col.button(
                "Delete",
                key=f"confirm-delete-{summary.id}",
                type="primary",
                on_click=delete_conversation,
                args=(store, session_key, summary),
            )
            no_col.button("Cancel", key=f"cancel-delete-{summary.id}", on_click=cancel_delete)
    if len(conversations) > shown:
        st.button(
            f"Show more conversations ({len(conversations) - shown} more)",
            icon=":material/expand_more:",
            type="tertiary",
            key="show-more-conversations",
            on_click=show_more,
            args=(SHOWN_CONVERSATIONS, CONVERSATION_WINDOW),
        )


def render_downloads(
    store: SessionStore, session_key: str, open_summary: ConversationSummary | None
) -> None:
    """Export: the open conversation as Markdown, all of them as JSON Lines (core/export.py).

    Both files are built from the store only when their button is clicked (Streamlit runs the
    callable then, on its own thread), never on every run, so they include the latest reply. The
    full export is written to a temporary file one conversation at a time; Streamlit then holds the
    finished file in memory while it serves it.
    """
    st.subheader("Your data")
    if open_summary is not None:
        title, conversation_id = open_summary.title, open_summary.id
        st.download_button(
            "Download this conversation",
            data=lambda: "".join(
                export.conversation_markdown(
                    title, store.read_messages(session_key, conversation_id)
                )
            ),
            file_name="conversation.md",
            mime="text/markdown",
            icon=":material/download:",
            on_click="ignore",
            key="download-conversation",
        )

    def all_conversations() -> bytes:
        with tempfile.TemporaryFile() as spool:
            export.write_export(export.conversations_jsonl(store, session_key), spool)
            spool.seek(0)
            return spool.read()

    st.download_button(
        "Download all conversations",
        data=all_conversations,
        file_name="conversations.jsonl",
        mime="application/jsonl",
        icon=":material/download:",
        on_click="ignore",
        key="download-all",
    )


def render_delete_all(store: SessionStore, session_key: str, count: int) -> None:
    """The "Delete all my conversations" button, with a confirmation saying what happens next."""
    if count == 0:
        return
    if not st.session_state.get(CONFIRM_DELETE_ALL):
        st.button(
            "Delete all my conversations",
            icon=":material/delete_sweep:",
            key="delete-all",
            on_click=set_confirm_delete_all,
            args=(True,),
        )
        return
    st.warning(
        f"Delete all {count} of your conversations? They leave this list now. The server keeps "
        "them in its trash area until the trash retention period ends, then erases them for good; "
        "until then an administrator can still restore them."
    )
    yes_col, no_col = st.columns(2)
    yes_col.button(
        "Delete all",
        key="confirm-delete-all",
        type="primary",
        on_click=delete_all_conversations,
        args=(store, session_key),
    )
    no_col.button("Cancel", key="cancel-delete-all", on_click=set_confirm_delete_all, args=(False,))


def render_server_info(session_key: str, signed_in: signin.SignedIn | None) -> None:
    """Which task rendered this page and whose conversations it serves: support and the end-to-end
    tests read these lines (keep their exact form). A signed-in person sees their name, never
    their store key; an anonymous browser sees its session key."""
    st.divider()
    st.text(f"Server: {socket.gethostname()} · pid {os.getpid()}")
    if signed_in is None:
        st.text(f"Session: {session_key}")
    else:
        signin.render_account(signed_in)


def store_key(signed_in: signin.SignedIn | None) -> str:
    """A signed-in person's conversations are theirs on any device; anonymous ones are this
    browser's (its localStorage key)."""
    if signed_in is not None:
        return signed_in.person.owner_id
    return browser_session.current_session_key(browser_session.make_key_store())


def main() -> None:
    st.set_page_config(page_title=PROJECT_NAME, page_icon="💬")
    # First: a visitor who may not use the app stops here, before the store or the sidebar.
    signed_in = signin.gate(PROJECT_NAME)
    try:
        app = load_app()
    except ConfigError as error:
        st.error(f"The app is misconfigured and cannot start.\n\n{error}")
        st.stop()
    settings, store, provider = app.settings, app.store, app.provider

    session_key = store_key(signed_in)
    open_id = choose_open_conversation(store.list_conversations(session_key))

    with st.sidebar:
        model_id = st.selectbox("Model", settings.model_ids, key=MODEL)
        st.button(
            "New conversation",
            icon=":material/add:",
            width="stretch",
            on_click=open_conversation,
            args=(None,),
        )

    st.title(PROJECT_NAME)
    if settings.provider_notice:
        st.info(settings.provider_notice)
    if notice := st.session_state.pop(NOTICE, None):
        st.success(notice)

    history: list[Message] = []
    if open_id is not None:
        try:
            history = store.read_messages(session_key, open_id)
        except CorruptConversationError as error:
            kept_as = error.quarantined_to.name
            st.error(
                "This conversation could not be read, so a fresh one was started. Nothing was "
                f"deleted: the damaged file was kept aside on the server ({kept_as})."
            )
            open_id = None
            st.session_state[OPEN] = None
    render_history(history, app.prices)

    turn: ChatTurn | None = None
    if prompt := st.chat_input("Your message"):
        if open_id is None:
            open_id = store.create_conversation(session_key)
            st.session_state[OPEN] = open_id
        turn = ChatTurn(
            store,
            session_key,
            open_id,
            history,
            prompt,
            provider,
            model_id,
            allowance=app.allowance,
        )
        render_message(turn.user_message, app.prices)
        with st.chat_message("assistant"):
            stream = turn.stream()
            try:
                st.write_stream(stream)
            finally:
                stream.close()  # if Streamlit stopped reading, this stores the partial reply
            if turn.reply is not None:
                render_outcome(turn.reply, app.prices)

    # Rendered last so a conversation started or renamed by this run is already listed.
    with st.sidebar:
        render_usage(app, session_key, history, turn)
        conversations = store.list_conversations(session_key)
        render_conversation_list(store, session_key, conversations, open_id)
        open_summary = next((c for c in conversations if c.id == open_id), None)
        render_downloads(store, session_key, open_summary)
        render_delete_all(store, session_key, len(conversations))
        render_server_info(session_key, signed_in)


# Streamlit runs this file as __main__. The guard keeps an import of it (multiprocessing's spawn
# re-imports the main module as __mp_main__) from drawing a page outside a Streamlit run.
if __name__ == "__main__":
    main()
