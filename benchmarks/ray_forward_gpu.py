"""Where the Ray executor's gap on one GPU comes from (issue 16): the same batch through the same preprocessing and
model, timed in this process, on a thread of this process, and in a Ray actor with and without the executor's
options (its ``decode`` concurrency group makes the actor threaded: its calls run on a thread Ray starts).

    python benchmarks/ray_forward_gpu.py [--models maskrcnn-demo,rfdetr-seg-nano] [--iterations 150] [--rounds 2]

Prints, per model and place, milliseconds per image of ``preprocess`` and ``infer+postprocess`` (the dump's own
steps, :func:`preprocgate.stages.dump.infer_batch`), medians over rounds, each round alternating the places.
The Ray executor's benchmark (benchmarks/ray_executor_gpu.py) found the actor's forward 3–7% slower than a local
run's with the same code: if the plain actor matches this process and the executor's does not, the options are
the cause; if every actor is slower, the process is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from preprocgate.data.synthetic import make
from preprocgate.plugins import MODELS
from preprocgate.spec import InputSpec
from preprocgate.stages.dump import infer_batch
from preprocgate.timing import StageTimes
from preprocgate.variants import VARIANTS, build_variant

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8


class Forward:
    """The model and the torch variant built once, and a batch of 480×640 images inferred again and again."""

    def __init__(self, model: dict[str, Any], size: str, threads: int, device: str) -> None:
        torch.set_num_threads(threads)  # as the executor's workers do: the driver's count
        run_on = torch.device(device)
        self.adapter = MODELS.resolve(model["adapter"])(run_on, "fp32", file=model["file"], **model.get("params", {}))
        self.spec = InputSpec(size=size)
        self.variant = build_variant(VARIANTS.resolve("torch"), self.spec, run_on, {})
        self.images = [make("natural", k, 480, 640) for k in range(BATCH)]

    def time(self, iterations: int) -> dict[str, float]:
        times = StageTimes()
        for _ in range(3):
            infer_batch(self.variant, self.adapter, self.spec, self.images, StageTimes())
        for _ in range(iterations):
            infer_batch(self.variant, self.adapter, self.spec, self.images, times)
        return {k: 1e3 * v / (iterations * BATCH) for k, v in times.seconds.items()}


def on_thread(forward: Forward, iterations: int) -> dict[str, float]:
    out: dict[str, float] = {}
    thread = threading.Thread(target=lambda: out.update(forward.time(iterations)))
    thread.start()
    thread.join()
    return out


def main() -> None:
    import ray

    from benchmarks.ray_executor_gpu import model as model_section
    from preprocgate.stages.ray_executor import RayExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="maskrcnn-demo,rfdetr-seg-nano")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test (with --models maskrcnn-demo-onnx)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ray.init(logging_level="WARNING", include_dashboard=False)
    threads = torch.get_num_threads()
    # half a GPU each: both actors live on the one GPU at once (Ray would hold the second back); nothing else changes
    gpu = {"num_gpus": 0.5} if args.device == "cuda" else {}
    executor_options = RayExecutor(workers=1, concurrency=1).actor_options(torch.device(args.device)) | gpu
    plain_options = {"num_cpus": 1, **gpu}
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    summary: dict[str, Any] = {"device": device, "batch": BATCH, "models": {}}
    for name in args.models.split(","):
        section, size = model_section(name, Path(tempfile.mkdtemp(prefix="pg-fwd-")), None)
        here = Forward(section, size, threads, args.device)
        actors = {
            place: ray.remote(**options)(Forward).remote(section, size, threads, args.device)
            for place, options in (("actor, plain", plain_options), ("actor, executor's options", executor_options))
        }
        results: dict[str, list[dict[str, float]]] = {p: [] for p in ("process", "thread", *actors)}
        for _ in range(args.rounds):
            results["process"].append(here.time(args.iterations))
            results["thread"].append(on_thread(here, args.iterations))
            for place, actor in actors.items():
                results[place].append(ray.get(actor.time.remote(args.iterations)))
        for actor in actors.values():
            ray.kill(actor)
        del here
        summary["models"][name] = {
            place: {
                step: round(statistics.median(r[step] for r in rounds), 3)
                for step in ("preprocess", "infer+postprocess")
            }
            | {"infer_by_round": [round(r["infer+postprocess"], 3) for r in rounds]}
            for place, rounds in results.items()
        }
        print(json.dumps({name: summary["models"][name]}), flush=True)
    print("\n| model | place | preprocess ms/img | infer+postprocess ms/img | over this process |")
    print("|---|---|---|---|---|")
    for name, places in summary["models"].items():
        base = places["process"]["infer+postprocess"]
        for place, m in places.items():
            ratio = m["infer+postprocess"] / base
            print(f"| {name} | {place} | {m['preprocess']:.3f} | {m['infer+postprocess']:.3f} | {ratio:.3f} |")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    ray.shutdown()


if __name__ == "__main__":
    main()
