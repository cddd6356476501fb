"""Tests of core/files.py: the file rules the conversation store and the daily allowance share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.files import (
    UnsafePathError,
    UnusableFile,
    append_lines,
    opened,
    private_dir,
    regular_file_stat,
)


def test_an_append_after_a_crash_starts_on_a_line_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":')  # a write that crashed halfway through its line
    with opened(path, os.O_RDWR) as fd:
        append_lines(fd, b'{"c":3}\n')
    assert path.read_bytes() == b'{"a":1}\n{"b":\n{"c":3}\n'


def test_new_files_are_private(tmp_path: Path) -> None:
    with opened(tmp_path / "new.jsonl", os.O_RDWR | os.O_CREAT):
        pass
    assert (tmp_path / "new.jsonl").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_only_regular_files_are_opened(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "data.jsonl"
    if kind == "symlink":
        (tmp_path / "elsewhere").write_text("secret\n")
        path.symlink_to(tmp_path / "elsewhere")
    elif kind == "fifo":
        os.mkfifo(path)  # opening it must neither block nor succeed
    else:
        path.mkdir()
    with pytest.raises(UnusableFile), opened(path, os.O_RDONLY) as fd:
        regular_file_stat(fd)


def test_a_symlinked_folder_is_refused_without_naming_it(tmp_path: Path) -> None:
    key = "3f9a0c1e-2b4d-4c5e-8f60-718293a4b5c6"
    (tmp_path / "outside").mkdir()
    (tmp_path / key).symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(UnsafePathError) as refused:
        private_dir(tmp_path.resolve() / key, create=True)
    assert key not in str(refused.value)  # a session key is a bearer secret: never in a message
    assert private_dir(tmp_path.resolve() / "fine", create=True).is_dir()
