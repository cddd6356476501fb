"""Run the review: each checklist item's proofs, one Markdown line per item, exit 1 on a FAIL."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checklist import Item, parse_checklist, pr_template
from .checkov import Results, read_report, run_checkov
from .live import LIVE_CHECKS, Live
from .preflight import preflight
from .project import (
    CHECKLIST,
    DEFAULT_APP_STACK,
    DEFAULT_BOOTSTRAP_STACK,
    DEFAULT_REGION,
    ToolError,
)
from .static import CHECKS, Repo
from .zizmor import PREFIX, Findings, run_zizmor

STATUSES = ("pass", "FAIL", "manual", "not run")


@dataclass(frozen=True)
class Outcome:
    item: Item
    status: str  # one of STATUSES
    detail: str = ""


def _problems(check: Callable[[Any], list[str]], argument: Any) -> list[str]:
    try:
        return check(argument)
    except Exception as error:  # one broken check must not hide the others
        return [f"{type(error).__name__}: {error}"]


def prove(item: Item, repo: Repo, checkov: Results | None, zizmor: Findings | None) -> list[str]:
    """The problems of a static item: every proof it names must pass."""
    problems = []
    for proof in item.proofs:
        if proof.startswith("CKV"):
            problems += checkov.problems(proof) if checkov else ["checkov did not run"]
        elif proof.startswith(PREFIX):
            audit = proof.removeprefix(PREFIX)
            problems += zizmor.problems(audit) if zizmor else ["zizmor did not run"]
        elif proof in CHECKS:
            problems += _problems(CHECKS[proof], repo)
        else:
            problems.append(f"{CHECKLIST} names {proof}, which is no checkov id or review check")
    return problems


def review(
    items: list[Item],
    repo: Repo,
    checkov: Results | None,
    live: Live | None,
    zizmor: Findings | None = None,
) -> list[Outcome]:
    outcomes = []
    for item in items:
        if item.mode == "manual":
            outcomes.append(Outcome(item, "manual", "a decision for the team"))
            continue
        if item.mode == "live" and item.id not in LIVE_CHECKS:
            problems = [f"no live check is registered for {item.id}"]
        elif item.mode == "live" and live is None:
            outcomes.append(Outcome(item, "not run", "live check (run without --static)"))
            continue
        elif item.mode == "live":
            problems = _problems(LIVE_CHECKS[item.id], live)
        else:
            problems = prove(item, repo, checkov, zizmor)
        outcomes.append(Outcome(item, "FAIL" if problems else "pass", "; ".join(problems)))
    # A check no item names, or a live check for an item that is not live, is drift too.
    named = {proof for item in items for proof in item.proofs}
    live_ids = {item.id for item in items if item.mode == "live"}
    for orphan in sorted(set(CHECKS) - named) + sorted(set(LIVE_CHECKS) - live_ids):
        outcomes.append(Outcome(Item(orphan, "not in the checklist", "?"), "FAIL", CHECKLIST))
    return outcomes


def report(outcomes: list[Outcome], heading: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"## Production review: {heading}", "", "| Result | Item | Check | Details |"]
    lines.append("| --- | --- | --- | --- |")
    for o in outcomes:
        lines.append(
            "| " + " | ".join(cell(c) for c in (o.status, o.item.id, o.item.title, o.detail)) + " |"
        )
    counts = ", ".join(f"{s} {sum(o.status == s for o in outcomes)}" for s in STATUSES)
    return "\n".join([*lines, "", f"Totals: {counts}"]) + "\n"


def boto3_clients(region: str) -> Callable[[str], Any]:
    import boto3  # only the live review and the preflight need AWS

    session = boto3.Session(region_name=region)
    return lambda service: session.client(service)


def main(
    argv: list[str] | None = None,
    client_factory: Callable[[str], Any] | None = None,
    page_opener: Callable[[str], Any] | None = None,
) -> int:
    parser = argparse.ArgumentParser(description="Production review of PRODUCTION_CHECKLIST.md")
    parser.add_argument("--static", action="store_true", help="check the repository only")
    parser.add_argument("--app-stack", default=DEFAULT_APP_STACK)
    parser.add_argument("--bootstrap-stack", default=DEFAULT_BOOTSTRAP_STACK)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument(
        "--checkov-report",
        type=Path,
        help="read this checkov JSON report (of infra/, with infra/checks/) instead of running it",
    )
    parser.add_argument("--pr-template", action="store_true", help="print the PR template")
    parser.add_argument(
        "--preflight", action="store_true", help="before the first deploy: what would stop it"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()

    if args.preflight:
        findings = preflight(
            client_factory or boto3_clients(args.region), root, args.bootstrap_stack
        )
        print(*findings, sep="\n")
        problems = sum(f.kind == "problem" for f in findings)
        print(f"preflight ({args.region}): {problems} problem(s)")
        return 1 if problems else 0

    items = parse_checklist((root / CHECKLIST).read_text(encoding="utf-8"))
    if args.pr_template:
        sys.stdout.write(pr_template(items))
        return 0
    try:
        checkov = (
            read_report(args.checkov_report, root) if args.checkov_report else run_checkov(root)
        )
        names_zizmor = any(p.startswith(PREFIX) for item in items for p in item.proofs)
        zizmor = run_zizmor(root) if names_zizmor else None
    except ToolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    live, heading = None, "static (repository only)"
    if not args.static:
        live = Live(
            args.app_stack, args.bootstrap_stack, client_factory or boto3_clients(args.region)
        )
        if page_opener is not None:
            live.page_opener = page_opener
        heading = (
            f"static and live (stacks {args.bootstrap_stack}, {args.app_stack} in {args.region})"
        )
    outcomes = review(items, Repo(root), checkov, live, zizmor)
    sys.stdout.write(report(outcomes, heading))
    return 1 if any(o.status == "FAIL" for o in outcomes) else 0
