"""Child processes for tests/test_budget.py: tasks on other hosts spending one person's allowance.

Run as ``python -m tests.budget_worker ROOT KEY LIMIT`` from the project folder. Two threads spend
turns of 100 tokens until the allowance refuses them; the process prints how many turns it was
allowed and whether every thread ended refused.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from core.budget import BudgetExceededError, DailyAllowance
from core.messages import Usage

TURN = Usage(input_tokens=60, output_tokens=40, latency_ms=5)


def spend(root: str, key: str, limit: str) -> None:
    allowance = DailyAllowance(Path(root), int(limit))
    allowed = [0, 0]
    refused = [False, False]

    def run(thread: int) -> None:
        while True:
            try:
                allowance.check(key)
            except BudgetExceededError:
                refused[thread] = True
                return
            allowance.record(key, "us.amazon.nova-lite-v1:0", TURN)
            allowed[thread] += 1

    print("ready", flush=True)
    sys.stdin.readline()  # "go": every worker starts at once
    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"allowed {sum(allowed)} refused {all(refused)}", flush=True)


if __name__ == "__main__":
    spend(*sys.argv[1:])
