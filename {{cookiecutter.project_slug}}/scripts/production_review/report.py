"""Run every checklist item's check and print the Markdown report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .checklist import Item
from .live import Live
from .project import CHECKLIST
from .registry import CHECKS
from .repository import Repo


@dataclass(frozen=True)
class Outcome:
    item: Item
    status: str  # pass | FAIL | manual | not run
    detail: str = ""


def run_check(item: Item, argument: Any) -> Outcome:
    try:
        problems = CHECKS[item.id].run(argument)
    except Exception as error:  # one broken check must not hide the others
        return Outcome(item, "FAIL", f"{type(error).__name__}: {error}")
    return Outcome(item, "FAIL", "; ".join(problems)) if problems else Outcome(item, "pass")


def review(items: list[Item], repo: Repo, live: Live | None) -> list[Outcome]:
    outcomes = []
    for item in items:
        registered = CHECKS.get(item.id)
        if item.mode == "manual":
            outcomes.append(Outcome(item, "manual", "a decision for the team"))
        elif registered is None or registered.mode != item.mode:
            outcomes.append(
                Outcome(item, "FAIL", f"no {item.mode} check is registered for this item")
            )
        elif item.mode == "static":
            outcomes.append(run_check(item, repo))
        elif live is None:
            outcomes.append(Outcome(item, "not run", "live check (run without --static)"))
        else:
            outcomes.append(run_check(item, live))
    listed = {item.id for item in items}
    for orphan in sorted(set(CHECKS) - listed):
        outcomes.append(Outcome(Item(orphan, "not in the checklist", "?"), "FAIL", CHECKLIST))
    return outcomes


def report(outcomes: list[Outcome], heading: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"## Production review: {heading}", "", "| Result | Item | Check | Details |"]
    lines.append("| --- | --- | --- | --- |")
    for o in outcomes:
        row = [o.status, o.item.id, o.item.title, o.detail]
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    statuses = ("pass", "FAIL", "manual", "not run")
    counts = {s: sum(o.status == s for o in outcomes) for s in statuses}
    lines += ["", "Totals: " + ", ".join(f"{s} {n}" for s, n in counts.items())]
    return "\n".join(lines) + "\n"
