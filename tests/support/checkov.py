"""checkov over many variants of the same templates, each variant seeing only its own conditions.

checkov 3.3.30 builds one graph per run and resolves every ``Fn::If`` with the FIRST condition of
that name anywhere in the run (``CloudformationVariableRenderer._fetch_vertex_attributes`` takes
``vertex_index_list[0]``); ``Ref`` is resolved per file. Two copies of app.yaml with different
parameter defaults in one run therefore borrow each other's conditions, and which copy comes first
changes with the hash seed: issue 12's CI failed once because a ``SignIn=disabled`` copy turned
``AUTH_MODE`` to ``none`` in every other copy (9 of the hash seeds 10 to 40 reproduce it).

A generated project's own run is safe (app.yaml and bootstrap.yaml share no condition name;
tests/test_infra.py holds that). Tests that check many variants at once group them here: a run
only holds templates whose like-named conditions have the same inputs (the Conditions, Parameters
and Mappings sections), and the runs go in parallel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.cloudformation import load_template

FLAGS = ("--framework", "cloudformation", "--skip-download", "--output", "json")  # offline
# The validators the generated review runs from PATH, as .ci/run installs them and the generated
# ci.yml pins them (tests/test_workflows.py holds the pins equal).
CHECKOV_VERSION = "3.3.30"
ZIZMOR_VERSION = "1.32.0"


def validator_environment() -> dict[str, str]:
    """checkov and zizmor on PATH (.ci/run installs both in ~/.local/bin), checkov offline."""
    path = f"{Path.home() / '.local/bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    for tool, version in (("checkov", CHECKOV_VERSION), ("zizmor", ZIZMOR_VERSION)):
        if shutil.which(tool, path=path) is None:
            pytest.fail(f"{tool} is missing: uv tool install {tool}=={version}")
    return {**os.environ, "PATH": path, "BC_SKIP_MAPPING": "TRUE"}


def condition_inputs(template: Path) -> dict[str, str]:
    """Each condition name of ``template``, mapped to everything its value can depend on."""
    body = load_template(template)
    inputs = json.dumps(
        [body.get(section) or {} for section in ("Conditions", "Parameters", "Mappings")],
        sort_keys=True,
    )
    return dict.fromkeys(body.get("Conditions") or {}, inputs)


def isolated_runs(templates: Sequence[Path]) -> list[list[Path]]:
    """The fewest runs (first fit) in which no condition name means two different things."""
    runs: list[tuple[list[Path], dict[str, str]]] = []
    for template in templates:
        own = condition_inputs(template)
        for members, meanings in runs:
            if all(meanings.get(name, inputs) == inputs for name, inputs in own.items()):
                members.append(template)
                meanings.update(own)
                break
        else:
            runs.append(([template], own))
    return [members for members, _ in runs]


def checkov_results(
    checkov: Sequence[str], templates: Sequence[Path], env: dict[str, str]
) -> dict[str, Any]:
    """``checkov`` (the executable and its extra options) over ``templates``, isolated as above.

    Returns the ``results`` of one report (passed, failed and skipped checks, parsing errors),
    merged over the runs; each entry's ``file_abs_path`` names its template.
    """

    def run(members: list[Path]) -> dict[str, Any]:
        files = [part for template in members for part in ("--file", str(template.resolve()))]
        done = subprocess.run(
            [*checkov, *FLAGS, *files],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env=env,
        )
        assert done.stdout.startswith("{"), done.stderr[-3000:]
        return json.loads(done.stdout)["results"]

    merged: dict[str, Any] = {
        "passed_checks": [],
        "failed_checks": [],
        "skipped_checks": [],
        "parsing_errors": [],
    }
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for results in pool.map(run, isolated_runs(templates)):
            for kind, entries in merged.items():
                entries.extend(results.get(kind) or [])
    return merged
