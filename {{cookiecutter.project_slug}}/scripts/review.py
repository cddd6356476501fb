"""Checklist-driven production review: prove what a machine can prove of PRODUCTION_CHECKLIST.md.

    uv run python scripts/review.py --static     # the repository only (CI, laptops)
    uv run python scripts/review.py              # the repository and the deployed stacks (boto3)
    uv run python scripts/review.py --pr-template > .github/pull_request_template.md
    uv run python scripts/review.py --preflight  # before the first deploy: what would stop it

The checklist is the source of truth: the review reads its items (id, title, and whether it is
checked statically, live or not at all) and runs the one check function registered for each
checked id (package ``production_review`` beside this script). It prints a Markdown report with one
line per item and exits 1 when any check fails; a checklist item without a check, or a check
without an item, is itself a failure.

Each check returns the problems it found, as short sentences; no problem means the item passes. A
check that crashes fails its own item with the error rather than hiding the others.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Importing the check modules registers their checks.
from production_review import (  # noqa: F401
    live_monitoring,
    retention,
    static_files,
    static_monitoring,
    static_stacks,
)
from production_review.checklist import parse_checklist, pr_template
from production_review.live import Live
from production_review.preflight import preflight
from production_review.project import (
    CHECKLIST,
    DEFAULT_APP_STACK,
    DEFAULT_BOOTSTRAP_STACK,
    DEFAULT_REGION,
)
from production_review.report import report, review
from production_review.repository import Repo


def boto3_clients(region: str) -> Callable[[str], Any]:
    import boto3  # only the live review needs AWS

    session = boto3.Session(region_name=region)
    return lambda service: session.client(service)


def main(
    argv: list[str] | None = None,
    client_factory: Callable[[str], Any] | None = None,
    page_opener: Callable[[str], Any] | None = None,
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--static", action="store_true", help="check the repository only")
    parser.add_argument("--app-stack", default=DEFAULT_APP_STACK)
    parser.add_argument("--bootstrap-stack", default=DEFAULT_BOOTSTRAP_STACK)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument(
        "--pr-template", action="store_true", help="print .github/pull_request_template.md"
    )
    parser.add_argument(
        "--preflight",
        action="store_true",
        help="before the first deploy: ask AWS (your credentials) what would stop it",
    )
    args = parser.parse_args(argv)

    if args.preflight:
        findings = preflight(
            client_factory or boto3_clients(args.region), args.root, args.bootstrap_stack
        )
        for finding in findings:
            print(finding)
        problems = sum(f.kind == "problem" for f in findings)
        print(f"preflight ({args.region}): {problems} problem(s)")
        return 1 if problems else 0

    items = parse_checklist((args.root / CHECKLIST).read_text(encoding="utf-8"))
    if args.pr_template:
        sys.stdout.write(pr_template(items))
        return 0
    live = None
    heading = "static (repository only)"
    if not args.static:
        factory = client_factory or boto3_clients(args.region)
        live = Live(args.app_stack, args.bootstrap_stack, factory)
        if page_opener is not None:
            live.page_opener = page_opener
        stacks = f"{args.bootstrap_stack}, {args.app_stack} in {args.region}"
        heading = f"static and live (stacks {stacks})"
    outcomes = review(items, Repo(args.root.resolve()), live)
    sys.stdout.write(report(outcomes, heading))
    return 1 if any(o.status == "FAIL" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
