"""Conversation store on a directory: an EFS mount on AWS, a plain folder on a laptop.

CONTRACT (filled in by the sessions work; the UI and chat code rely on exactly this API):

    is_valid_session_key(raw: object) -> bool
    parse_session_key(raw: object) -> str | None   # canonical lowercase uuid4 string, or None
    new_session_key() -> str                        # fresh uuid4 string
    new_conversation_id() -> str

    @dataclass(frozen=True) class ConversationSummary:
        id: str; title: str; created_at: str; updated_at: str; message_count: int

    class CorruptConversationError(Exception):      # .quarantined_to: Path of the kept-aside file

    class SessionStore:
        def __init__(self, root: Path) -> None
        root: Path
        def list_conversations(self, session_key: str) -> list[ConversationSummary]  # newest first
        def create_conversation(self, session_key: str, title: str = "New conversation") -> str
        def append_messages(self, session_key: str, conversation_id: str,
                            messages: Sequence[Message]) -> None   # append, O(new data)
        def read_messages(self, session_key: str, conversation_id: str) -> list[Message]
            # torn last record skipped; unreadable/corrupt file -> moved aside, then
            # CorruptConversationError raised (the caller shows a message, starts a new one)
        def rename_conversation(self, session_key, conversation_id, title: str) -> None
        def delete_conversation(self, session_key: str, conversation_id: str) -> None
            # soft delete: kept on disk (moved to a trash area), hidden from list_conversations

Every method validates ``session_key`` (uuid4) and ``conversation_id`` and raises ``ValueError``
for anything else; every path is resolved and proven to stay inside ``root``.
"""
