"""Minor page faults of heap churn inside and around glibc's trimming held back, in a fresh process: one whose
heap has no free holes, left by earlier tests, that would take the churn without new pages. Prints JSON.

    python -m tests.helpers.heap_churn writer|nested|plain
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path


def faults_of_churn() -> int:
    """Minor page faults of making and dropping 100 MB of 64 KiB strings five times, as a dump's parts do: below
    glibc's mmap threshold, so they come from the heap, whose freed top glibc trims by default (and does after a
    dump: above twice the mmap threshold, :data:`~preprocgate.stages.allocator.AFTER_TRIM_THRESHOLD`)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        strings = [bytes(65536) for _ in range(1600)]
        del strings
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def faults_of_megabytes() -> int:
    """Minor page faults of making and dropping a 1 MiB string 200 times: above glibc's initial mmap threshold
    (128 KiB), which its own adjustment raises after the first is freed, unless a fixed threshold turned that off."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        block = b"\x01" * (1 << 20)  # written, so every page is touched (calloc's fresh mmap is not)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def main(scenario: str) -> None:
    from preprocgate.cache import DumpCache
    from preprocgate.stages import allocator
    from preprocgate.stages.dump import PartWriter

    if scenario == "writer":  # glibc's threshold as in a process that has freed no mmapped block yet
        allocator._glibc().mallopt(allocator.M_MMAP_THRESHOLD, 128 * 1024)
    faults_of_churn()
    out: dict[str, object] = {"before": faults_of_churn(), "before_megabytes": faults_of_megabytes()}
    if scenario == "writer":
        with tempfile.TemporaryDirectory() as folder, PartWriter(DumpCache(Path(folder)), "k" * 64):
            faults_of_churn()  # the first round grows the heap once
            out["inside"] = faults_of_churn()
            out["inside_megabytes"] = faults_of_megabytes()
    else:
        with allocator.trimming_held_back() as outer:
            if scenario == "nested":
                with allocator.trimming_held_back() as inner:
                    faults_of_churn()
                out["held"] = [outer, inner]
            else:
                faults_of_churn()
                out["held"] = [outer]
            out["inside"] = faults_of_churn()  # nested: after the inner one ended
    out["after_megabytes"] = faults_of_megabytes()  # first: the heap's top was just handed back (malloc_trim)
    faults_of_churn()
    out["after"] = faults_of_churn()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
