"""zizmor's findings on .github/, as the review reads them: per audit, where it found what.

CI's "workflows" job runs the same zizmor, at the same version and persona; here it runs offline
(the online audits need a GitHub token and run in CI only). ``--persona pedantic`` because the
audits the checklist names report a workflow without top-level ``permissions`` or a deploy
without ``concurrency`` only in that persona; ``--strict-collection`` because without it zizmor
skips, with a warning, a workflow it cannot parse, and a broken workflow would pass unseen.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .project import installed

ZIZMOR_VERSION = "1.32.0"  # as ZIZMOR_VERSION in .github/workflows/ci.yml
PREFIX = "zizmor/"  # how the checklist names an audit: zizmor/unpinned-uses
# The audits the review may name: each one shown to report offline, in this persona, the defects
# its item guards against (tests/test_review_defects.py in the template). zizmor finds nothing
# for a misspelt or an online-only audit, so such a proof would pass forever: the review fails it
# as drift until the audit is shown to work and added here.
AUDITS = frozenset({"unpinned-uses", "excessive-permissions", "concurrency-limits"})


@dataclass
class Findings:
    """Each audit's findings as "file:line: what", or why zizmor audited nothing."""

    found: dict[str, list[str]] = field(default_factory=dict)
    failure: str = ""

    def problems(self, audit: str) -> list[str]:
        """Why the audit ``audit`` does not prove its item; none when it found nothing."""
        if audit not in AUDITS:
            return [f"{PREFIX}{audit} is no zizmor audit this review knows to work offline"]
        if self.failure:
            return [f"zizmor could not audit .github: {self.failure}"]
        return [f"{PREFIX}{audit}: {finding}" for finding in self.found.get(audit, [])]


def findings_for(report: list[dict[str, Any]]) -> Findings:
    """zizmor's JSON findings, grouped by audit; findings a ``# zizmor: ignore`` comment
    silenced (CI ignores them too) are left out."""
    findings = Findings()
    for finding in report:
        if finding.get("ignored"):
            continue
        locations = finding["locations"]
        primary = next((p for p in locations if p["symbolic"]["kind"] == "Primary"), locations[0])
        path = primary["symbolic"]["key"]["Local"]["verbatim_path"]
        line = primary["concrete"]["location"]["start_point"]["row"] + 1
        where = f"{path}:{line}: {finding['desc']}"
        if note := primary["symbolic"].get("annotation"):
            where += f" ({note})"
        findings.found.setdefault(finding["ident"], []).append(where)
    return findings


def run_zizmor(root: Path) -> Findings:
    """zizmor over root/.github, offline; a failed run is a ``failure``, never a clean result."""
    zizmor = installed("zizmor", ZIZMOR_VERSION)
    command = [zizmor, "--offline", "--strict-collection", "--persona", "pedantic"]
    # --no-exit-codes: exit 0 with findings too, so that any other exit is zizmor failing.
    command += ["--no-exit-codes", "--format", "json", ".github"]
    done = subprocess.run(  # noqa: S603 (fixed arguments)
        command, cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return Findings(failure=f"exit {done.returncode}, {_reason(done.stderr)}")
    try:
        return findings_for(json.loads(done.stdout))
    except (ValueError, LookupError, TypeError) as error:
        return Findings(failure=f"unreadable output ({type(error).__name__}: {error})")


def _reason(stderr: str) -> str:
    """zizmor's error without its progress lines and Rust backtrace, on one line."""
    lines = stderr.split("Stack backtrace:")[0].splitlines()
    return " ".join(line.strip() for line in lines if line.strip() and " INFO " not in line)
