"""serve.py, the container's entrypoint: Streamlit's secrets file from the environment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import serve
from core.config import MIN_COOKIE_SECRET_LENGTH, load_auth_settings

PROJECT = Path(__file__).resolve().parent.parent
# A client secret that would break or extend a naively quoted TOML file.
HOSTILE_VALUE = 'q"uote\\back\\\\slash\n[auth]\ncookie_secret = "forged"\t\x00\x7f 👩‍💻 \'single\''
COOKIE_SECRET = "s" * MIN_COOKIE_SECRET_LENGTH + '"\\'


def oidc_env(runtime_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "AUTH_MODE": "oidc",
        "OIDC_SERVER_METADATA_URL": "https://login.example.com/.well-known/openid-configuration",
        "OIDC_CLIENT_ID": "chat-client",
        "OIDC_CLIENT_SECRET": HOSTILE_VALUE,
        "OIDC_REDIRECT_URI": "https://chat.example.com/oauth2callback",
        "STREAMLIT_SERVER_COOKIE_SECRET": COOKIE_SECRET,
        "RUNTIME_DIR": str(runtime_dir),
        **extra,
    }


@pytest.mark.parametrize(
    "value",
    ["", "plain", '"', "\\", '\\"', "\n\r\t\b\f", "\x00\x01\x1f\x7f", "é☃👩‍💻", HOSTILE_VALUE],
)
def test_toml_strings_round_trip(value: str) -> None:
    assert tomllib.loads(f"v = {serve.toml_string(value)}") == {"v": value}


def test_oidc_writes_a_private_secrets_file_and_adds_it_to_the_command(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    command = serve.prepare(oidc_env(runtime), ["--server.port=9999"])
    secrets_file = runtime / serve.SECRETS_FILE_NAME
    assert command == [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        f"--secrets.files={secrets_file}",
        "--server.port=9999",
    ]
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert [p.name for p in runtime.iterdir()] == [serve.SECRETS_FILE_NAME]
    assert tomllib.loads(secrets_file.read_text(encoding="utf-8")) == {
        "auth": {
            "redirect_uri": "https://chat.example.com/oauth2callback",
            "cookie_secret": COOKIE_SECRET,
            "client_id": "chat-client",
            "client_secret": HOSTILE_VALUE,
            "server_metadata_url": "https://login.example.com/.well-known/openid-configuration",
        }
    }


def test_an_existing_file_or_planted_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (runtime / serve.SECRETS_FILE_NAME).symlink_to(victim)
    serve.write_secrets(load_auth_settings(oidc_env(runtime)), runtime)
    assert victim.read_text() == "untouched"
    assert not (runtime / serve.SECRETS_FILE_NAME).is_symlink()


def test_anonymous_mode_writes_nothing(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    command = serve.prepare({"RUNTIME_DIR": str(runtime)}, ["--logger.level=debug"])
    assert command == [sys.executable, "-m", "streamlit", "run", "app.py", "--logger.level=debug"]
    assert not runtime.exists()


def test_bad_settings_start_streamlit_without_secrets_and_log_why_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = tmp_path / "run"
    env = oidc_env(runtime, OIDC_REDIRECT_URI="https://chat.example.com/")
    command = serve.prepare(env, [])
    assert command == [sys.executable, "-m", "streamlit", "run", "app.py"]
    assert not runtime.exists()
    log = capsys.readouterr().err
    assert "Sign-in is misconfigured" in log
    assert "OIDC_REDIRECT_URI" in log
    assert "uote" not in log and COOKIE_SECRET not in log


def test_an_unwritable_runtime_dir_is_logged_and_starts_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    command = serve.prepare(oidc_env(blocker / "run"), [])
    assert command == [sys.executable, "-m", "streamlit", "run", "app.py"]
    log = capsys.readouterr().err
    assert "Sign-in is misconfigured: cannot write" in log and "RUNTIME_DIR" in log
    assert "uote" not in log and COOKIE_SECRET not in log


def test_unset_runtime_dir_gets_a_private_temporary_folder(tmp_path: Path) -> None:
    env = oidc_env(tmp_path)
    del env["RUNTIME_DIR"]
    command = serve.prepare(env, [])
    secrets_file = Path(command[5].removeprefix("--secrets.files="))
    try:
        assert stat.S_IMODE(secrets_file.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    finally:
        secrets_file.unlink()
        secrets_file.parent.rmdir()


def test_streamlit_accepts_the_secrets_file_option(tmp_path: Path) -> None:
    """The option serve.py passes exists in the installed Streamlit and reads the file."""
    runtime = tmp_path / "run"
    command = serve.prepare(oidc_env(runtime), [])
    secrets_file = command[5].removeprefix("--secrets.files=")
    check = (
        "import sys\n"
        "from streamlit import config\n"
        "from streamlit.runtime.secrets import secrets_singleton\n"
        "config.get_config_options()\n"
        "config.set_option('secrets.files', [sys.argv[1]])\n"
        "from streamlit.auth_util import validate_auth_credentials\n"
        "validate_auth_credentials('default')\n"
        "print(secrets_singleton['auth']['client_id'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check, secrets_file],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "chat-client"


def test_a_job_name_runs_that_job_instead_of_streamlit() -> None:
    assert serve.job_command(["purge"]) == [sys.executable, "-m", "core.purge"]
    assert serve.job_command(["erase", "--session-key", "k"]) == [
        sys.executable,
        "-m",
        "core.erase",
        "--session-key",
        "k",
    ]
    assert serve.job_command([]) is None
    assert serve.job_command(["--server.port=9999"]) is None
    assert serve.job_command(["core.purge"]) is None  # only the listed names
