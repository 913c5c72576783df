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
    """Minor page faults of making and dropping 50 MB of 64 KiB strings five times, as a dump's parts do: below
    glibc's mmap threshold, so they come from the heap, whose freed top glibc trims by default."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        strings = [bytes(65536) for _ in range(800)]
        del strings
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def main(scenario: str) -> None:
    from preprocgate.cache import DumpCache
    from preprocgate.stages.allocator import trimming_held_back
    from preprocgate.stages.dump import PartWriter

    faults_of_churn()
    out: dict[str, object] = {"before": faults_of_churn()}
    if scenario == "writer":
        with tempfile.TemporaryDirectory() as folder, PartWriter(DumpCache(Path(folder)), "k" * 64):
            faults_of_churn()  # the first round grows the heap once
            out["inside"] = faults_of_churn()
    else:
        with trimming_held_back() as outer:
            if scenario == "nested":
                with trimming_held_back() as inner:
                    faults_of_churn()
                out["held"] = [outer, inner]
            else:
                faults_of_churn()
                out["held"] = [outer]
            out["inside"] = faults_of_churn()  # nested: after the inner one ended
    faults_of_churn()
    out["after"] = faults_of_churn()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
