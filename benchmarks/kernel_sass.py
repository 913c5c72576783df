"""Issued instructions per output pixel of the fused kernel, per interpolation, from its sm_90 machine code. Needs no
GPU: Triton compiles for sm_90 here and its bundled ``nvdisasm`` lists the SASS. Prints JSON.

    PYTHONPATH=. python benchmarks/kernel_sass.py [--rows 1] [--block 128] [--warps 1] [--kernel rows]

Why: on the H200 the kernel is bound by instruction issue, not memory (Nsight Compute on 64 × 480×640 → 512²: SM
throughput 82%, DRAM 40%; benchmarks/RESULTS.md), so the instruction count of the straight-line code divided by the
pixels a thread computes predicts its speed, and a change can be judged before it reaches a GPU. Each mode is
compiled for stretch and for letterbox (pad pixels normalised like samples); the separable modes with 2 × 3
unrolled taps (480×640 → 512²). Static counts: loops run at run time count once, and a letterbox's branch
past the resampling for tiles wholly in the pad counts as if every tile resampled. ``--kernel rows``: rows_kernel
(the CUDA default for bilinear and the separable modes' stretch), whose loop over a program's rows counts once:
its figures are per output row of a thread's pixels, with both of its row-pass call sites counted (a row runs
about one of them), an upper bound to compare revisions by. ``alu_per_pixel``: the instructions issued to the
integer and logic pipe (shifts, byte permutes, min/max, compares, selects), which runs at half the rate of the
float pipe on sm_90.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import re
import subprocess
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from preprocgate.variants import triton_kernel as k

INTS = {"in_h", "in_w", "out_h", "out_w", "top", "left", "content_h", "content_w", "o_taps", "i_taps"}
# arguments the launcher specialises as multiples of 16 for 480×640 → 512² (and aligned pointers)
DIVISIBLE = ("src_ptr", "dst_ptr", "in_h", "in_w", "out_h", "out_w", "content_h", "content_w")
MODES = {
    "bilinear": k.BILINEAR,
    "nearest": k.NEAREST,
    "bilinear_antialias": k.SEPARABLE_FLOAT,
    "pillow_bilinear": k.SEPARABLE_FIXED,
}
SKIPPED = {"NOP", "BRA", "EXIT"}
GEOMETRIES = {"stretch": k.PAD_NONE, "letterbox": k.PAD_PIXEL}


ALU = {"SHF", "LOP3", "VIMNMX", "IADD3", "ISETP", "SEL", "PRMT", "LEA", "PLOP3", "VIADDMNMX", "I2FP", "FSEL", "FSETP"}


def sass(
    interp: int, rows: int, block: int, warps: int, pad: int = k.PAD_NONE, words: bool = False, kernel: str = "tiled"
) -> str:
    fn = k.rows_kernel if kernel == "rows" else k.preprocess_kernel
    names = fn.arg_names
    fixed = interp == k.SEPARABLE_FIXED
    integer = interp in (k.NEAREST, k.SEPARABLE_FIXED)  # samples 0…255: the split reciprocal, as launched on CUDA

    def kind(name: str) -> str:
        if name == "src_ptr":
            return "*u8"
        if name == "dst_ptr":
            return "*fp32"
        if name in INTS:
            return "i32"
        if name.startswith("tab_"):
            return "*i32" if fixed else "*fp32"
        if name.startswith("idx_"):
            return "*i32"
        return "constexpr" if name.isupper() else "fp32"

    const = {
        "SWAP": True, "PAD": pad, "TAPS": 0, "INDEX_FMA": True, "RECIP_SCALE": not fixed, "DIV_FMA": True,
        "INTERP": interp, "ACC": k.ACC_ROUNDED if fixed else k.ACC_FMA, "V_FIRST": False, "O_TAPS": 2, "I_TAPS": 3,
        "ROWS": rows, "BLOCK": block, "WORDS": words and interp != k.NEAREST, "SPLIT": integer,
        "CLAMP": not fixed,  # Pillow's bilinear tables are clamp-free (filters.pillow_clamp_free), as launched
    }  # fmt: skip
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in DIVISIBLE}
    source = ASTSource(
        fn=fn,
        signature={n: kind(n) for n in names},
        constexprs={(names.index(c),): v for c, v in const.items() if c in names},  # an older revision's kernel too
        attrs=attrs,
    )
    compiled = triton.compile(
        source, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps, "enable_fp_fusion": False}
    )
    nvdisasm = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "nvdisasm")
    with tempfile.TemporaryDirectory() as folder:
        cubin = os.path.join(folder, "kernel.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        return subprocess.run([nvdisasm, "-c", cubin], capture_output=True, text=True, check=True).stdout


def counts(code: str) -> collections.Counter:
    ops = re.finditer(r"^\s+/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_]+)", code, re.MULTILINE)
    return collections.Counter(m.group(1) for m in ops if m.group(1) not in SKIPPED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--warps", type=int, default=1)
    parser.add_argument("--bytes", action="store_true", help="one load per source byte, not aligned 64-bit words")
    parser.add_argument("--kernel", choices=("tiled", "rows"), default="tiled")
    args = parser.parse_args(argv)
    rows_of_thread = 1 if args.kernel == "rows" else args.rows  # rows_kernel's loop over its rows counts once
    pixels = rows_of_thread * args.block // (32 * args.warps)  # per thread
    out = {
        "triton": triton.__version__,
        "rows": args.rows,
        "block": args.block,
        "warps": args.warps,
        "words": not args.bytes,
        "kernel": args.kernel,
        "modes": {},
    }
    for (name, interp), (geometry, pad) in itertools.product(MODES.items(), GEOMETRIES.items()):
        if args.kernel == "rows" and interp == k.NEAREST:
            continue  # nearest never runs in rows_kernel
        ops = counts(sass(interp, args.rows, args.block, args.warps, pad, not args.bytes, args.kernel))
        total = sum(ops.values())
        out["modes"][f"{name} {geometry}"] = {
            "instructions_per_pixel": round(total / pixels, 1),
            "alu_per_pixel": round(sum(n for op, n in ops.items() if op in ALU) / pixels, 1),
            "source_loads_per_pixel": round(ops["LDG"] / pixels, 1),
            "most_common": dict(ops.most_common(10)),
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
