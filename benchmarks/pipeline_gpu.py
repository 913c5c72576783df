"""The gate pipeline at COCO scale on one GPU: 5,000 synthetic images × 3 variants, cold and warm, per stage.

    python benchmarks/pipeline_gpu.py [--images 5000] [--processes 4] [--out results.json]

Measures, in one run: end-to-end wall time (cold, then warm from the cache), wall time per stage, each
variant's dump throughput against the model's pure forward throughput on the same batches (engine
overhead), and pycocotools against faster-coco-eval on the same dumps (time and equality). Needs CUDA and
torchvision (the demo Mask R-CNN runs through the torch adapter on the GPU). With ``--processes N`` the cold run
dumps in N shard processes sharing the GPU, then merges, as ``preprocgate run --processes N`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from preprocgate.data import demo
from preprocgate.engine import RunMode, run_gate
from preprocgate.evaluators import EVALUATORS
from preprocgate.spec import InputSpec, load_gate
from preprocgate.variants.torch_interpolate import TorchInterpolate

ROOT = Path(__file__).resolve().parents[1]


def write_gate(folder: Path, data: demo.CocoPaths, batch: int, device: str, backend: str) -> Path:
    spec = {
        "name": "scale",
        "device": device,
        "input": {"size": "320x320"},
        "variants": {"cv2": "cv2", "torch": "torch", "triton": "triton"},
        "baseline": "cv2",
        "probes": {"speed": None},
        "dataset": {"images": str(data.images), "annotations": str(data.annotations)},
        "model": {
            "adapter": "torch",
            "file": str(ROOT / "models" / "demo" / "maskrcnn_mbv3.pt"),
            "batch_size": batch,
            "params": {"factory": "preprocgate.models.demo_maskrcnn:build"},
        },
        "evaluation": {"backend": backend},
        "thresholds": {"map": {"max_abs_delta": 0.01, "metrics": ["bbox.AP", "segm.AP"]}},
        "cache_dir": str(folder / "cache"),
        "report": {"output_dir": str(folder / "reports")},
    }
    path = folder / "scale.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def forward_throughput(data: demo.CocoPaths, batch: int, images: int, device: torch.device) -> dict:
    """The model alone on the same preprocessed batches: the ceiling the dump stage is measured against."""
    import cv2

    from preprocgate.models.torch_module import TorchModuleAdapter

    adapter = TorchModuleAdapter(
        device, file=ROOT / "models" / "demo" / "maskrcnn_mbv3.pt", factory="preprocgate.models.demo_maskrcnn:build"
    )
    pre = TorchInterpolate(InputSpec(size=(320, 320)), device)
    files = sorted(data.images.iterdir())[:images]
    batches = [pre([cv2.imread(str(f)) for f in files[i : i + batch]]) for i in range(0, len(files), batch)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        adapter.model(batches[0])
        sync()
        start = time.perf_counter()
        for x in batches:
            adapter.model(x)
        sync()
    seconds = time.perf_counter() - start
    return {"images": len(files), "seconds": seconds, "images_per_s": len(files) / seconds}


def eval_backends(gate_path: Path) -> dict:
    gate = load_gate(gate_path)
    result = json.loads((Path(gate.output_dir) / "scale.json").read_text())
    from preprocgate.cache import DumpCache

    cache = DumpCache(gate.cache_dir)
    key = next(d["key"] for d in result["dumps"] if d["variant"] == "triton")
    results = cache.load_parts(key)
    records = [r for i in sorted(results) for r in results[i]]
    ids = sorted(results)
    ann = Path(gate.spec.dataset.annotations)
    out = {}
    for backend in ("pycocotools", "faster_coco_eval"):
        ev = EVALUATORS.get(backend)(ann)
        start = time.perf_counter()
        stats = {t: ev.evaluate(records, t, ids) for t in ("bbox", "segm")}
        out[backend] = {"seconds": time.perf_counter() - start, "stats": stats}
    a, b = out["pycocotools"]["stats"], out["faster_coco_eval"]["stats"]
    out["max_abs_difference"] = max(abs(a[t][m] - b[t][m]) for t in a for m in a[t])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--processes", type=int, default=1, help="shard processes for the cold run's dumps")
    parser.add_argument(
        "--eval-backend", default="faster_coco_eval", help="the gate's evaluator (both are timed after)"
    )
    parser.add_argument("--out")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pg-scale-"))
    start = time.perf_counter()
    data = demo.generate(folder / "data", "val", args.images, seed=5, workers=os.cpu_count() or 1)
    generated = time.perf_counter() - start
    path = write_gate(folder, data, args.batch, args.device, args.eval_backend)
    runs = []
    for label in ("cold", "warm"):
        start = time.perf_counter()
        processes = args.processes if label == "cold" and args.processes > 1 else None
        result = run_gate(load_gate(path), device=args.device, mode=RunMode(processes=processes))
        wall = time.perf_counter() - start
        from preprocgate.report import write_reports

        begin = time.perf_counter()
        write_reports(result, Path(load_gate(path).output_dir))
        report_s = time.perf_counter() - begin
        runs.append(
            {
                "run": label,
                "wall_s": wall + report_s,
                "report_s": report_s,
                "passed": result.passed,
                "stage_seconds": result.stage_seconds,
                "dumps": [
                    {
                        "variant": d.variant,
                        "seconds": d.seconds,
                        "computed": d.computed_images,
                        "images_per_s": d.computed_images / d.seconds if d.computed_images else None,
                    }
                    for d in result.dumps
                ],
                "metrics": {v: {t: m["AP"] for t, m in ms.items()} for v, ms in result.metrics.items()},
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    forward = forward_throughput(data, args.batch, min(args.images, 1000), torch.device(args.device))
    overheads = {
        d["variant"]: 1 - d["images_per_s"] / forward["images_per_s"] for d in runs[0]["dumps"] if d["images_per_s"]
    }
    if args.processes > 1:
        dumped = 3 * args.images / runs[0]["stage_seconds"][f"dump ({args.processes} processes, wall)"]
        overheads = {"all variants, images/s over one process's pure forward": dumped / forward["images_per_s"]}
    import triton

    out = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor(),
        "versions": {
            "torch": torch.__version__,
            "triton": triton.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "images": args.images,
        "evaluation_backend": args.eval_backend,
        "processes": args.processes,
        "generation_s": generated,
        "runs": runs,
        "warm_over_cold": runs[1]["wall_s"] / runs[0]["wall_s"],
        "forward": forward,
        "engine_overhead_vs_forward": overheads,
        "evaluation": eval_backends(path),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
