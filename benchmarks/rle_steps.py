"""Each step of the GPU RLE (``preprocgate/functional/rle.py``) on batches of three kinds of masks: ``noise``,
the worst case (about half the pixels start a run), and ``blobs``, what a segmentation head gives (random
80×60 logits upsampled bilinearly to 640×480 and thresholded at 0: blobs about 16 pixels across, about 2 million
runs an image of 100 masks), and ``smooth``, the same from 16×12 logits (about 0.3 million runs an image, near
what RF-DETR seg-nano's random-weight masks give: about 4 MB of strings a batch of 8). Prints JSON; run it with
an older package first on ``PYTHONPATH`` to time that one's steps (those it has).

    PYTHONPATH=. python benchmarks/rle_steps.py [--device cuda] [--images 8] [--masks 100] [--repeats 5]

Why: on the H200 the RLE took RF-DETR seg-nano's dump from 516 to 322 img/s (benchmarks/RESULTS.md); its steps
are a handful of torch kernels over millions of runs, so their memory traffic decides. Median seconds per step
and per image; on CUDA each step is synchronised before its clock stops.
"""

from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Callable

import torch

from benchmarks.rfdetr_gpu import timed
from preprocgate.functional import rle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--masks", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    generator = torch.Generator(device=device).manual_seed(0)
    kinds = {
        "noise": lambda: torch.rand((args.masks, 480, 640), generator=generator, device=device) > 0.5,
        "blobs": lambda: blobs(args.masks, generator, device),
        "smooth": lambda: blobs(args.masks, generator, device, (12, 16)),
    }
    out: dict = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "images": args.images,
        "masks_per_image": args.masks,
    }
    for kind, make in kinds.items():
        batches = [make() for _ in range(args.images)]
        counts, per_mask = runs(batches)
        chars, lengths = rle.compress(counts, per_mask)
        steps = {
            "flatten (the torch path's transposed copy)": lambda b=batches: rle.flatten(b),
            "counts from the masks (torch path)": lambda b=batches: runs(b, kernel=False),
            "counts from the masks (the default: the kernels on CUDA)": lambda b=batches: runs(b),
            "compress (torch path)": lambda c=counts, p=per_mask: rle.compress(c, p),
            "escape (torch path)": lambda c=chars, n=lengths: rle.escape(c, n),
            "encode_many (all, to host strings)": lambda b=batches: rle.encode_many(b),
            "encode_many_json (all, strings and their JSON text)": lambda b=batches: rle.encode_many_json(b),
        }
        if hasattr(rle, "strings"):  # absent from packages before it (--old)
            steps["strings, escaped (torch path: compress, escape, one buffer)"] = lambda c=counts, p=per_mask: (
                rle.strings(c, p, escaped=True, kernel=False)
            )
            steps["strings, escaped (the default: the kernels on CUDA)"] = lambda c=counts, p=per_mask: rle.strings(
                c, p, escaped=True
            )
        seconds = {name: timed(fn, device, 1, args.repeats) for name, fn in steps.items()}
        out[kind] = {
            "runs_per_image": len(counts) // args.images,
            "ms_per_image": {name: round(s / args.images * 1e3, 3) for name, s in seconds.items()},
        }
    if hasattr(rle, "upsampled_agrees"):  # absent from packages before it (--old)
        out["rfdetr_logits"] = logits_steps(args, generator, device)
    print(json.dumps(out, indent=1))
    return 0


def logits_steps(args: argparse.Namespace, generator: torch.Generator, device: torch.device) -> dict:
    """RF-DETR seg-nano's masks: 78×78 logits a mask, drawn at 480×640 then encoded (the postprocess's resize and
    threshold, then the RLE reading the bool masks), against the RLE drawing them as it reads them
    (``UpsampledMasks``): what the dump's GPU does a batch either way, up to the run lengths."""
    from preprocgate.functional.masks import UpsampledMasks

    logits = [torch.randn((args.masks, 78, 78), generator=generator, device=device) for _ in range(args.images)]
    lazy = [UpsampledMasks(m, 480, 640) for m in logits]
    steps = {
        "drawn (F.interpolate, > 0)": lambda: [m.drawn() for m in lazy],
        "drawn, then counts": lambda: runs([m.drawn() for m in lazy]),
        "counts, drawn as read": lambda: runs(lazy),
        "encode_many_json, drawn first": lambda: rle.encode_many_json([m.drawn() for m in lazy]),
        "encode_many_json, drawn as read": lambda: rle.encode_many_json(lazy),
    }
    seconds = {name: timed(fn, device, 1, args.repeats) for name, fn in steps.items()}
    same = all(torch.equal(a, b) for a, b in zip(runs(lazy), runs([m.drawn() for m in lazy]), strict=True))
    return {
        "agrees": rle.upsampled_agrees(device) if device.type == "cuda" else None,
        "same_counts": same,
        "ms_per_image": {name: round(s / args.images * 1e3, 3) for name, s in seconds.items()},
        "encode_many_json, drawn as read: GPU us per image by kernel": (
            kernel_times(lambda: rle.encode_many_json(lazy), args.images) if device.type == "cuda" else None
        ),
        "encode_many_json, drawn as read: host ms per image by function": host_times(
            lambda: rle.encode_many_json(lazy), args.images, args.repeats
        ),
    }


def host_times(fn: Callable[[], object], images: int, repeats: int, top: int = 15) -> dict[str, float]:
    """Each function's own time (cProfile's tottime) over ``repeats`` calls, largest first, per image: where the
    host's part of a call goes (its waits for the GPU show as the synchronising calls': ``tolist``, ``item``,
    ``copy_``), beside the kernels' GPU time above."""
    import cProfile
    import pstats

    fn()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, primitive, tottime, cumtime, callers)
    ranked = sorted(stats.items(), key=lambda item: -item[1][2])
    table = {
        f"{name} ({file.rsplit('/', 1)[-1]}:{line})": round(tottime / repeats / images * 1e3, 4)
        for (file, line, name), (_, _, tottime, _, _) in ranked[:top]
    }
    table["(all)"] = round(sum(v[2] for v in stats.values()) / repeats / images * 1e3, 4)
    return table


def kernel_times(fn: Callable[[], object], images: int, top: int = 12) -> dict[str, float]:
    """Each CUDA kernel's GPU time in one call (after a warm-up call), largest first: which of the RLE's steps
    holds the device, where the step timings above include their launches and host synchronisations."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    totals: dict[str, float] = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            name = event.name[:90]
            totals[name] = totals.get(name, 0.0) + event.time_range.elapsed_us()
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    table = {name: round(us / images, 2) for name, us in ranked[:top]}
    table["(all kernels and copies)"] = round(sum(totals.values()) / images, 2)
    return table


def runs(batches: list[torch.Tensor], kernel: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``run_lengths`` of the masks, also in packages whose ``run_lengths`` took ``run_starts``' flags (--old)."""
    if "change" in inspect.signature(rle.run_lengths).parameters:
        return rle.run_lengths(*rle.run_starts(batches, kernel=kernel))
    return rle.run_lengths(batches, kernel=kernel)


def blobs(
    masks: int, generator: torch.Generator, device: torch.device, grid: tuple[int, int] = (60, 80)
) -> torch.Tensor:
    logits = torch.randn((masks, 1, *grid), generator=generator, device=device)
    return torch.nn.functional.interpolate(logits, size=(480, 640), mode="bilinear")[:, 0] > 0


if __name__ == "__main__":
    raise SystemExit(main())
