"""PRODUCTION_CHECKLIST.md as data, and the pull request template generated from it."""

from __future__ import annotations

import re
from dataclasses import dataclass

MODES = ("static", "live", "manual")
ITEM_HEADING = re.compile(r"^### ([A-Z]+-\d+): (.+?)\s*$")
# "- **Review:** static [CKV_AWS_42, CKV2_APP_9, efs_retained]. Fails when ..."
REVIEW_LINE = re.compile(r"^- \*\*Review:\*\* (\w+)(?: \[([^\]]*)\])?")


@dataclass(frozen=True)
class Item:
    """One checklist item: ``### ID: title`` and its ``- **Review:**`` line.

    ``proofs`` are what proves a static item: checkov check ids (``CKV...``), zizmor audits
    (``zizmor/unpinned-uses``) and names of the Python checks in ``production_review.static``;
    every one must pass.
    """

    id: str
    title: str
    mode: str
    proofs: tuple[str, ...] = ()


def parse_checklist(text: str) -> list[Item]:
    """Read the items in order; ValueError on a malformed item."""
    items: list[Item] = []
    current: tuple[str, str] | None = None
    review: re.Match[str] | None = None

    def close() -> None:
        if current is None:
            return
        if review is None or review[1] not in MODES:
            raise ValueError(f"{current[0]}: needs a '- **Review:** static|live|manual' line")
        proofs = tuple(p.strip() for p in (review[2] or "").split(",") if p.strip())
        if (review[1] == "static") != bool(proofs):
            raise ValueError(f"{current[0]}: a static item, and only one, lists its [checks]")
        items.append(Item(current[0], current[1], review[1], proofs))

    for line in text.splitlines():
        if heading := ITEM_HEADING.match(line):
            close()
            current, review = (heading[1], heading[2]), None
        elif line.startswith("#"):
            close()
            current, review = None, None
        elif current and (match := REVIEW_LINE.match(line)):
            review = match
    close()
    ids = [item.id for item in items]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"duplicate checklist ids: {', '.join(duplicates)}")
    return items


def pr_template(items: list[Item]) -> str:
    """The pull request template: the checklist's manual items as boxes to tick.

    Generated, so it cannot drift: `--pr-template` prints it and a test compares it with the file.
    """
    boxes = "\n".join(f"- [ ] **{i.id}** {i.title}" for i in items if i.mode == "manual")
    return f"""## What and why

<!-- What does this change, and why? Link the issue. -->

## How it was tested

<!-- Commands run, screenshots, links. CI runs the tests and the static production review. -->

## Production checklist: decisions no machine can check

Tick each item this change affects once the decision in PRODUCTION_CHECKLIST.md is made (and
recorded there); leave the others. `uv run python scripts/review.py --static` checks the rest.

{boxes}
"""
