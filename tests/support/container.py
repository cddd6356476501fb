"""Build and run the generated project's image without a Docker daemon: buildah on a Debian base.

The machines these tests run on have no Docker daemon and cannot reach Docker Hub or ghcr.io, but
they have Debian's archive. buildah builds a Dockerfile with ``--isolation chroot`` (no daemon, no
OCI runtime), and debootstrap makes a Debian bookworm root filesystem whose Python 3.11 is the
release the official ``python:3.11-*-slim-bookworm`` images are built on. Every image the
Dockerfile names gets a local stand-in, tagged with exactly the name the Dockerfile uses:

- ``python:<tag>``: the debootstrap root filesystem, shaped like the official image wherever the
  Dockerfile relies on it: ``/usr/local/bin/python3``, pip, setuptools and wheel installed under
  /usr/local, no EXTERNALLY-MANAGED marker, ``LANG=C.UTF-8``.
- ``ghcr.io/astral-sh/uv:<version>``: the uv and uvx binaries of that exact version, from PyPI's
  ``uv`` wheel, at /uv and /uvx as in the real image.

A digest cannot be reproduced locally (it is the hash of the real registry manifest), so the build
reads a copy of the Dockerfile with the ``@sha256:...`` suffixes removed; the committed lines keep
them, and test_container.py checks that they do.

Everything lives in one private storage directory (``--root``) with the vfs driver, which needs no
kernel overlay support; the caller deletes it afterwards.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Generous upper bounds for commands that download or copy hundreds of megabytes on a busy 2-core
# machine; a failure, not a timing expectation.
DEBOOTSTRAP_TIMEOUT_S = 1200
BUILD_TIMEOUT_S = 1800
COMMAND_TIMEOUT_S = 600
STOP_TIMEOUT_S = 20

# The stand-in for python:3.11.x-slim-bookworm. minbase is the smallest Debian that has apt and a
# shell; the official image adds ca-certificates, netbase and tzdata, and ships pip, setuptools and
# wheel (Debian's wheels of them are installed the same way, see _shape_like_official_image).
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = (
    "python3.11",
    "ca-certificates",
    "netbase",
    "tzdata",
    "python3-pip-whl",
    "python3-setuptools-whl",
    "python3-wheel-whl",
)
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
# Bump when the recipe below changes in a way the package list does not show.
BASE_RECIPE_VERSION = "1"
# The debootstrap result is cached here between test runs on the same day: the slowest step runs
# once per CI run, and a base never lingers for days missing Debian's security updates. /var/tmp is
# shared, so the folder is private and its owner is checked before anything in it is used.
BASE_CACHE_ROOT = Path("/var/tmp/cookiecutter-stateful-streamlit-base")  # noqa: S108 (checked)

_FROM = re.compile(
    r"^FROM\s+(?:--platform=\S+\s+)?(?P<ref>\S+)(?:\s+AS\s+(?P<stage>\S+))?\s*$", re.I
)
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}")


class ContainerToolError(RuntimeError):
    """A build or run step failed; the message carries the command and the end of its output."""


def _run(
    command: Sequence[str],
    *,
    timeout: float = COMMAND_TIMEOUT_S,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``command``; return its stdout, or raise with the command and its output's tail.

    With ``log``, stdout and stderr go to that file instead (builds print thousands of lines).
    """
    if log is None:
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
        )
        output = result.stdout + result.stderr
    else:
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(command)}\n")
            handle.flush()
            result = subprocess.run(
                list(command),
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
            )
        output = log.read_text(errors="replace")
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        where = f" (full log: {log})" if log else ""
        raise ContainerToolError(
            f"{' '.join(command)} exited with {result.returncode}{where}:\n{tail}"
        )
    return result.stdout if log is None else ""


def require_tools(*names: str) -> None:
    """Fail (never skip) with the package to install when a tool is missing."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise ContainerToolError(
            f"missing {', '.join(missing)}: apt-get install buildah debootstrap (see .ci/run)"
        )
    if os.geteuid() != 0:
        raise ContainerToolError("debootstrap and buildah's chroot isolation need root, as in CI")


# --- the Dockerfile's base images ----------------------------------------------------------------


def base_images(dockerfile: str) -> list[str]:
    """The image references of the Dockerfile's FROM lines (stages built from stages excluded)."""
    images: list[str] = []
    stages: set[str] = set()
    for line in dockerfile.splitlines():
        match = _FROM.match(line.strip())
        if match is None:
            continue
        if match["ref"].lower() not in stages:
            images.append(match["ref"])
        if match["stage"]:
            stages.add(match["stage"].lower())
    return images


def without_digests(dockerfile: str) -> str:
    """The Dockerfile with every ``@sha256:...`` removed, for a build against local stand-ins."""
    return _DIGEST.sub("", dockerfile)


@dataclass(frozen=True)
class ImageRef:
    """``repository:tag``, normalised the way buildah names images in its storage."""

    repository: str
    tag: str

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        name = _DIGEST.sub("", reference)
        repository, _, tag = name.rpartition(":")
        if not repository or "/" in tag:
            raise ValueError(f"{reference!r} has no exact tag")
        first = repository.split("/", 1)[0]
        if "/" not in repository:
            repository = f"docker.io/library/{repository}"
        elif "." not in first and ":" not in first and first != "localhost":
            repository = f"docker.io/{repository}"
        return cls(repository, tag)

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


# --- debootstrap: the stand-in for python:3.11-slim-bookworm --------------------------------------


def _base_cache_key() -> str:
    recipe = "\n".join(
        [BASE_RECIPE_VERSION, DEBIAN_SUITE, DEBIAN_MIRROR, *DEBIAN_PACKAGES, _host_ca_bundle()]
    )
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    day = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    return f"{DEBIAN_SUITE}-{day}-{digest}"


def _host_ca_bundle() -> str:
    """The CA bundle this machine's own tools are told to trust, if any (SSL_CERT_FILE).

    Where outbound HTTPS goes through an inspecting proxy, the host trusts the proxy's CA through
    that variable; uv inside the build needs the same trust to download the locked wheels.
    """
    path = os.environ.get("SSL_CERT_FILE", "")
    return path if path and Path(path).is_file() else ""


def _shape_like_official_image(rootfs: Path) -> None:
    """Make the Debian root filesystem match what the Dockerfile expects of python:*-slim."""
    local_bin = rootfs / "usr/local/bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name in ("python3.11", "python3", "python"):
        link = local_bin / name
        link.unlink(missing_ok=True)
        link.symlink_to("/usr/bin/python3.11")
    # Debian marks its Python as managed by apt (PEP 668); the official image's is not.
    (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    wheels = sorted((rootfs / "usr/share/python-wheels").glob("pip-*.whl"))
    if not wheels:
        raise ContainerToolError("debootstrap did not install python3-pip-whl")
    pip = f"/usr/share/python-wheels/{wheels[-1].name}/pip"
    _run(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/python3.11",
            pip,
            "install",
            "--quiet",
            "--no-index",
            "--no-cache-dir",
            "--root-user-action=ignore",
            "--find-links=/usr/share/python-wheels",
            "pip",
            "setuptools",
            "wheel",
        ],
        env={"PATH": BASE_PATH, "LANG": "C.UTF-8"},
    )
    ca_bundle = _host_ca_bundle()
    if ca_bundle:
        shutil.copyfile(ca_bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "debootstrap"):
        target = rootfs / leftover
        if target.is_dir():
            for entry in target.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def _private_cache_root() -> None:
    """Create the cache folder for this user alone, or refuse one that someone else could write."""
    BASE_CACHE_ROOT.mkdir(mode=0o700, exist_ok=True)
    info = BASE_CACHE_ROOT.lstat()
    if BASE_CACHE_ROOT.is_symlink() or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ContainerToolError(
            f"{BASE_CACHE_ROOT} is not a private folder of this user; remove it and rerun"
        )


def debian_base_tarball(log: Path) -> Path:
    """A tarball of the shaped bookworm root filesystem, from today's cache or made now."""
    cache = BASE_CACHE_ROOT / _base_cache_key()
    tarball, stamp = cache / "rootfs.tar", cache / "complete"
    _private_cache_root()
    if stamp.is_file() and tarball.is_file():
        return tarball
    for stale in BASE_CACHE_ROOT.iterdir():  # older days and recipes
        if stale != cache:
            shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=BASE_CACHE_ROOT, prefix="work-") as work:
        rootfs = Path(work) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                DEBIAN_SUITE,
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            timeout=DEBOOTSTRAP_TIMEOUT_S,
            log=log,
        )
        _shape_like_official_image(rootfs)
        partial = Path(work) / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."])
        cache.mkdir(parents=True, exist_ok=True)
        partial.replace(tarball)
    stamp.write_text(_base_cache_key() + "\n")
    return tarball


def base_image_env() -> dict[str, str]:
    """The stand-in base image's environment: the official image's PATH and LANG, plus the host's
    CA bundle variable when the host relies on one (see ``_host_ca_bundle``)."""
    env = {"PATH": BASE_PATH, "LANG": "C.UTF-8"}
    if _host_ca_bundle():
        env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"
    return env


# --- buildah -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buildah:
    """buildah with a private storage directory and the vfs driver (no overlay mounts needed)."""

    storage: Path
    log: Path

    def __call__(self, *args: str, timeout: float = COMMAND_TIMEOUT_S, logged: bool = False) -> str:
        return _run([*self.prefix(), *args], timeout=timeout, log=self.log if logged else None)

    def prefix(self) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.storage / "root"),
            "--runroot",
            str(self.storage / "run"),
            "--storage-driver",
            "vfs",
        ]

    def import_rootfs(self, tarball: Path, name: ImageRef, env: Mapping[str, str]) -> None:
        """Commit a root filesystem tarball as image ``name`` with ``env`` and ``CMD python3``."""
        container = self("from", "scratch").strip()
        try:
            self("add", container, str(tarball), "/", timeout=BUILD_TIMEOUT_S)
            settings = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
            self("config", *settings, "--cmd", "python3", container)
            self("commit", "--quiet", container, str(name), timeout=BUILD_TIMEOUT_S)
        finally:
            self("rm", container)

    def image_from_files(self, name: ImageRef, files: Mapping[str, Path]) -> None:
        """Commit an image made only of ``files`` (destination path -> host file)."""
        container = self("from", "scratch").strip()
        try:
            for destination, source in files.items():
                self("copy", "--chmod", "0755", container, str(source), destination)
            self("commit", "--quiet", container, str(name))
        finally:
            self("rm", container)

    def build(self, context: Path, dockerfile: Path, tag: str) -> None:
        """``buildah bud`` with chroot isolation, local images only, Docker format (which keeps
        HEALTHCHECK; the OCI format has no field for it)."""
        self(
            "bud",
            "--isolation",
            "chroot",
            "--pull=never",
            "--format",
            "docker",
            "--file",
            str(dockerfile),
            "--tag",
            tag,
            str(context),
            timeout=BUILD_TIMEOUT_S,
            logged=True,
        )

    def inspect(self, image: str) -> dict[str, Any]:
        return json.loads(self("inspect", "--type", "image", image))

    def config(self, image: str) -> dict[str, Any]:
        """The image's Docker-format config (User, Env, Entrypoint, Healthcheck, ...)."""
        return self.inspect(image)["Docker"]["config"]

    def layer_sizes(self, image: str) -> list[int]:
        """Uncompressed size of each layer, base first."""
        manifest = json.loads(self.inspect(image)["Manifest"])
        return [int(layer["size"]) for layer in manifest["layers"]]


class RunningContainer:
    """The image run as its config says (entrypoint, user, working dir, environment), via
    ``buildah run --isolation chroot``: no OCI runtime, the host's network namespace.

    That shares the host network, so callers bind the server to 127.0.0.1 on a free port.
    """

    def __init__(
        self,
        buildah: Buildah,
        image: str,
        *,
        env: Mapping[str, str],
        volumes: Mapping[Path, str],
        log_path: Path,
    ) -> None:
        self.buildah = buildah
        self.env = dict(env)
        self.log_path = log_path
        config = buildah.config(image)
        self.command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
        self.volumes = dict(volumes)
        self.container = buildah("from", "--quiet", image, timeout=BUILD_TIMEOUT_S).strip()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        """Start the entrypoint with the volumes and environment; return the ``buildah run``."""
        run_args = ["run", "--isolation", "chroot"]
        for host, target in self.volumes.items():
            run_args += ["--volume", f"{host}:{target}"]
        for key, value in self.env.items():
            run_args += ["--env", f"{key}={value}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.buildah.prefix(), *run_args, self.container, "--", *self.command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        return self.process

    def rootfs(self) -> Path:
        """The container's root file system on the host (vfs keeps it as a plain folder)."""
        return Path(self.buildah("mount", self.container).strip())

    def exec(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        """Run ``command`` in the same container as its configured user; return the exit code."""
        args = ["run", "--isolation", "chroot"]
        for key, value in {**self.env, **(env or {})}.items():
            args += ["--env", f"{key}={value}"]
        result = subprocess.run(
            [*self.buildah.prefix(), *args, self.container, "--", *command],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return result.returncode

    def output(self, command: Sequence[str]) -> str:
        """Run ``command`` in the container and return its stdout; raise if it fails."""
        return self.buildah("run", "--isolation", "chroot", self.container, "--", *command)

    def stop(self) -> int | None:
        """Stop the container the way ECS does and return how it exited.

        ECS sends SIGTERM to the container's main process: here that is the entrypoint process
        under ``buildah run``'s helpers, the end of the chain of processes in its group. If it
        has not exited in time, everything in the group is killed; the return value is then None.
        The container itself stays (for inspection) until ``remove``.
        """
        if self.process is None:
            return None
        if self.process.poll() is not None:
            return self.process.returncode
        os.kill(_innermost_process(self.process.pid), signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None

    def remove(self) -> None:
        self.stop()
        self.buildah("rm", self.container)


def _innermost_process(leader: int) -> int:
    """Follow ``leader``'s only child within its process group down to the last one."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        state_ppid_pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(state_ppid_pgrp[2]) == leader:
            children.setdefault(int(state_ppid_pgrp[1]), []).append(int(entry.name))
    current = leader
    while len(children.get(current, [])) == 1:
        current = children[current][0]
    return current


# --- stand-ins for the images the Dockerfile names ------------------------------------------------


def make_stand_ins(buildah: Buildah, dockerfile: str, workdir: Path) -> list[ImageRef]:
    """Create a local image for every base image ``dockerfile`` names, tagged with that name."""
    made: list[ImageRef] = []
    for reference in base_images(dockerfile):
        name = ImageRef.parse(reference)
        if name in made:
            continue
        if name.repository == "docker.io/library/python":
            buildah.import_rootfs(debian_base_tarball(buildah.log), name, base_image_env())
        elif name.repository == "ghcr.io/astral-sh/uv":
            target = workdir / f"uv-{name.tag}"
            _run(
                [
                    "uv",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--target",
                    str(target),
                    f"uv=={name.tag}",
                ]
            )
            buildah.image_from_files(name, {"/uv": target / "bin/uv", "/uvx": target / "bin/uvx"})
        else:
            raise ContainerToolError(
                f"no local stand-in for {reference}: teach tests/support/container.py to make one"
            )
        made.append(name)
    return made
