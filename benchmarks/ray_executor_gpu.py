"""Dump throughput of the ray executor against the local one on one GPU, for the demo Mask R-CNN and RF-DETR
seg-nano: the issue's bound is ray within 5% of local (being scalable must not cost speed).

    PYTHONPATH=. python benchmarks/ray_executor_gpu.py [--images 500] [--ray-address ADDR] [--concurrency 2,1]
        [--workers-per-gpu 1,2] [--ray-niceness-15] [--out results.json]

For each model, gates with the same synthetic COCO-format set and variants (cv2, torch, triton) run with an empty
cache, alternately ``executor: local`` and ``executor: ray`` (one actor on the GPU; without --ray-address Ray
starts on this machine), ``--rounds`` times each after one untimed warm-up run per model and executor (so that
Triton's disk cache holds every kernel either executor's processes compile). Throughput is images dumped over
the dump seconds; the ray executor's one-time start (joining, starting the actor, loading the model there,
reported as its own stage) is taken out and shown apart. Besides the medians, each round's ray run is divided by
the local run just before it (``ray_over_local_by_round``): local runs of the same gate drifted by 30% between
rounds on an H100 (benchmarks/RESULTS.md). Also checks that both executors' dumps are bit-identical. Prints one
JSON line per run, then a summary table and the JSON (also written with --out).

Needs CUDA, torchvision (the Mask R-CNN runs through the torch adapter), rfdetr (seg-nano with random weights
unless --checkpoint: throughput is the real network's, accuracy meaningless), triton, and the ray extra.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from preprocgate import load_gate, run_gate
from preprocgate.data import demo
from preprocgate.stages.ray_executor import STARTUP

ROOT = Path(__file__).resolve().parents[1]


def model(name: str, work: Path, checkpoint: Path | None) -> tuple[dict[str, Any], str]:
    """The gate's model section and input size. ``maskrcnn-demo-onnx`` (ONNX Runtime) is for a CPU smoke test."""
    if name == "maskrcnn-demo":
        file, params = (
            ROOT / "models" / "demo" / "maskrcnn_mbv3.pt",
            {"factory": "preprocgate.models.demo_maskrcnn:build"},
        )
        return {"adapter": "torch", "file": str(file), "params": params}, "320x320"
    if name == "maskrcnn-demo-onnx":
        return {"adapter": "onnxruntime", "file": str(ROOT / "preprocgate" / "demo" / "maskrcnn_mbv3.onnx")}, "320x320"
    if name == "rfdetr-seg-nano":
        if checkpoint is None:
            from benchmarks.rfdetr_gpu import random_checkpoint

            checkpoint = random_checkpoint(work)
        params = {"backend": "torch", "score_threshold": 0.05}
        return {"adapter": "rfdetr", "file": str(checkpoint), "params": params}, "312x312"
    raise SystemExit(f"unknown model {name!r}")


def write_gate(
    work: Path,
    data: demo.CocoPaths,
    name: str,
    model: dict,
    size: str,
    batch: int,
    executor: dict,
    tag: str,
    device: str,
) -> Path:
    spec = {
        "name": f"{name}-{tag}",
        "device": device,
        "input": {"size": size},
        "variants": {"cv2": "cv2", "torch": "torch", "triton": "triton"},
        "baseline": "cv2",
        "probes": {"speed": None},
        "dataset": {"images": str(data.images), "annotations": str(data.annotations)},
        "model": {**model, "batch_size": batch},
        "thresholds": {"map": {"max_abs_delta": 1.0, "metrics": ["bbox.AP"]}},
        "executor": executor,
        "cache_dir": str(work / f"cache-{name}-{tag}"),
        "report": {"output_dir": str(work / "reports")},
    }
    path = work / f"{name}-{tag}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(path: Path) -> dict[str, Any]:
    """One run with an empty cache: every dump computed."""
    gate = load_gate(path)
    shutil.rmtree(gate.cache_dir / "dumps", ignore_errors=True)
    result = run_gate(gate)
    images = sum(d.computed_images for d in result.dumps)
    startup = result.stage_seconds.get(STARTUP, 0.0)
    seconds = sum(d.seconds for d in result.dumps) - startup
    return {
        "images": images,
        "dump_s": round(seconds, 3),
        "startup_s": round(startup, 3),
        "images_per_s": round(images / seconds, 2),
        "per_variant_images_per_s": {d.variant: round(d.computed_images / d.seconds, 2) for d in result.dumps},
        "digests": {d.variant: d.digest for d in result.dumps},
        "stage_seconds": {k: round(v, 3) for k, v in result.stage_seconds.items()},
    }


def _per_image(runs: list[dict[str, Any]], stage: str) -> float:
    """Median milliseconds per image of a stage over runs (the stage summed over every variant's dump)."""
    return round(statistics.median(1e3 * r["stage_seconds"].get(stage, 0.0) / r["images"] for r in runs), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs per executor and model, alternating")
    parser.add_argument("--ray-address", help="join this cluster; default: start Ray here")
    parser.add_argument(
        "--concurrency", default="2", help="the ray executor's concurrency values to time, comma-separated (e.g. 2,1)"
    )
    parser.add_argument(
        "--workers-per-gpu",
        default="1",
        help="the ray executor's workers_per_gpu values to time, comma-separated (e.g. 1,2): actors sharing the GPU",
    )
    parser.add_argument(
        "--ray-niceness-15",
        action="store_true",
        help="also time the ray executor with Ray's own worker niceness (15) instead of its default 0",
    )
    parser.add_argument("--checkpoint", type=Path, help="an RF-DETR seg-nano checkpoint; default: random weights")
    parser.add_argument("--models", default="maskrcnn-demo,rfdetr-seg-nano")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test (with --models maskrcnn-demo-onnx)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("needs CUDA")
    work = Path(tempfile.mkdtemp(prefix="pg-ray-"))
    data = demo.generate(work / "data", "val", args.images, seed=7, workers=os.cpu_count() or 1)
    joined = {"address": args.ray_address} if args.ray_address else {}
    executors: dict[str, dict] = {"local": {"kind": "local"}}
    for c in (int(v) for v in args.concurrency.split(",")):
        for w in (int(v) for v in args.workers_per_gpu.split(",")):
            executors[("ray" if c == 2 else f"ray-c{c}") + (f"-w{w}" if w > 1 else "")] = {
                "kind": "ray",
                "params": {"workers": w, "concurrency": c, "workers_per_gpu": w, **joined},
            }
    if args.ray_niceness_15:
        executors["ray-nice15"] = {"kind": "ray", "params": {"workers": 1, "niceness": None, **joined}}
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    summary: dict[str, Any] = {"device": device, "images": args.images, "models": {}}
    for name in args.models.split(","):
        section, size = model(name, work, args.checkpoint)
        paths = {
            e: write_gate(work, data, name, section, size, args.batch_size, x, e, args.device)
            for e, x in executors.items()
        }
        for path in paths.values():  # warm-up, each executor once: CUDA, cuDNN autotuning, Triton's compiles (in
            run(path)  # its disk cache for the actors' processes too), the page cache
        runs: dict[str, list[dict]] = {e: [] for e in executors}
        for _ in range(args.rounds):
            for executor, path in paths.items():
                runs[executor].append(run(path))
                print(json.dumps({"model": name, "executor": executor, **runs[executor][-1]}), flush=True)
        local = statistics.median(r["images_per_s"] for r in runs["local"])
        identical = all(r["digests"] == runs["local"][0]["digests"] for rs in runs.values() for r in rs)
        for executor, done in runs.items():
            if executor == "local":
                continue
            rate = statistics.median(r["images_per_s"] for r in done)
            summary["models"][f"{name} ({executor})"] = {
                "local_images_per_s": local,
                "ray_images_per_s": rate,
                "ray_over_local": round(rate / local, 4),
                # each round's ray run over the local run just before it: drift between rounds cancels
                "ray_over_local_by_round": [
                    round(r["images_per_s"] / lo["images_per_s"], 4) for r, lo in zip(done, runs["local"], strict=True)
                ],
                "within_5_percent": rate >= 0.95 * local,
                "ray_startup_s": statistics.median(r["startup_s"] for r in done),
                "identical_dumps": identical,
                # where a gap comes from: the forward's own time per image, in this process or in the actor
                "infer_ms_per_image": {
                    "local": _per_image(runs["local"], "infer+postprocess"),
                    "ray": _per_image(done, "infer+postprocess (workers)"),
                },
            }
    print("\n| model (executor) | local img/s | ray img/s | ray / local | within 5% | ray start (s) | infer ms/img |")
    print("|---|---|---|---|---|---|---|")
    for name, m in summary["models"].items():
        infer = m["infer_ms_per_image"]
        print(
            f"| {name} | {m['local_images_per_s']:.1f} | {m['ray_images_per_s']:.1f} | {m['ray_over_local']:.3f} | "
            f"{'yes' if m['within_5_percent'] else 'NO'} | {m['ray_startup_s']:.1f} | "
            f"{infer['local']:.2f} local, {infer['ray']:.2f} ray |"
        )
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
