"""glibc's trimming held back while a dump writes: freed string memory is reused without new page faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from preprocgate.stages import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only (Linux with glibc)")
ROUND = 5 * 1600  # pages that one round of the churn's 100 MB faults in at the least (4 KiB pages: about 128,000)


def churn(scenario: str, **environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.heap_churn", scenario],
        env={**env, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_dumps_writer_reuses_freed_memory_and_hands_it_back_after() -> None:
    faults = churn("writer")
    assert faults["before"] > ROUND  # every round faults its 100 MB in again
    assert faults["inside"] < faults["before"] / 20
    assert faults["after"] > faults["before"] / 2  # the freed top handed back again once the dump ends
    # megabyte blocks stay on the heap, inside and after, as glibc's own threshold adjustment keeps them (a fixed
    # 128 KiB mmap threshold maps and faults in each afresh: 256 pages each, 51,200 in all)
    assert faults["before_megabytes"] > 200 * 256 / 2  # the helper's process starts at glibc's 128 KiB
    assert faults["inside_megabytes"] < 200 * 256 / 20
    assert faults["after_megabytes"] < 200 * 256 / 20


def test_nested_holds_end_with_the_last() -> None:
    faults = churn("nested")
    assert faults["held"] == [True, True]
    assert faults["before"] > ROUND and faults["inside"] < faults["before"] / 20  # still held after the inner one
    assert faults["after"] > faults["before"] / 2


def test_a_process_whose_environment_tunes_malloc_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = churn("plain", MALLOC_TRIM_THRESHOLD_="131072")  # glibc's default, set by the process's owner
    assert faults["held"] == [False]
    assert faults["inside"] > faults["before"] / 2 > ROUND / 2
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    assert not allocator.tuned_by_environment()
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert allocator.tuned_by_environment()
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.top_pad=0")
    assert allocator.tuned_by_environment()
