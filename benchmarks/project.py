"""What every benchmark needs from a generated project: bake it, sync it, fill its store.

Benchmarks run from the template's environment; the baked project has its own virtual
environment, so anything that imports the project's ``core`` runs there as a child process.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cookiecutter.main import cookiecutter

from tests.support.bakery import TEMPLATE_ROOT

# Run by the project's interpreter: N conversations of M messages for one session key, written
# through the project's own store (so the files are exactly what the app writes). Prints the ids.
_SEED = """
import sys
from pathlib import Path
from core.messages import Message
from core.sessions import SessionStore

root, key, conversations, messages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = "A stored chat message of a typical length, about two hundred bytes of text. " * 3
store = SessionStore(Path(root))
for number in range(conversations):
    conversation = store.create_conversation(key, f"Conversation {number + 1}")
    batch = [
        Message(role="user" if i % 2 == 0 else "assistant", content=f"{i}: {text}")
        for i in range(messages)
    ]
    for start in range(0, len(batch), 100):
        store.append_messages(key, conversation, batch[start : start + 100])
    print(conversation)
"""


def project_env() -> dict[str, str]:
    """This environment without the template's virtual environment, so uv uses the project's."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    env["UV_LINK_MODE"] = "copy"
    return env


def prepare_project(workdir: Path, project: Path | None) -> Path:
    """The project to measure (the default bake unless given), with its locked dependencies."""
    if project is None:
        project = Path(cookiecutter(str(TEMPLATE_ROOT), no_input=True, output_dir=str(workdir)))
    subprocess.run(
        ["uv", "sync", "--locked", "--quiet"],  # noqa: S607
        cwd=project,
        env=project_env(),
        check=True,
    )
    return project


def seed_conversations(
    project: Path, sessions_dir: Path, session_key: str, conversations: int, messages: int
) -> list[str]:
    """Store ``conversations`` conversations of ``messages`` messages each; returns their ids."""
    done = subprocess.run(  # noqa: S603
        [
            str(project / ".venv" / "bin" / "python"),
            "-c",
            _SEED,
            str(sessions_dir),
            session_key,
            str(conversations),
            str(messages),
        ],
        cwd=project,
        env=project_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.split()
