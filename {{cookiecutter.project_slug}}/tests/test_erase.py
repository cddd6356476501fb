"""Erasing a person: the page's soft delete of everything, and the operator command.

The command is run as the operator runs it (``python -m core.erase`` in a separate process) and
through ``main`` for the refusals. Every test stores data for a second person and a bystander file
beside the root, and checks that nothing of theirs changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import erase
from core.budget import DailyAllowance
from core.identity import owner_id_for
from core.messages import Message, Usage
from core.sessions import SessionStore, new_session_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
MODEL = "us.amazon.nova-lite-v1:0"


def every_file(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes, to prove nothing else changed."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def fill(root: Path, key: str) -> None:
    """Three conversations (one deleted, one quarantined), an index and a usage file."""
    store = SessionStore(root)
    kept, deleted, broken = (store.create_conversation(key, name) for name in ("a", "b", "c"))
    for conversation in (kept, deleted, broken):
        store.append_messages(key, conversation, [Message("user", "private words")])
    store.delete_conversation(key, deleted)
    (root / key / f"{broken}.jsonl").write_bytes(b"not json\nnot json either\n")
    with pytest.raises(Exception, match="could not be read"):
        store.read_messages(key, broken)
    DailyAllowance(root, 0).record(key, MODEL, Usage(1, 2, 3))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "sessions"
    path.mkdir()
    (tmp_path / "bystander.txt").write_text("outside the root")
    return path


def run_command(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SESSIONS_DIR": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "core.erase", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_command_erases_a_signed_in_person_and_nobody_else(root: Path) -> None:
    person, other = owner_id_for(ISSUER, "person-1"), owner_id_for(ISSUER, "person-2")
    fill(root, person)
    fill(root, other)
    theirs = every_file(root / other)
    outside = every_file(root.parent)

    done = run_command(root, "--issuer", ISSUER, "--subject", "person-1")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"erased the folder of {person[:12]}…: 1 conversations, 1 trash, 1 quarantine, "
        "1 index, 1 usage, 0 other"
    )
    assert "private words" not in done.stdout + done.stderr
    assert sorted(os.listdir(root)) == [other]  # nothing left, not even a renamed folder
    assert every_file(root / other) == theirs
    everything_else = {k: v for k, v in outside.items() if not k.startswith(f"sessions/{person}")}
    assert every_file(root.parent) == everything_else  # the bystander and the other person


def test_the_command_erases_an_anonymous_browser_by_its_session_key(root: Path) -> None:
    browser, other = new_session_key(), new_session_key()
    fill(root, browser)
    fill(root, other)
    theirs = every_file(root / other)

    done = run_command(root, "--session-key", browser)

    assert done.returncode == 0, done.stderr
    assert "1 conversations, 1 trash" in done.stdout
    assert not (root / browser).exists()
    assert every_file(root / other) == theirs


def test_erasing_someone_with_nothing_stored_is_not_an_error(root: Path) -> None:
    assert erase.main(["--sessions-dir", str(root), "--issuer", ISSUER, "--subject", "x"]) == 0


@pytest.mark.parametrize(
    "key",
    ["..", "../sessions", "/etc", "", ".", "a/b", "A" * 64, "0" * 63, "00000000-0000-0000-0000-0"],
)
def test_hostile_session_keys_are_refused_before_anything_is_touched(
    root: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(root, new_session_key())
    before = every_file(root.parent)
    with pytest.raises(SystemExit) as exit_:
        erase.main(["--sessions-dir", str(root), "--session-key", key])
    assert exit_.value.code == 2
    assert "uuid4" in capsys.readouterr().err
    assert every_file(root.parent) == before


@pytest.mark.parametrize("subject", ["../..", "/", "a/../../b", "x" * 10_000, "\x00", "é/.."])
def test_hostile_subjects_only_name_a_hashed_folder(root: Path, subject: str) -> None:
    other = owner_id_for(ISSUER, "person-2")
    fill(root, other)
    before = every_file(root.parent)
    assert erase.main(["--sessions-dir", str(root), "--issuer", ISSUER, "--subject", subject]) == 0
    assert every_file(root.parent) == before


def test_a_folder_that_is_a_symlink_is_refused_not_followed(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim, link = new_session_key(), new_session_key()
    fill(root, victim)
    (root / link).symlink_to(root / victim, target_is_directory=True)
    before = every_file(root / victim)
    assert erase.main(["--sessions-dir", str(root), "--session-key", link]) == 2
    assert "symlink" in capsys.readouterr().err
    assert every_file(root / victim) == before


def test_a_symlink_inside_the_folder_is_removed_but_its_target_is_not(root: Path) -> None:
    person = new_session_key()
    fill(root, person)
    (root / person / "trash" / "elsewhere").symlink_to(root.parent, target_is_directory=True)
    outside = (root.parent / "bystander.txt").read_text()
    counts = erase.erase_person(root, person)
    assert counts["trash"] == 2  # the deleted conversation and the link
    assert not (root / person).exists()
    assert (root.parent / "bystander.txt").read_text() == outside


def test_the_command_needs_a_whole_identity(root: Path) -> None:
    for args in (["--issuer", ISSUER], ["--session-key", new_session_key(), "--subject", "s"], []):
        with pytest.raises(SystemExit) as exit_:
            erase.main(["--sessions-dir", str(root), *args])
        assert exit_.value.code == 2


def test_delete_all_moves_every_conversation_to_trash(root: Path) -> None:
    store = SessionStore(root)
    key, other = new_session_key(), new_session_key()
    for name in ("one", "two", "three"):
        store.append_messages(key, store.create_conversation(key, name), [Message("user", "hi")])
    store.append_messages(other, store.create_conversation(other, "x"), [Message("user", "hi")])
    assert erase.trash_all(store, key) == 3
    assert store.list_conversations(key) == []
    assert len(list((root / key / "trash").iterdir())) == 3
    assert [s.title for s in store.list_conversations(other)] == ["x"]
