"""checkov's results, as the review reads them: per check id, what passed and what failed.

checkov runs its built-in CloudFormation checks and this repository's own policies (YAML, one file
per guarantee in infra/checks/) over infra/. The review either runs it (``run_checkov``) or reads
the JSON report CI's checkov step already wrote (``read_report``), keeping only the results for
files inside the reviewed folder.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .project import ToolError, installed

CHECKOV_VERSION = "3.3.30"  # as CHECKOV_VERSION in .github/workflows/ci.yml
POLICIES = "infra/checks"


@dataclass
class Results:
    """Resources each check passed and failed, and the templates checkov could not parse."""

    passed: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)
    unparsed: list[str] = field(default_factory=list)

    def problems(self, check_id: str) -> list[str]:
        """Why ``check_id`` does not prove its item; none when it passed on some resource.

        A check that examined nothing proves nothing: the resource it guards is gone.
        """
        if self.unparsed:
            return [f"checkov could not parse {', '.join(self.unparsed)}"]
        if failed := self.failed.get(check_id):
            return [f"{check_id} fails on {', '.join(failed)}"]
        if not self.passed.get(check_id):
            return [f"{check_id} examined no resource (what it guards is missing)"]
        return []


def results_for(report: Any, root: Path) -> Results:
    """The results of a checkov JSON report (one framework or a list) for files under ``root``."""
    root = root.resolve()
    results = Results()

    def inside(path: str) -> bool:
        return Path(path).resolve().is_relative_to(root)

    for framework in report if isinstance(report, list) else [report]:
        found = framework.get("results") or {}
        for kind, into in (("passed_checks", results.passed), ("failed_checks", results.failed)):
            for entry in found.get(kind) or []:
                if inside(entry.get("file_abs_path", "")):
                    into.setdefault(entry["check_id"], []).append(entry["resource"])
        results.unparsed += [p for p in found.get("parsing_errors") or [] if inside(p)]
    return results


def read_report(path: Path, root: Path) -> Results:
    try:
        return results_for(json.loads(path.read_text(encoding="utf-8")), root)
    except (OSError, ValueError) as error:
        raise ToolError(f"cannot read the checkov report {path}: {error}") from error


def run_checkov(root: Path) -> Results:
    """checkov over infra/ with this repository's policies, offline (no guideline download)."""
    checkov = installed("checkov", CHECKOV_VERSION)
    command = [checkov, "--directory", str(root / "infra"), "--framework", "cloudformation"]
    command += ["--external-checks-dir", str(root / POLICIES), "--skip-download", "-o", "json"]
    environment = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    done = subprocess.run(  # noqa: S603 (fixed arguments)
        command, capture_output=True, text=True, check=False, env=environment
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ToolError(f"checkov exited {done.returncode} without a report: {last}") from None
    return results_for(report, root)
