"""The benchmarks in benchmarks/ work: each runs here in a tiny configuration.

They measure; these tests only prove that the measuring runs end to end and counts what it says,
so a change to the app or the store cannot silently break them. No figure is compared with a
time: speed is the benchmarks' business, printed, never asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import file_ops, turn_latency
from benchmarks.project import prepare_project

pytestmark = pytest.mark.slow


def test_file_ops_counts_the_same_page_run_for_few_and_many_conversations(
    synced_default_project: Path, tmp_path: Path
) -> None:
    # The synced copy, never the shared bake: syncing creates .venv, which other tests would scan.
    project = prepare_project(tmp_path, synced_default_project)
    one, many = (file_ops.measure(project, n, tmp_path) for n in (1, 30))
    for runs in (one, many):
        assert runs["rerun"]["openat"] >= 1  # the session's index, at least
    # Operation counts, not times: a rerun with 30 conversations does what it does with one.
    assert many["rerun"] == one["rerun"]


def test_turn_latency_times_turns_in_a_real_browser(
    synced_default_project: Path, tmp_path: Path
) -> None:
    project = prepare_project(tmp_path, synced_default_project)
    times = turn_latency.measure(project, [2, 30], 1, tmp_path)
    assert sorted(times) == [2, 30]
    assert all(len(samples) == 1 and samples[0] > 0 for samples in times.values())
