"""Erasing a person's data: "Delete all my conversations" on the page, and an operator command.

The page moves every conversation to ``trash/`` (a soft delete, as for one conversation); the trash
is erased for good after its retention period. The operator command honours a deletion request at
once: it removes the person's whole folder (conversations, trash, quarantine, index and usage)::

    python -m core.erase --issuer https://cognito-idp.<region>.amazonaws.com/<pool> --subject <sub>
    python -m core.erase --session-key <uuid4 from the browser>      # anonymous (no sign-in)

It finds the folder by the same identity the app uses (``core/identity.py``), under
``SESSIONS_DIR`` (or ``--sessions-dir``), and prints what it removed as counts, never contents.
The folder is first renamed out of the app's sight in one step (a name no store key can have), so
a page running meanwhile sees the person as new rather than half erased; what that page writes
afterwards is a new folder, which the same command removes. Hostile identity values cannot reach
outside the folder: the issuer and subject are hashed, a session key must pass the store's own
rule (``is_store_key``), and a folder that is a symlink is refused, never followed. Should the
command be killed between the rename and the removal, a ``.erasing-<key>-<hex>`` folder stays in
``SESSIONS_DIR``: neither the app nor the purge reads it, and ``rm -r`` finishes the job.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import stat
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from core.budget import USAGE_DIR
from core.config import DEFAULT_SESSIONS_DIR
from core.identity import owner_id_for
from core.sessions import INDEX_FILE, QUARANTINE_DIR, TRASH_DIR, SessionStore, is_store_key

__all__ = ["ERASING_PREFIX", "erase_person", "main", "trash_all"]

# Folders being erased are renamed to this prefix: no store key starts with a dot, so neither the
# app nor the purge ever opens them.
ERASING_PREFIX = ".erasing-"
_AREAS = ("conversations", "trash", "quarantine", "index", "usage", "other")


def trash_all(store: SessionStore, session_key: str) -> int:
    """Soft delete every conversation of ``session_key``; returns how many were moved to trash."""
    conversations = store.list_conversations(session_key)
    for summary in conversations:
        store.delete_conversation(session_key, summary.id)
    return len(conversations)


def _area(relative: Path) -> str:
    """Which kind of file a path inside a person's folder is (for the counts)."""
    top = relative.parts[0]
    if len(relative.parts) == 1:
        if top in (INDEX_FILE, "index.tmp"):
            return "index"
        return "conversations" if top.endswith(".jsonl") else "other"
    return {TRASH_DIR: "trash", QUARANTINE_DIR: "quarantine", USAGE_DIR: "usage"}.get(top, "other")


def erase_person(root: Path, key: str) -> Counter[str]:
    """Remove the folder ``<root>/<key>`` with everything in it; returns file counts per area.

    Raises ValueError for a key the store would refuse and for a folder that is a symlink or not a
    folder. A person with no folder gets empty counts: erasing twice is not an error.
    """
    if not is_store_key(key):
        raise ValueError("not a store key: expected a canonical uuid4 or a 64-character owner id")
    base = Path(root).resolve(strict=True)
    folder = base / key
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return Counter()
    if not stat.S_ISDIR(info.st_mode):  # lstat: a symlink is not a folder here
        raise ValueError("the person's folder is a symlink or not a folder: refused")
    hidden = base / f"{ERASING_PREFIX}{key}-{secrets.token_hex(4)}"
    os.rename(folder, hidden)  # one step: the app no longer sees any of it
    if not stat.S_ISDIR(hidden.lstat().st_mode):
        # Swapped for a link between the check and the rename: remove the link, not its target.
        hidden.unlink()
        raise ValueError("the person's folder was replaced by a symlink: the link was removed")
    counts: Counter[str] = Counter()
    for current, directories, files in os.walk(hidden, followlinks=False):
        here = Path(current)
        # os.walk lists a symlink to a folder among the folders but does not enter it; count it
        # as the link it is (rmtree removes the link, never what it points to).
        links = [name for name in directories if (here / name).is_symlink()]
        for name in files + links:
            counts[_area((here / name).relative_to(hidden))] += 1
    shutil.rmtree(hidden)  # does not follow symlinks (fd-based on Linux)
    return counts


def describe(counts: Counter[str]) -> str:
    """The counts as one line, every area named even when zero."""
    return ", ".join(f"{counts.get(area, 0)} {area}" for area in _AREAS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.erase",
        description="Erase everything stored for one person, at once, and print what was removed.",
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--issuer", help="the identity provider's issuer (with --subject)")
    who.add_argument("--session-key", help="an anonymous browser's session key (uuid4)")
    parser.add_argument("--subject", help="the person's subject at that issuer (with --issuer)")
    parser.add_argument(
        "--sessions-dir",
        type=Path,
        help="the store's root (default: SESSIONS_DIR, as the app reads it)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The operator command; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.issuer is not None:
        if not args.subject:
            parser.error("--issuer needs --subject")
        try:
            key = owner_id_for(args.issuer, args.subject)
        except ValueError as error:
            parser.error(str(error))
    else:
        if args.subject is not None:
            parser.error("--subject goes with --issuer, not with --session-key")
        key = args.session_key
        if not is_store_key(key):
            parser.error("--session-key must be a canonical lowercase uuid4 (or an owner id)")
    configured = os.environ.get("SESSIONS_DIR", "").strip() or DEFAULT_SESSIONS_DIR
    root = (args.sessions_dir or Path(configured)).expanduser()
    if not root.is_dir():
        parser.error("the sessions folder does not exist: check SESSIONS_DIR or --sessions-dir")
    try:
        counts = erase_person(root, key)
    except ValueError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    # The key is a hash (signed in) or the secret the operator typed: shown shortened, to match.
    print(f"erased the folder of {key[:12]}…: {describe(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
