"""The compiled (CUDA) kernel builds for every pad mode and interpolation on this GPU-less machine, and padding adds
no arithmetic.

The interpreter runs the kernel's Python; the compiler accepts less (older Triton versions reject tuples and
starred arguments, for instance). Compiling to PTX for sm_90 needs no GPU, so CI catches what the interpreter
would let through, and the PTX shows the CUDA fast path unchanged: the same FMAs, loads and stores in every mode.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPILE = """
import json
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from preprocgate.variants import triton_kernel as k

fn = k.preprocess_kernel
names = fn.arg_names
ints = {"in_h", "in_w", "out_h", "out_w", "top", "left", "content_h", "content_w", "o_taps", "i_taps"}


def signature(weights):
    return {
        n: "*u8" if n == "src_ptr" else "*fp32" if n == "dst_ptr" else "*i64" if n == "images_ptr"
        else "i32" if n in ints
        else weights if n.startswith("tab_") else "*i32" if n.startswith("idx_")
        else "constexpr" if n.isupper() else "fp32"
        for n in names
    }


def ptx(interp, pad, acc=0, v_first=False, unroll=(2, 3), fn=fn, words=False, split=False, clamp=True,
        ragged=False):
    recip = interp != k.SEPARABLE_FIXED  # Pillow's reference divides by pixel_scale (numpy), as the launch does
    const = {"SWAP": True, "PAD": pad, "TAPS": 0, "INDEX_FMA": True, "RECIP_SCALE": recip, "DIV_FMA": True,
             "INTERP": interp, "ACC": acc, "V_FIRST": v_first, "O_TAPS": unroll[0], "I_TAPS": unroll[1], "ROWS": 2,
             "BLOCK": 128, "WORDS": words, "SPLIT": split, "CLAMP": clamp, "RAGGED": ragged}
    weights = "*i32" if interp == k.SEPARABLE_FIXED else "*fp32"
    source = ASTSource(fn=fn, signature=signature(weights), constexprs={(names.index(c),): v for c, v in const.items()})
    options = {"num_warps": 2, "enable_fp_fusion": False}
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


OPS = ("fma.rn.f32", "mul.rn.f32", "mul.f32", "add.f32", "sub.f32", "div.rn.f32", "div.full.f32", "div.approx.f32",
       "rcp.", "ld.global", "st.global", "selp")
counts = {}
for pad in (k.PAD_NONE, k.PAD_PIXEL, k.PAD_ZERO):
    code = ptx(k.BILINEAR, pad)
    counts[pad] = {op: code.count(op) for op in OPS}
# every other interpolation, as the CUDA launch configures it: FMA accumulation, Pillow in both pass orders
modes = [(k.NEAREST, 1, False), (k.NEAREST_EXACT, 1, False), (k.SEPARABLE_FLOAT, 1, False),
         (k.SEPARABLE_FIXED, 0, False), (k.SEPARABLE_FIXED, 0, True)]
counts["modes"] = [{op: ptx(i, k.PAD_PIXEL, a, v).count(op) for op in OPS} for i, a, v in modes]
# strong downscales: loops bounded at run time (0 = not unrolled), both pass orders
loops = [(k.SEPARABLE_FLOAT, 1, False), (k.SEPARABLE_FIXED, 0, True)]
counts["loops"] = [{op: ptx(i, k.PAD_PIXEL, a, v, (0, 0)).count(op) for op in OPS} for i, a, v in loops]
# bilinear with reuse_rows: its own kernel, same arguments
counts["rows"] = [{op: ptx(k.BILINEAR, p, fn=k.rows_kernel).count(op) for op in OPS} for p in (0, 1)]
# and for the separable modes: two vertical taps, the horizontal ones unrolled (3) or looping (0)
separable_rows = [(k.SEPARABLE_FLOAT, 1, (2, 3)), (k.SEPARABLE_FIXED, 0, (2, 0))]
counts["rows_separable"] = [
    {op: ptx(i, k.PAD_PIXEL, a, False, u, fn=k.rows_kernel).count(op) for op in OPS} for i, a, u in separable_rows
]
# the source read as 64-bit words: bilinear on both kernels, antialias's 3-tap row passes
WORDS = ("ld.global.b64", "ld.global.b32", "ld.global.b8")
counts["words"] = [
    {op: ptx(i, k.PAD_PIXEL, 1, words=w, fn=f).count(op) for op in WORDS}
    for i, f in ((k.BILINEAR, fn), (k.BILINEAR, k.rows_kernel), (k.SEPARABLE_FLOAT, fn)) for w in (False, True)
]
# bilinear's pixel pairs from 32-bit words (WORDS 2) on both kernels
counts["words32"] = [
    {op: ptx(k.BILINEAR, k.PAD_PIXEL, 1, words=2, fn=f).count(op) for op in WORDS} for f in (fn, k.rows_kernel)
]
# Pillow's and nearest's normalisation through the split reciprocal (SPLIT), in rows_kernel and the tiled kernel
counts["split"] = [
    {op: ptx(i, k.PAD_PIXEL, 0, False, (2, 3), fn=f, split=s).count(op) for op in OPS}
    for i, f in ((k.SEPARABLE_FIXED, k.rows_kernel), (k.NEAREST, fn)) for s in (False, True)
]
# Pillow's 3-tap rows in rows_kernel, read as words, with and without the clamp to 0…255
CLAMPS = ("min.s32", "max.s32", "ld.global.b32")
counts["pillow_clamp"] = [
    {op: ptx(k.SEPARABLE_FIXED, k.PAD_NONE, 0, False, (2, 3), fn=k.rows_kernel, words=True, clamp=c).count(op)
     for op in CLAMPS}
    for c in (True, False)
]
# a ragged launch (each image's values from its table row), bilinear read as words, on both kernels
counts["ragged"] = [
    {op: ptx(k.BILINEAR, k.PAD_PIXEL, 1, words=True, fn=f, ragged=r).count(op) for op in OPS}
    for f in (fn, k.rows_kernel) for r in (False, True)
]
print(json.dumps(counts))
"""


def compiled_counts(script: str) -> dict:
    """The JSON a compile script prints, run in a process of its own without the interpreter (Triton reads
    ``TRITON_INTERPRET`` at import, and tests/conftest.py sets it for this one)."""
    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_kernel_compiles_for_sm90_and_padding_adds_no_arithmetic() -> None:
    counts = compiled_counts(COMPILE)
    none, pixel, zero = counts["0"], counts["1"], counts["2"]
    nearest, nearest_exact, antialias, pillow, pillow_v = counts["modes"]
    antialias_loop, pillow_v_loop = counts["loops"]
    # the run-time loops hold one copy of the tap body (3 loads), the unrolled 2 × 3 taps six copies
    assert 0 < antialias_loop["ld.global"] < antialias["ld.global"]
    assert 0 < pillow_v_loop["ld.global"] < pillow_v["ld.global"]
    # nearest copies a pixel: no interpolation FMA beyond the normalisation's; the separable modes loop over taps
    assert nearest["fma.rn.f32"] < pixel["fma.rn.f32"] and nearest_exact["fma.rn.f32"] < pixel["fma.rn.f32"]
    assert antialias["fma.rn.f32"] > nearest["fma.rn.f32"]
    # Pillow's uint8 result over pixel_scale: a true division, where torch's CUDA chain multiplies by 1/scale
    assert pillow["div.rn.f32"] > 0 and pillow_v["div.rn.f32"] > 0 and antialias["div.rn.f32"] == 0
    for op in none:
        if op != "selp":
            assert pixel[op] == zero[op] == none[op], (op, counts)
    # the reciprocal-and-FMA division and x·(1/scale): no float division instruction at all
    assert none["fma.rn.f32"] > 0 and none["div.rn.f32"] == none["div.full.f32"] == none["div.approx.f32"] == 0
    assert pixel["selp"] > none["selp"] and zero["selp"] > none["selp"]  # the pad is a select, nothing more
    # reuse_rows' kernel: two call sites of a source row's horizontal pass (3 channels × 2 taps, for each of a
    # thread's 2 columns: 128 columns, 2 warps), and the same arithmetic with a pad as without
    rows_none, rows_pixel = counts["rows"]
    assert rows_none["ld.global"] == rows_pixel["ld.global"] == 2 * 3 * 2 * 2
    assert all(rows_none[op] == rows_pixel[op] for op in rows_none if op != "selp")
    antialias_rows, pillow_loop_rows = counts["rows_separable"]
    assert antialias_rows["ld.global"] > pillow_loop_rows["ld.global"] > 0  # 2 × 3 unrolled taps vs a loop's
    assert pillow_loop_rows["div.rn.f32"] > 0 and antialias_rows["div.rn.f32"] == 0
    # words: two 64-bit loads per source row instead of a byte load per tap and channel (6 for bilinear), three
    # 32-bit ones for a 3-tap row's 9 bytes (beside the tables' 32-bit loads); bilinear's tiled thread computes 4
    # pixels of 2 rows, rows_kernel 2 pixels of 2 rows
    bytes_tiled, words_tiled, bytes_rows, words_rows, bytes_aa, words_aa = counts["words"]
    assert bytes_tiled == {"ld.global.b64": 0, "ld.global.b32": 0, "ld.global.b8": 4 * 12}
    assert words_tiled == {"ld.global.b64": 4 * 2 * 2, "ld.global.b32": 0, "ld.global.b8": 0}
    assert words_rows == {"ld.global.b64": 2 * 2 * 2, "ld.global.b32": 0, "ld.global.b8": 0}
    assert bytes_rows["ld.global.b8"] == 2 * 12 and bytes_aa["ld.global.b8"] == 4 * 18
    assert words_aa == {"ld.global.b64": 0, "ld.global.b32": bytes_aa["ld.global.b32"] + 4 * 2 * 3, "ld.global.b8": 0}
    # WORDS 2: three 32-bit loads per source row's pixel pair, no 64-bit or byte load
    for got, pixels in zip(counts["words32"], (4 * 2, 2 * 2), strict=True):
        assert got == {"ld.global.b64": 0, "ld.global.b32": pixels * 3, "ld.global.b8": 0}
    # no clamp: 3 channels' min and max fewer at each of rows_kernel's two row passes and its vertical pass, for
    # each of a thread's 2 columns; the same loads
    clamped, unclamped = counts["pillow_clamp"]
    for op in ("min.s32", "max.s32"):
        assert clamped[op] - unclamped[op] == 3 * 3 * 2
    assert clamped["ld.global.b32"] == unclamped["ld.global.b32"]
    # SPLIT: a product and an FMA per quotient, and one of each per divisor for its reciprocal's remainder (computed
    # once per program). Pillow in rows_kernel, 6 values a thread (3 channels × 2 columns), 4 divisors (pixel_scale,
    # 3 stds): no division instruction left, where the division by pixel_scale was div_rn
    divided, split = counts["split"][:2]
    assert divided["div.rn.f32"] == 6 and split["div.rn.f32"] == split["div.full.f32"] == 0
    assert split["fma.rn.f32"] == split["mul.rn.f32"] == 2 * 6 + 4
    # nearest in the tiled kernel, 12 values a thread, the scale a product either way (RECIP_SCALE): the division by
    # std loses one FMA a value (the correction's second), 3 divisors' remainders added
    corrected, split = counts["split"][2:]
    assert corrected["div.rn.f32"] == split["div.rn.f32"] == 0
    assert corrected["fma.rn.f32"] - split["fma.rn.f32"] == 12 - 3
    assert split["mul.rn.f32"] - corrected["mul.rn.f32"] == 3
    # RAGGED: the same arithmetic and stores; only the table's loads (once per program) added
    for plain, ragged in zip(counts["ragged"][::2], counts["ragged"][1::2], strict=True):
        assert ragged["ld.global"] > plain["ld.global"], counts["ragged"]
        assert all(ragged[op] == plain[op] for op in plain if op not in ("ld.global", "selp")), counts["ragged"]


RLE_COMPILE = """
import json
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from preprocgate.functional import rle_kernel as k

kernels = {
    "run_starts": (k.run_starts_kernel, {"mask_ptr": "*u8", "out_ptr": "*u8", "h": "i32", "w": "i32"},
                   {"BY": 64, "BX": 64}),
    "values": (k.values_kernel, {"counts_ptr": "*i64", "raw_ptr": "*u8", "values_ptr": "*i32", "widths_ptr": "*i32",
                                 "escaped_widths_ptr": "*i32", "n": "i64"}, {"BLOCK": 1024}),
    "chars": (k.chars_kernel, {"values_ptr": "*i32", "widths_ptr": "*i32", "ends_ptr": "*i64",
                               "escaped_widths_ptr": "*i32", "escaped_ends_ptr": "*i64", "out_ptr": "*u8",
                               "escaped_at": "i64", "n": "i64"}, {"ESCAPE": True, "BLOCK": 1024}),
}
blend = {"logits_ptr": "*fp32", "in_h": "i32", "in_w": "i32", "h": "i32", "w": "i32", "scale_h": "fp32",
         "scale_w": "fp32"}
kernels["upsampled_run_starts"] = (k.upsampled_run_starts_kernel, {**blend, "out_ptr": "*u8", "lead_ptr": "*u8"},
                                   {"BY": 64, "BX": 64})
kernels["upsampled_values"] = (k.upsampled_values_kernel, {**blend, "out_ptr": "*fp32"}, {"BY": 64, "BX": 64})
counts = {}
for name, (fn, types, const) in kernels.items():
    names = fn.arg_names
    signature = {n: types.get(n, "constexpr") for n in names}
    source = ASTSource(fn=fn, signature=signature, constexprs={(names.index(c),): v for c, v in const.items()})
    ptx = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4}).asm["ptx"]
    counts[name] = {op: ptx.count(op) for op in ("st.global", "ld.global", "fma.rn.f32", "div.")}
print(json.dumps(counts))
"""


def test_rle_kernels_compile_for_sm90() -> None:
    """The RLE's kernels build for sm_90 (the interpreter runs them in CI; tests/test_rle.py): the run-start kernel
    reads the tile and the row above it and stores the flags; the value kernel reads a count and the one two
    before and stores three columns; the character kernel stores each of seven groups bare, escaped and doubled;
    the kernels drawing masks from logits blend with exactly torch's CUDA FMAs."""
    counts = compiled_counts(RLE_COMPILE)
    assert counts["run_starts"]["ld.global"] >= 2 and counts["run_starts"]["st.global"] >= 1
    assert counts["values"]["ld.global"] >= 3 and counts["values"]["st.global"] >= 3
    assert counts["chars"]["st.global"] > 0 and counts["chars"]["st.global"] % 21 == 0  # 21 a thread's value
    # masks drawn from logits: torch's CUDA arithmetic is 3 FMAs a blended value plus one for each source index
    # (the compiler computes those once per row and per column of a thread's values), no division; 32 values a
    # thread (64 × 64 on 4 warps); the run starts blend each pixel once (the pixel before it taken from the
    # tile), as the value kernel does: its loads and FMAs, give or take the source index of the wrapped row
    drawn, values = counts["upsampled_run_starts"], counts["upsampled_values"]
    assert 32 * 3 < values["fma.rn.f32"] <= 32 * 5, values
    assert 0 <= drawn["fma.rn.f32"] - values["fma.rn.f32"] <= 2 and drawn["ld.global"] == values["ld.global"], drawn
    assert drawn["div."] == values["div."] == 0 and drawn["st.global"] > 0 and values["ld.global"] >= 4
