"""The container's entrypoint: turn the sign-in settings into Streamlit's secrets file, then become
Streamlit.

Streamlit reads its ``[auth]`` settings (st.login) only from a secrets.toml file, while ECS hands
the app its settings as environment variables, the secrets among them from Secrets Manager. The
image's root file system is read-only, so with ``AUTH_MODE=oidc`` this script writes the file
into ``RUNTIME_DIR`` (a task-scoped, non-persistent folder; ``/run/app`` in the image), readable by
this user alone, and starts ``streamlit run app.py --secrets.files=<that file>`` plus any extra
arguments. ``os.execv`` replaces this process, so Streamlit keeps the pid (PID 1 in a container)
and receives ECS's SIGTERM itself.

A sign-in misconfiguration does not stop the server: it starts without the file, logs one line
naming the variables at fault (never a secret's value), and every page shows the
"Sign-in is misconfigured" error from app.py, which validates the same settings. Nobody reaches the
chat, the load balancer sees a healthy task, and the deploy smoke check (scripts/probe.py) reports
the error page instead of a crash loop that hides its reason.

The same image runs the maintenance jobs: ECS can override a task's command but not its
entrypoint, so a first argument naming a job (``purge``, ``erase``) runs ``python -m core.<job>``
with the remaining arguments instead of Streamlit. The scheduled retention task passes ``purge``
(infra/app.yaml); an operator's one-off task passes ``erase --issuer ... --subject ...``.

Local runs keep ``uv run streamlit run app.py`` (anonymous); ``python serve.py`` is how a local
run with sign-in starts (README.md, "Sign-in").
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from core.config import AuthSettings, ConfigError, load_auth_settings

SECRETS_FILE_NAME = "secrets.toml"
# Jobs the image runs instead of the server: the first argument -> the module run with the rest.
JOBS = {"purge": "core.purge", "erase": "core.erase"}


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: quotes, backslashes and control characters escaped.

    Secrets are opaque: a client secret may contain any character, and an unescaped quote would
    end the string early (or smuggle in another key).
    """
    escaped = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def secrets_toml(auth: AuthSettings) -> str:
    """The ``[auth]`` section Streamlit's st.login reads (the default, unnamed provider)."""
    values = {
        "redirect_uri": auth.redirect_uri,
        "cookie_secret": auth.cookie_secret,
        "client_id": auth.client_id,
        "client_secret": auth.client_secret,
        "server_metadata_url": auth.server_metadata_url,
    }
    lines = ["# Written by serve.py at start-up from the environment; do not edit.", "[auth]"]
    lines += [f"{key} = {toml_string(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def runtime_dir(env: Mapping[str, str]) -> Path:
    """``RUNTIME_DIR``, or a fresh private temporary folder on a laptop where it is unset."""
    configured = env.get("RUNTIME_DIR", "").strip()
    if configured:
        return Path(configured)
    return Path(tempfile.mkdtemp(prefix="streamlit-runtime-"))


def write_secrets(auth: AuthSettings, folder: Path) -> Path:
    """Write the secrets file into ``folder`` with mode 0600 and return its path.

    Written to a private temporary name and renamed into place, so Streamlit never reads half a
    file and an existing file (a symlink planted there included) is replaced, not followed.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / SECRETS_FILE_NAME
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".secrets-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(secrets_toml(auth))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def streamlit_command(secrets_file: Path | None, extra_args: Sequence[str]) -> list[str]:
    """``python -m streamlit run app.py [--secrets.files=...] [extra args]``.

    The interpreter running this script starts Streamlit, so the one virtual environment that
    has the app's dependencies is used whatever PATH says.
    """
    command = [sys.executable, "-m", "streamlit", "run", "app.py"]
    if secrets_file is not None:
        command.append(f"--secrets.files={secrets_file}")
    return [*command, *extra_args]


def prepare(env: Mapping[str, str], extra_args: Sequence[str]) -> list[str]:
    """Validate the sign-in settings, write the secrets file if needed, return the command.

    Problems go to stderr (the task's log) and the command starts Streamlit without secrets, so
    the app shows its "Sign-in is misconfigured" page; never the chat.
    """
    try:
        auth = load_auth_settings(env)
    except ConfigError as error:
        _log(f"Sign-in is misconfigured; every page will say so until it is fixed.\n{error}")
        return streamlit_command(None, extra_args)
    if not auth.required:
        return streamlit_command(None, extra_args)
    folder = runtime_dir(env)
    try:
        secrets_file = write_secrets(auth, folder)
    except OSError as error:
        _log(
            f"Sign-in is misconfigured: cannot write {folder / SECRETS_FILE_NAME} "
            f"({error.strerror or error}). RUNTIME_DIR must name a folder this user can write; "
            "every page will say sign-in is misconfigured until it does."
        )
        return streamlit_command(None, extra_args)
    return streamlit_command(secrets_file, extra_args)


def _log(message: str) -> None:
    print(f"serve.py: {message}", file=sys.stderr, flush=True)


def job_command(argv: Sequence[str]) -> list[str] | None:
    """``python -m core.<job> <rest>`` when the first argument names a job, else None."""
    if not argv or argv[0] not in JOBS:
        return None
    return [sys.executable, "-m", JOBS[argv[0]], *argv[1:]]


def main(argv: Sequence[str]) -> NoReturn:
    command = job_command(argv) or prepare(os.environ, argv)
    os.execv(command[0], command)  # noqa: S606 (our own interpreter, a fixed argument list)


if __name__ == "__main__":
    main(sys.argv[1:])
