"""Regenerate the generated project's ``uv.lock`` after its pyproject.toml changes.

The template's ``pyproject.toml`` names the project ``{{ cookiecutter.project_slug }}``, which uv
cannot lock directly. This script bakes the template with default answers, runs ``uv lock`` in the
baked project and copies the lock back into the template with the project name turned back into its
template variable, so every bake ships a lock that ``uv sync --locked`` accepts.

Run it from the template's root: ``uv run python scripts/relock.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "{{cookiecutter.project_slug}}"
SLUG = "relock-probe"
SLUG_VARIABLE = "{{ cookiecutter.project_slug }}"


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        baked = Path(
            cookiecutter(
                str(ROOT),
                no_input=True,
                output_dir=out,
                extra_context={"project_name": "Relock Probe", "project_slug": SLUG},
            )
        )
        (baked / "uv.lock").unlink(missing_ok=True)
        subprocess.run(["uv", "lock"], cwd=baked, check=True)
        lock = (baked / "uv.lock").read_text()
    needle = f'name = "{SLUG}"'
    if lock.count(needle) != 1:
        print(f"expected exactly one {needle!r} in the lock", file=sys.stderr)
        return 1
    (TEMPLATE_DIR / "uv.lock").write_text(lock.replace(needle, f'name = "{SLUG_VARIABLE}"'))
    print(f"wrote {TEMPLATE_DIR / 'uv.lock'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
