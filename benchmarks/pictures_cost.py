"""What the report's pictures cost on a gate: drawing them (first run after a change) and finding them (warm run).

    python benchmarks/pictures_cost.py [GATE] [--repeats N]

Runs GATE (default gates/demo.yaml) once to fill the cache, then: N warm runs with pictures and N without
(medians of the whole run, report writing included), and the pictures stages of a run whose pictures had to be
drawn (the pictures cache emptied first). Prints one line per figure. Budget (issue 14): pictures cost at most
5% of a warm run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from preprocgate.cli.options import load
from preprocgate.engine import run_gate
from preprocgate.report import write_reports


def timed(gate_path: str, pictures: bool, out: Path) -> tuple[float, dict[str, float]]:
    gate = load(gate_path)
    spec = gate.spec.model_copy(update={"report": gate.spec.report.model_copy(update={"pictures": pictures})})
    gate = gate.model_copy(update={"spec": spec})
    start = time.perf_counter()
    result = run_gate(gate)
    write_reports(result, out)
    return time.perf_counter() - start, {k: v for k, v in result.stage_seconds.items() if k.startswith("pictures")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("gate", nargs="?", default="gates/demo.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pictures-cost-"))
    timed(args.gate, True, out)  # fills every cache
    with_pictures, without, stages = [], [], []
    for _ in range(args.repeats):  # interleaved, so that a change in machine load hits both alike
        seconds, found = timed(args.gate, True, out)
        with_pictures.append(seconds)
        stages.append(sum(found.values()))
        without.append(timed(args.gate, False, out)[0])
    shutil.rmtree(load(args.gate).cache_dir / "pictures", ignore_errors=True)
    drawn_total, drawn = timed(args.gate, True, out)
    warm, bare = statistics.median(with_pictures), statistics.median(without)
    print(f"warm run without pictures: {bare:.3f} s (median of {args.repeats})")
    cost = f"{warm - bare:+.3f} s = {100 * (warm - bare) / bare:+.1f}%"
    print(f"warm run with pictures:    {warm:.3f} s; pictures cost {cost}")
    print(f"pictures stages of a warm run: {statistics.median(stages):.3f} s (median)")
    print(
        f"run drawing them anew:     {drawn_total:.3f} s, of which "
        + ", ".join(f"{k} {v:.2f} s" for k, v in drawn.items())
    )
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
