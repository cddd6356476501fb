"""Every check is a function registered against exactly one checklist id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# A check takes the repository (static) or the deployed stacks (live) and returns its problems.
CheckFunction = Callable[..., list[str]]


@dataclass(frozen=True)
class Check:
    id: str
    mode: str  # "static" or "live", as the checklist item's "Review:" line says
    run: CheckFunction


CHECKS: dict[str, Check] = {}


def check(item_id: str, mode: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the function as THE check of a checklist item (one per item)."""

    def register(func: CheckFunction) -> CheckFunction:
        if item_id in CHECKS:
            raise ValueError(f"two checks for {item_id}")
        CHECKS[item_id] = Check(item_id, mode, func)
        return func

    return register


class Missing(Exception):
    """Something a check needs (a file, a resource, a stack output) is not there.

    The check fails with this message instead of a traceback.
    """
