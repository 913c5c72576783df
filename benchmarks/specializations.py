"""How many kernels the triton variant compiles for a dump of real photo sizes, and what each costs on a cold cache.
Needs no GPU: Triton's own argument binder (the one its launcher calls) gives each launch's specialisation key, and
compiling for sm_90 runs on the CPU. Prints JSON.

    PYTHONPATH=. python benchmarks/specializations.py [--images N]

Why: Triton compiles a kernel for every combination of its integer arguments being 1 or a multiple of 16 (and of
the constexprs). A dump launches the kernel once per shape group of a batch, with the source's and the content's
sizes and place as arguments, so on a cold cache (a fresh CI machine, a new Ray actor's node) every new
combination costs a compile before its images go on. The kernel leaves those arguments unspecialised
(``triton_kernel.PER_IMAGE_INTS``); this counts the keys with and without that, per gate, on the 128 real COCO
photos (``$PREPROCGATE_DATA``, default ``../shared/data``) and on ``--images`` sizes drawn as the synthetic
demo sets draw them (each side uniform in 300–700), batches of 8 grouped by shape as the dump stage groups them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preprocgate.geometry import plan_batch
from preprocgate.spec import InputSpec
from preprocgate.stages.dump import batches, shape_groups
from preprocgate.variants.triton_fused import _CUDA_TILES, launch_shape

os.environ.pop("TRITON_INTERPRET", None)  # the compiled kernel's functions, whose binder specialises
from triton.backends.nvidia.compiler import CUDABackend
from triton.runtime.jit import create_function_from_signature

from benchmarks.kernel_sass import sass
from preprocgate.variants import triton_kernel as k

ROOT = Path(__file__).resolve().parents[1]
GATES = {
    "RF-DETR 312² stretch": {"size": "312x312"},
    "Ultralytics 640² letterbox": {"size": "640x640", "resize": {"mode": "letterbox", "pad": [114, 114, 114]}},
}


def keys(shapes: list[tuple[int, int]], config: InputSpec, specialise_all: bool) -> int:
    """Distinct compiled kernels for the dump's launches: each shape group's key from Triton's binder, with its
    kernel and the constexprs the launch picks (rows_kernel or not, words or bytes)."""
    seen = set()
    pointer = torch.empty(64, dtype=torch.float32)  # device tensors are aligned alike
    for batch in batches(list(range(len(shapes))), 8):
        for group in shape_groups(batch, shapes.__getitem__):
            h, w = shapes[group[0]]
            geometry = plan_batch([(h, w)], config.size, config.resize)[0]
            (top, left), (content_h, content_w) = geometry.offset, geometry.content
            reuse, rows, block, _ = launch_shape(
                cuda=True, bilinear=True, reusable=True, rows_kept=content_h / h, output=config.size,
                reuse_rows=None, rows=None, block=None, num_warps=None,
            )  # fmt: skip
            fn = k.rows_kernel if reuse else k.preprocess_kernel
            ints = {"in_h": h, "in_w": w, "out_h": config.size[0], "out_w": config.size[1], "top": top,
                    "left": left, "content_h": content_h, "content_w": content_w, "o_taps": 1, "i_taps": 1}  # fmt: skip
            args = {
                n: ints[n] if n in ints else pointer if n.endswith("_ptr") or n[:4] in ("tab_", "idx_") else 1.5
                for n in fn.arg_names
                if not n.isupper()
            }
            params = fn.params if not specialise_all else [_specialised(p) for p in fn.params]
            binder = create_function_from_signature(fn.signature, params, CUDABackend)
            constexprs = {"ROWS": rows, "BLOCK": block, "WORDS": len(group) * h * w * 3 % 8 == 0}
            _, specialisation, _ = binder(**args, **{n: 0 for n in fn.arg_names if n.isupper()})
            seen.add((fn.__name__, tuple(map(str, specialisation)), tuple(constexprs.items())))
    return len(seen)


def _specialised(param: Any) -> Any:
    """A copy of a kernel parameter as Triton's default would take it: specialised."""
    copy = type(param).__new__(type(param))
    copy.__dict__.update(param.__dict__, do_not_specialize=False)
    return copy


def compile_seconds(repeats: int = 3) -> float:
    """One bilinear rows_kernel compiled for sm_90 from scratch (Triton's cache bypassed: it compiles here)."""
    sass(k.BILINEAR, *_CUDA_TILES["reuse_rows"][:2], 1, k.PAD_PIXEL, True)  # a first compile loads the toolchain
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sass(k.BILINEAR, *_CUDA_TILES["reuse_rows"][:2], 1, k.PAD_PIXEL, True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000, help="synthetic sizes (default 5000)")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("PREPROCGATE_DATA") or ROOT.parent / "shared" / "data")
    annotations = data / "coco128" / "annotations" / "instances_val2017.json"
    sets = {}
    if annotations.is_file():
        images = sorted(json.loads(annotations.read_text())["images"], key=lambda r: r["id"])
        sets["coco128 (real photos)"] = [(r["height"], r["width"]) for r in images]
    else:
        print(f"no {annotations}: the real photos' row is left out", file=sys.stderr)
    rng = np.random.default_rng(0)
    sets[f"{args.images} sizes 300–700"] = [(int(h), int(w)) for h, w in rng.integers(300, 701, (args.images, 2))]
    out: dict[str, Any] = {"triton": sys.modules["triton"].__version__, "compile_s_each": None, "kernels": []}
    for gate, spec in GATES.items():
        config = InputSpec.model_validate(spec)
        for name, shapes in sets.items():
            out["kernels"].append(
                {
                    "gate": gate,
                    "set": name,
                    "images": len(shapes),
                    "specialised_on_image_sizes": keys(shapes, config, specialise_all=True),
                    "as_shipped": keys(shapes, config, specialise_all=False),
                }
            )
    out["compile_s_each"] = round(compile_seconds(), 2)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
