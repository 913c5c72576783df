"""The fused Triton variant, and the choice of arithmetic that makes it bit-exact with torch on each device."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any, Literal, get_args

import numpy as np
import torch

from preprocgate.errors import RunError
from preprocgate.geometry import Geometry, stretch
from preprocgate.spec import INTERPOLATIONS, InputSpec
from preprocgate.triton_modules import import_kernels
from preprocgate.variants import filters
from preprocgate.variants.base import Preprocessor, Size
from preprocgate.variants.staging import Staging

Taps = Literal["generic", "channels_last", "unfused", "channels_last_unfused"]
Arithmetic = Literal["auto", Taps]
Division = Literal["auto", "div_rn", "reciprocal_fma"]
# The kernel's TAPS constexpr. generic: torch's NCHW kernels (CUDA; CPU multi-threaded), fma(w0,p00,w1*p01) per
# row, then rows. channels_last: torch's CPU channels-last kernel, four pre-multiplied weights, one FMA chain.
# unfused: the generic order with every product and sum rounded separately (builds without FMA).
# channels_last_unfused: the channels-last order with every product and sum rounded (x86 builds without FMA).
_TAPS = {"generic": 0, "channels_last": 1, "unfused": 2, "channels_last_unfused": 3}
_UNFUSED = ("unfused", "channels_last_unfused")
# CUDA launch defaults (output rows × columns per program, warps), the fastest of the H200 sweeps on every batched
# shape (benchmarks/RESULTS.md, 2026-12-05): bilinear's tiled kernel; the row-reusing kernel, chosen for bilinear
# down to _REUSE_ROWS_FROM (strong downscales need more than one horizontal pass per output row) and for the
# separable modes wherever it computes them (H100, 2026-12-05 afternoon: 7–8% faster than their tiled default);
# nearest's tiled kernel, which prefers 256 columns; the separable modes' tiled kernel (letterboxes that shrink the
# height), fastest at 1 × 128 with one warp on the H100 and the H200 (benchmarks/RESULTS.md, 2026-12-06 evening)
_CUDA_TILES = {"bilinear": (1, 128, 1), "reuse_rows": (8, 128, 1), "separable": (1, 128, 1), "other": (1, 256, 2)}
# on CUDA, measured faster with words: bilinear and antialias on both kernels (H100), and Pillow's since its 3-tap
# rows are read as 32-bit words without a clamp (H100: its tiled letterbox 140.9 → 112.3 µs; before that, with
# 64-bit words, 19% slower)
_WORDS_BY_DEFAULT = ("bilinear", "bilinear_antialias", "pillow_bilinear")
# bilinear on CUDA takes rows_kernel down to this ratio of output to source rows. With 64-bit words it won down
# to 480 → 312 rows on the H200; with bilinear's pixel pairs read as 32-bit words (word_bits 32, the default) the
# tiled kernel is 9% faster and wins at 480 → 384 and 480 → 312 rows on the H100 (95.7 against 102.5 µs, 101.2
# against 112.0), rows_kernel still at 480 → 512 and 224 → 224 (benchmarks/RESULTS.md, 2026-12-06 late afternoon)
_REUSE_ROWS_FROM = 0.9
_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
_FUSING_CPU_CAPABILITIES = {"AVX2", "AVX512"}


@dataclass(frozen=True)
class KernelArithmetic:
    """How the kernel rounds; one of these reproduces each of torch's bilinear kernels on a device."""

    taps: Taps
    index_fma: bool
    reciprocal_scale: bool

    def __str__(self) -> str:
        div = "x·(1/scale)" if self.reciprocal_scale else "x/scale"
        return f"taps={self.taps}, index={'fma' if self.index_fma else 'mul+add'}, {div}"


def torch_reference_arithmetic(device: torch.device, size: Size, arithmetic: Arithmetic = "auto") -> KernelArithmetic:
    """The arithmetic torch's own F.interpolate → / pixel_scale → normalize chain uses on ``device`` when it
    interpolates to ``size`` (the content size: torch resizes the content, then pastes it on the padded canvas).

    CUDA: NCHW kernel with FMAs contracted by nvcc, and ``x / pixel_scale`` done as a multiply by the fp32
    reciprocal. CPU: a true division by pixel_scale, and one of two kernels: the channels-last one when torch runs
    on one thread (3 channels) or the output is small (H + W ≤ 128), else the generic one. x86 builds contract
    FMAs in their AVX2/AVX512 code paths; their DEFAULT path rounds every operation (verified), and unknown ISAs
    are assumed to do the same.
    """
    if device.type == "cuda":
        return KernelArithmetic("generic" if arithmetic == "auto" else arithmetic, True, True)
    fused = torch.backends.cpu.get_cpu_capability() in _FUSING_CPU_CAPABILITIES
    if arithmetic == "auto":
        channels_last = torch.get_num_threads() == 1 or size[0] + size[1] <= 128
        if fused:
            arithmetic = "channels_last" if channels_last else "generic"
        else:
            arithmetic = "channels_last_unfused" if channels_last else "unfused"
    return KernelArithmetic(arithmetic, fused or arithmetic not in _UNFUSED, False)


def load_kernel(device: torch.device) -> ModuleType:
    """Import the kernel module, in Triton's interpreter when running on the CPU."""
    triton_kernel = import_kernels("preprocgate.variants.triton_kernel", device)
    if device.type != "cuda":
        from preprocgate.variants.interpreter import ensure_exact_fma

        ensure_exact_fma()  # Triton before 3.9 rounds the interpreter's FMAs twice
    return triton_kernel


# input.interpolation → the name of the kernel's INTERP value (triton_kernel.py)
_INTERP = {
    "bilinear": "BILINEAR",
    "nearest": "NEAREST",
    "nearest-exact": "NEAREST_EXACT",
    "bilinear_antialias": "SEPARABLE_FLOAT",
    "pillow_bilinear": "SEPARABLE_FIXED",
}


class TritonFused(Preprocessor):
    """One fused Triton kernel: uint8 HWC → resize (content) or pad → target order → / scale → (x − mean)/std."""

    version = "2"
    interpolations = INTERPOLATIONS
    uploads = True

    def __init__(
        self,
        config: InputSpec,
        device: torch.device,
        arithmetic: Arithmetic = "auto",
        block: int | None = None,
        rows: int | None = None,
        num_warps: int | None = None,
        division: Division = "auto",
        reuse_rows: bool | None = None,
        words: bool | None = None,
        word_bits: int = 32,
    ) -> None:
        """``block`` × ``rows``: output columns × rows per program (powers of two; default: tuned per device);
        ``num_warps``: warps per program on CUDA. ``reuse_rows``: a program runs ``rows`` output rows one after
        another, keeping each source row's horizontal pass for the next row (``rows_kernel``), where the resize is a
        horizontal pass then a vertical one over at most two rows: bilinear in CUDA's tap order (and the CPU's
        generic and unfused ones), and the separable modes horizontal-first with one or two vertical taps;
        otherwise it is ignored. None (default): on CUDA for bilinear whose output keeps at least 9/10 of the
        source's rows and for the separable modes wherever rows_kernel computes them, where it measured faster;
        never in the interpreter. ``words``: bilinear, and the separable modes' row passes of up to 3 taps, read the
        source as aligned 64-bit words (3-tap rows: 32-bit ones) and pick the bytes out (a third of the load
        instructions: ``benchmarks/kernel_sass.py``), where the source tensor starts on an 8-byte boundary and its
        size is a multiple of 8. None (default): on CUDA for bilinear, bilinear_antialias and pillow_bilinear
        (faster on the H100 and the H200 in rows_kernel; tiled, measured faster for the separable modes);
        never in the interpreter (benchmarks/RESULTS.md). ``word_bits``: 32 (default): bilinear's pixel pairs read as
        three 32-bit words too (one funnel shift per value, 32-bit offsets: the form that shortened Pillow's code
        by a quarter; on the H100 the tiled kernel 9% faster, rows_kernel the same or faster but at 480 → 312
        rows, +1%), or 64: two 64-bit words (benchmarks/kernel_cuda.py)."""
        super().__init__(config, device)
        if arithmetic not in ("auto", *_TAPS):
            raise ValueError(f"arithmetic must be one of auto, {', '.join(_TAPS)}")
        if division not in get_args(Division):
            raise ValueError(f"division must be one of {', '.join(get_args(Division))}")
        if word_bits not in (32, 64):
            raise ValueError("word_bits must be 32 or 64")
        self.arithmetic: Arithmetic = arithmetic
        # auto: the reciprocal-and-FMA correction where it is compiled (faster than a division there); div_rn in
        # the interpreter, where numpy divides in one operation (both equal IEEE division: docs/arithmetic.md)
        self.division = ("reciprocal_fma" if device.type == "cuda" else "div_rn") if division == "auto" else division
        self.block = block
        self.rows = rows
        self.num_warps = num_warps
        self.reuse_rows = reuse_rows
        self.words = words
        self.word_bits = word_bits
        self.kernel = load_kernel(device)
        self._tables: dict[tuple[object, ...], tuple[torch.Tensor, ...]] = {}
        self._launches: dict[tuple[object, ...], _Launch] = {}
        # where a ragged launch's table is written before it goes to the device (page-locked on CUDA)
        self._table_staging = Staging(device, threads=1)
        self._no_images: torch.Tensor | None = None

    @property
    def description(self) -> str:
        arith: object = torch_reference_arithmetic(self.device, self.config.size, self.arithmetic)
        if self.device.type != "cuda" and self.arithmetic == "auto" and self.config.resize.mode != "stretch":
            # torch's CPU kernel follows the size it interpolates to: each image's content size, not input.size
            arith = f"taps as torch's for each content size, {str(arith).split(', ', 1)[1]}"
        interpolation = self.config.interpolation
        if interpolation == "pillow_bilinear":
            arith = "Pillow's fixed point, then x/scale"
        elif interpolation != "bilinear":
            arith = f"torch's {interpolation} on {self.device.type}, {str(arith).split(', ', 2)[2]}"
        mode = "interpreted on the CPU" if self.device.type != "cuda" else "compiled"
        return f"{super().description} ({interpolation}; {mode}; {arith}; division {self.division})"

    def tables(self, geometry: Geometry, cpu_fma_split: bool) -> tuple[torch.Tensor, ...]:
        """The separable modes' (tab_x, tab_y, idx_x, idx_y) on the device: weights, and per output index its
        first source index and its first FMA tap (torch's CPU split when ``cpu_fma_split``, else 0; see
        filters.py). A placeholder for the other modes, whose kernel never reads them."""
        interpolation = self.config.interpolation
        if interpolation not in ("bilinear_antialias", "pillow_bilinear"):
            key: tuple[object, ...] = ("none",)
        else:
            key = (interpolation, geometry.source, geometry.content, cpu_fma_split)
        if key not in self._tables:
            if key == ("none",):
                dummy = torch.zeros(2, dtype=torch.int32, device=self.device)
                self._tables[key] = (dummy, dummy, dummy, dummy)
            else:
                flavour = "cuda" if self.device.type == "cuda" else "cpu"
                arrays = []
                for size_in, size_out in zip(geometry.source, geometry.content, strict=True):
                    if interpolation == "pillow_bilinear":
                        first, weights, counts = filters.pillow_bilinear(size_in, size_out)
                    else:
                        first, weights, counts = filters.torch_antialias(size_in, size_out, flavour)
                    fma_from = filters.cpu_fma_from(counts) if cpu_fma_split else np.zeros_like(counts)
                    (first, weights, _), shift = filters.within_source((first, weights, counts), size_in)
                    arrays.append((weights, np.stack([first, fma_from + shift], axis=1)))
                (tab_y, idx_y), (tab_x, idx_x) = arrays
                self._tables[key] = tuple(
                    torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in (tab_x, tab_y, idx_x, idx_y)
                )
        return self._tables[key]

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        src = self.upload(batch)
        dst = torch.empty((len(batch), 3, *geometry.canvas), dtype=torch.float32, device=self.device)
        self.launch(src, dst, geometry)
        return dst

    def run_ragged(self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]) -> torch.Tensor | None:
        """Images of different sizes in one upload and, per choice of kernel and arithmetic, one launch
        (``RAGGED``: each image's values from a table row), written straight into the batch's output.

        A set of photos is mostly one size per image: as shape groups, a batch of 8 was 8 uploads, 8 plans and
        8 launches through Triton's JIT, then 8 scatters into the output, 4–9× the time of copying its bytes
        (benchmarks/RESULTS.md). Here the images go up as one buffer (the arena's span where the dump decoded
        them back to back, else one staging copy), the plan is per choice (kernel, arithmetic, padding), not per
        shape, and the launches write the output's rows themselves. The values are the per-shape launches' own:
        the same kernel and arithmetic reading the same values from memory instead of arguments.

        None for the separable modes (their per-image filter tables and tap counts stay per shape group) and
        for images too large for the kernel's 32-bit offsets (the shape groups' launch says so)."""
        if self.config.interpolation in ("bilinear_antialias", "pillow_bilinear"):
            return None
        if any(image.nbytes >= 1 << 31 for image in images) or math.prod(geometries[0].canvas) >= 1 << 31:
            return None
        src, offsets = self.staging.pack(images)
        aligned = src.data_ptr() % 8 == 0 and src.numel() % 8 == 0
        canvas = geometries[0].canvas
        out = torch.empty((len(images), 3, *canvas), dtype=torch.float32, device=self.device)
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, geometry in enumerate(geometries):
            groups.setdefault(self._ragged_choice(geometry), []).append(i)
        order = [i for members in groups.values() for i in members]
        table = self._table_staging.empty((len(images), len(self.kernel.RAGGED_COLUMNS)), np.int64)
        last_word = src.numel() // 8 - 1
        f32 = np.float32
        for row, i in enumerate(order):
            g, image = geometries[i], images[i]
            (in_h, in_w), (top, left), (content_h, content_w) = image.shape[:2], g.offset, g.content
            scales = np.array([f32(in_h) / f32(content_h), f32(in_w) / f32(content_w)], dtype=f32).view(np.int32)
            table[row] = (offsets[i], in_h, in_w, top, left, content_h, content_w, *scales, i, last_word)
        rows = self._table_staging.upload(table)
        start = 0
        for choice, members in groups.items():
            key = ("ragged", canvas, choice, aligned)  # one plan whatever the batch's count of this choice
            plan = self._launches.get(key)
            if plan is None:
                plan = self._launches[key] = self._configure(geometries[members[0]], 1, aligned, True)
            plan(src, out, rows[start : start + len(members)], images=len(members))
            start += len(members)
        return out

    def _ragged_choice(self, geometry: Geometry) -> tuple[object, ...]:
        """What decides a launch's kernel and constexprs besides the canvas, for bilinear and the nearest modes:
        torch's arithmetic for the content size, padding or not, and whether rows_kernel runs."""
        arith = torch_reference_arithmetic(self.device, geometry.content, self.arithmetic)
        k = self.kernel
        interp = getattr(k, _INTERP[self.config.interpolation])
        reuse = uses_rows_kernel(
            cuda=self.device.type == "cuda",
            bilinear=interp == k.BILINEAR,
            reusable=_reuses_rows(k, interp, arith, False, 1),
            rows_kept=geometry.content[0] / geometry.source[0],
            reuse_rows=self.reuse_rows,
        )
        return arith, geometry.is_stretch, reuse

    def launch(self, src: torch.Tensor, dst: torch.Tensor, geometry: Geometry | None = None) -> None:
        """Run the kernel on device tensors: uint8 N×H×W×3 contiguous → N×3×OH×OW contiguous, float32 or
        float16 (the float32 result rounded to nearest-even: equal to the torch chain's output ``.half()``).
        ``geometry`` places the content on the output; None stretches to the output size.

        Everything but the two tensors is worked out once per shape (:class:`_Launch`); on CUDA the compiled
        kernel is then called directly, so a small image costs a few microseconds of Python, not Triton's
        argument binding and cache lookup (about 40 µs a call, measured: benchmarks/RESULTS.md)."""
        key = (src.shape, dst.shape, dst.dtype, geometry, src.data_ptr() % 8 == 0)
        plan = self._launches.get(key)
        if plan is None:
            plan = self._launches[key] = self._plan(src, dst, geometry)
        plan(src, dst)

    def _plan(self, src: torch.Tensor, dst: torch.Tensor, geometry: Geometry | None) -> _Launch:
        n, in_h, in_w, _ = src.shape
        out_h, out_w = dst.shape[2:]
        if geometry is None:
            geometry = stretch((in_h, in_w), (out_h, out_w))
        if geometry.canvas != (out_h, out_w) or geometry.source != (in_h, in_w):
            raise RunError(f"geometry {geometry} does not fit source {(in_h, in_w)} and output {(out_h, out_w)}")
        if in_h * in_w * 3 >= 1 << 31 or out_h * out_w >= 1 << 31:
            raise RunError(f"{in_h}x{in_w} → {out_h}x{out_w}: the kernel's offsets within an image are 32-bit")
        return self._configure(geometry, n, src.data_ptr() % 8 == 0 and src.numel() % 8 == 0, False)

    def _configure(self, geometry: Geometry, n: int, aligned: bool, ragged: bool) -> _Launch:
        """The launch of ``n`` images placed by ``geometry`` from a source buffer (``aligned``: it starts on an
        8-byte boundary and its size is a multiple of 8). ``ragged``: the images' own values come from the table
        each call passes after the output (:meth:`run_ragged`), and ``geometry``'s are placeholders."""
        (in_h, in_w), (out_h, out_w) = geometry.source, geometry.canvas
        (top, left), (content_h, content_w) = geometry.offset, geometry.content
        # torch resizes to the content size, so its kernel (and arithmetic) is the one for that size
        arith = torch_reference_arithmetic(self.device, geometry.content, self.arithmetic)
        f32 = np.float32
        scale = f32(self.config.pixel_scale)
        k = self.kernel
        interp = getattr(k, _INTERP[self.config.interpolation])
        # torch's antialias accumulation: nvcc contracts every tap into an FMA; x86 CPU builds with FMA code
        # paths only the remainder of a loop vectorised by 4 (filters.cpu_fma_from); others none
        if self.device.type == "cuda":
            acc = k.ACC_FMA
        else:
            acc = k.ACC_FMA_REMAINDER if arith.taps not in _UNFUSED else k.ACC_ROUNDED
        tab_x, tab_y, idx_x, idx_y = self.tables(geometry, acc == k.ACC_FMA_REMAINDER)
        pillow = interp == k.SEPARABLE_FIXED
        # Pillow's reference normalises its uint8 result in numpy: a true division by pixel_scale on every device
        recip_scale = arith.reciprocal_scale and not pillow
        # the integer-valued modes' samples are 0…255 (and pad colours): where each of their quotients is checked,
        # both divisions take the split reciprocal (two instructions each, where IEEE-exact division takes three)
        integer = interp in (k.NEAREST, k.NEAREST_EXACT, k.SEPARABLE_FIXED)
        pad = k.PAD_NONE if geometry.is_stretch else k.PAD_PIXEL if self.pad_value is not None else k.PAD_ZERO
        pads = tuple(float(v) for v in self.pad_value or ()) if pad == k.PAD_PIXEL else ()
        normalisation = tuple(zip(map(float, self.mean), map(float, self.std), strict=True))
        split = (
            integer
            and self.division == "reciprocal_fma"
            and split_division_exact(float(scale), recip_scale, normalisation, pads)
        )
        v_first = pillow and filters.pillow_vertical_first(geometry.source, geometry.content)
        taps_x, taps_y = (t.shape[-1] if t.dim() == 2 else 1 for t in (tab_x, tab_y))
        o_taps, i_taps = (taps_x, taps_y) if v_first else (taps_y, taps_x)
        # small tap counts unrolled (one compiled kernel per pair, measured: benchmarks/RESULTS.md); strong
        # downscales loop at run time, one kernel for all of them
        unroll = max(o_taps, i_taps) <= k.UNROLLED_TAPS
        args = (
            in_h,
            in_w,
            out_h,
            out_w,
            top,
            left,
            content_h,
            content_w,
            float(f32(in_h) / f32(content_h)),
            float(f32(in_w) / f32(content_w)),
            float(scale),
            float(f32(1) / scale),
            *(float(v) for v in self.pad_value or (0, 0, 0)),
            *(float(v) for v in self.mean),
            *(float(v) for v in self.std),
            *(float(f32(1) / f32(v)) for v in self.std),
            tab_x,
            tab_y,
            idx_x,
            idx_y,
            o_taps,
            i_taps,
            *(() if ragged else (self._placeholder_table(),)),
        )
        constexprs = {
            "SWAP": self.swap_channels,
            "PAD": pad,
            "TAPS": _TAPS[arith.taps],
            "INDEX_FMA": arith.index_fma,
            "RECIP_SCALE": recip_scale,
            "DIV_FMA": self.division == "reciprocal_fma",
            "SPLIT": split,
            "INTERP": interp,
            "ACC": acc,
            "V_FIRST": v_first,
            "O_TAPS": o_taps if unroll else 0,
            "I_TAPS": i_taps if unroll else 0,
            "RAGGED": ragged,
        }
        reuse, rows, block, warps = launch_shape(
            cuda=self.device.type == "cuda",
            bilinear=interp == k.BILINEAR,
            separable=interp in (k.SEPARABLE_FLOAT, k.SEPARABLE_FIXED),
            reusable=_reuses_rows(k, interp, arith, v_first, o_taps),
            rows_kept=content_h / in_h,
            output=(out_h, out_w),
            reuse_rows=self.reuse_rows,
            rows=self.rows,
            block=self.block,
            num_warps=self.num_warps,
        )
        options = {"enable_fp_fusion": False, "num_warps": warps} if self.device.type == "cuda" else {}
        kernel = k.rows_kernel if reuse else k.preprocess_kernel
        if reuse:
            constexprs["O_TAPS"] = o_taps  # its vertical taps are written out (1 or 2), the horizontal may loop
        constexprs["ROWS"], constexprs["BLOCK"] = rows, block
        # bytes read as aligned 64-bit words (``_window``): bilinear, and row-first separable passes of ≤ 3 taps
        separable_rows = interp in (k.SEPARABLE_FLOAT, k.SEPARABLE_FIXED) and not v_first and unroll and i_taps <= 3
        cuda_default = self.device.type == "cuda" and (self.config.interpolation in _WORDS_BY_DEFAULT or reuse)
        words = self.words if self.words is not None else cuda_default
        # 1: 64-bit words, 2: bilinear's pixel pairs from 32-bit ones (_window6); 0: a load per byte
        engaged = words and aligned and (interp == k.BILINEAR or separable_rows)
        constexprs["WORDS"] = (2 if self.word_bits == 32 else 1) if engaged else 0
        constexprs["CLAMP"] = not pillow or not all(
            filters.pillow_clamp_free(filters.pillow_bilinear(i, o)[1])
            for i, o in zip(geometry.source, geometry.content, strict=True)
        )
        grid = (triton_cdiv(out_w, block), triton_cdiv(out_h, rows), n)
        return _Launch(kernel, grid, args, constexprs, options, self.device.type == "cuda")

    def _placeholder_table(self) -> torch.Tensor:
        """The table argument of a launch that is not ragged (the kernel never reads it)."""
        if self._no_images is None:
            self._no_images = torch.zeros(len(self.kernel.RAGGED_COLUMNS), dtype=torch.int64, device=self.device)
        return self._no_images


@lru_cache(maxsize=64)
def split_division_exact(
    scale: float, reciprocal_scale: bool, normalisation: tuple[tuple[float, float], ...], pads: tuple[float, ...]
) -> bool:
    """Whether the kernel's :func:`~preprocgate.variants.triton_kernel.split_divide` gives the reference's IEEE
    float32 quotients for every value the integer-valued modes normalise: each integer 0…255, and ``pads`` (a
    pad colour's channels, in channel order). Per channel (``normalisation``: its mean and std), ``x = v / scale``
    (or ``v · (1/scale)`` where the reference multiplies: ``reciprocal_scale``) and ``(x − mean) / std``, each
    compared with exact rational arithmetic: 256 values a channel, milliseconds, once per normalisation. It holds
    for every normalisation tried (tests/test_interpolation.py); one where it did not keeps ``div_rn`` and the
    correction that rounds as IEEE for every value (:func:`~preprocgate.variants.triton_kernel.divide`)."""
    f32 = np.float32
    s = f32(scale)
    if not np.isfinite(s) or s == 0:
        return False
    for channel, (mean, std) in enumerate(normalisation):
        d = f32(std)
        if not np.isfinite(d) or d == 0:
            return False
        values = [*range(256), *pads[channel : channel + 1]]
        for v in map(f32, values):
            x = v * (f32(1) / s) if reciprocal_scale else v / s
            if not reciprocal_scale and _split_quotient(v, s) != x:
                return False
            t = f32(x - f32(mean))
            if _split_quotient(t, d) != t / d:
                return False
    return True


def _split_quotient(a: np.float32, b: np.float32) -> np.float32:
    """``split_divide(a, b, 1/b)`` as the kernel rounds it: lo = fma(−b, 1/b, 1)·(1/b), then fma(a, 1/b, a·lo)."""
    inv = np.float32(1) / b
    lo = np.float32(filters.fma_f32(-b, inv, np.float32(1)) * inv)
    return filters.fma_f32(a, inv, np.float32(a * lo))


def launch_shape(
    *,
    cuda: bool,
    bilinear: bool,
    separable: bool = False,
    reusable: bool,
    rows_kept: float,
    output: Size,
    reuse_rows: bool | None,
    rows: int | None,
    block: int | None,
    num_warps: int | None,
) -> tuple[bool, int, int, int]:
    """Whether ``rows_kernel`` runs, and its output rows × columns per program and warps: the variant's params
    where given, else the defaults measured fastest for the kernel (``_CUDA_TILES``) or, in the interpreter, the
    fewest big tiles. ``reusable``: rows_kernel can compute this launch (``_reuses_rows``). ``rows_kept``: the
    content's rows over the source's (above 1 for an upscale). ``rows`` asked with ``reuse_rows`` is a run's
    length: where the tiled kernel runs instead, it takes its own."""
    reuse = uses_rows_kernel(
        cuda=cuda, bilinear=bilinear, reusable=reusable, rows_kept=rows_kept, reuse_rows=reuse_rows
    )
    own_rows = None if reuse_rows and not reuse else rows
    if cuda:
        default = _CUDA_TILES[
            "reuse_rows" if reuse else "bilinear" if bilinear else "separable" if separable else "other"
        ]
        return reuse, own_rows or default[0], block or default[1], num_warps or default[2]
    if reuse:  # the interpreter: one program per run of rows, all columns
        return reuse, own_rows or 16, block or 1 << (output[1] - 1).bit_length(), 1
    return reuse, *_interpreter_tile(*output, own_rows, block), 1


def uses_rows_kernel(*, cuda: bool, bilinear: bool, reusable: bool, rows_kept: float, reuse_rows: bool | None) -> bool:
    """Whether ``rows_kernel`` runs (see :func:`launch_shape`): the variant's ``reuse_rows`` where given, else on
    CUDA for the separable modes, and for bilinear keeping at least ``_REUSE_ROWS_FROM`` of the rows."""
    default_reuse = cuda and (rows_kept >= _REUSE_ROWS_FROM or not bilinear)
    return reusable and (reuse_rows if reuse_rows is not None else default_reuse)


def _reuses_rows(k: ModuleType, interp: int, arith: KernelArithmetic, v_first: bool, o_taps: int) -> bool:
    """Whether ``rows_kernel`` computes this launch: a horizontal pass per source row, then a vertical pass over
    at most two rows (see its docstring)."""
    if interp == k.BILINEAR:
        return arith.taps in ("generic", "unfused")
    return interp in (k.SEPARABLE_FLOAT, k.SEPARABLE_FIXED) and not v_first and o_taps <= 2


def _interpreter_tile(out_h: int, out_w: int, rows: int | None, block: int | None) -> tuple[int, int]:
    """The interpreter's cost of a launch, roughly: per program a fixed overhead (its numpy calls, worth about
    32k elements of work) plus its tile's elements, padding included. The cheapest powers of two up to 128k
    elements a tile."""
    pow2 = [1 << i for i in range(18)]
    tiles = [
        (r, b)
        for r in ([rows] if rows else pow2)
        for b in ([block] if block else pow2)
        if r * b <= 1 << 17 or (rows and block)
    ]
    return min(
        tiles,
        key=lambda t: (triton_cdiv(out_h, t[0]) * triton_cdiv(out_w, t[1]) * ((1 << 15) + t[0] * t[1]), -t[0] * t[1]),
    )


class _Launch:
    """One shape's launch: the grid, the scalar arguments and the options, fixed; only the tensors change.

    After the first launch through Triton's JIT (which compiles), the next one records the arguments the JIT
    hands to the compiled kernel's launcher, and those the launcher hands to its C launch function when it has one
    (newer Triton: a Python ``__call__`` that allocates scratch space, then the C call); from then on the deepest
    recorded function is called directly with the new tensors and the current stream in the recorded places.
    Whatever this Triton's argument layout, the recording reproduces it. Where it cannot be recorded (another
    buffer among the arguments: per-call scratch), the level above is used; whenever a launch hook is installed (a
    profiler's), calls go through the JIT."""

    def __init__(
        self, jit: Any, grid: tuple[int, int, int], args: tuple, constexprs: dict, options: dict, direct: bool
    ) -> None:
        self.jit = jit
        self.grid = grid
        self.args = args
        self.constexprs = constexprs
        self.options = options
        self.direct = direct
        self.calls = 0
        self.fast: _Direct | None = None

    @staticmethod
    def stream(device: torch.device) -> int:
        if _raw_stream is not None:  # CUDA builds: the handle itself, without a Stream object (a few µs)
            return _raw_stream(device.index)
        return torch.cuda.current_stream(device).cuda_stream

    def __call__(self, src: torch.Tensor, dst: torch.Tensor, *more: torch.Tensor, images: int | None = None) -> None:
        """Launch on ``src`` and ``dst``, and ``more`` tensors that change per call (a ragged launch's table),
        passed after the plan's own arguments. ``images``: the grid's third extent for this call (a ragged launch
        covers as many images as the batch has of its choice), else the plan's."""
        fast = self.fast
        tensors = (src, dst, *more)
        if fast is not None and all(_idle(hook) for hook in fast.hooks):
            args = list(fast.args)
            args[2] = self.grid[2] if images is None else images
            args[3] = self.stream(src.device)
            for at, tensor in zip(fast.at, tensors, strict=True):
                args[at] = tensor.data_ptr()
            fast.function(*args)
            return
        self.calls += 1
        grid = self.grid if images is None else (*self.grid[:2], images)
        if self.direct and self.calls == 2:
            self.fast = self._record(tensors, grid)
            self.direct = self.fast is not None
        else:
            self.jit[grid](src, dst, *self.args, *more, **self.constexprs, **self.options)

    def _record(self, tensors: tuple[torch.Tensor, ...], grid: tuple[int, int, int]) -> _Direct | None:
        """Launch twice through the JIT, seeing what it passes to the compiled kernel's launcher (``run``: an
        attribute in older Triton, a property over ``_run`` in newer) and what that passes to its ``launch``, if
        any. A level is recorded only if both of its calls got the same arguments (launch metadata aside): a
        launcher that allocates per call (scratch space) hands its ``launch`` a new buffer each time."""
        src, dst, *more = tensors
        compiled = self.jit.warmup(src, dst, *self.args, *more, **self.constexprs, **self.options, grid=grid)
        run = getattr(compiled, "run", None)
        slot = "_run" if isinstance(getattr(type(compiled), "run", None), property) else "run"
        recordable = run is not None and (slot == "run" or getattr(compiled, "_run", None) is run)
        inner = vars(run).get("launch") if recordable and hasattr(run, "__dict__") else None
        seen: list[tuple] = []
        seen_inner: list[tuple] = []

        def spy(*call: Any, **kwargs: Any) -> Any:
            seen.append(call if not kwargs else ())
            return run(*call, **kwargs)

        def spy_inner(*call: Any, **kwargs: Any) -> Any:
            seen_inner.append(call if not kwargs else ())
            return inner(*call, **kwargs)

        if recordable:
            setattr(compiled, slot, spy)
        if callable(inner):
            run.launch = spy_inner
        try:
            for _ in range(2):
                self.jit[grid](src, dst, *self.args, *more, **self.constexprs, **self.options)
        finally:
            if recordable:
                setattr(compiled, slot, run)
            if callable(inner):
                run.launch = inner
        if len(seen) != 2 or not seen[0]:
            return None
        # grid (3), stream, function, packed metadata, launch metadata, enter hook, exit hook, then the arguments;
        # the launch metadata (made per call) is only read by hooks, and hooks send calls through the JIT
        dropped = [(*call[:6], None, *call[7:]) for call in seen]
        hooks = tuple(seen[0][7:9])
        outer = _Direct.of(run, dropped, tensors, self, grid, hooks)
        if outer is None or len(seen_inner) != 2:
            return outer
        calls = [tuple(None if a is seen[k][6] else a for a in call) for k, call in enumerate(seen_inner)]
        return _Direct.of(inner, calls, tensors, self, grid, hooks) or outer


@dataclass(frozen=True)
class _Direct:
    """A recorded launch: ``function(*args)`` with the stream at index 3 and the per-call tensors' addresses
    (source, output, then any others) at the indices ``at`` replaced per call; ``hooks``: Triton's launch hook
    chains, which send calls back through the JIT once a profiler fills them.

    Tensors go to the launcher as their addresses (``data_ptr()``; the plan's own tables once, when recorded: the
    plan holds them): Triton's launchers take an integer as the address itself, where for a tensor they call its
    ``data_ptr`` and ask the driver whether the address is on the device, for each of the six tensors."""

    function: Any
    args: tuple
    at: tuple[int, ...]
    hooks: tuple

    @classmethod
    def of(
        cls, function: Any, calls: list[tuple], tensors: tuple, plan: _Launch, grid: tuple, hooks: tuple
    ) -> _Direct | None:
        """The recording of two identical ``calls``, or None where replaying them could be wrong: they differ
        (something made per call), the grid is not first, a per-call tensor is not found exactly once, or a
        buffer that is not the plan's own is passed."""
        call = calls[0]
        if not all(_same(a, b) for a, b in zip(*calls, strict=False)) or len(set(map(len, calls))) != 1 or not call:
            return None
        at = [[i for i, a in enumerate(call) if a is tensor] for tensor in tensors]
        own = [id(a) for a in plan.args if hasattr(a, "data_ptr")]
        per_call = {id(t) for t in tensors}
        buffers = [i for i, a in enumerate(call) if hasattr(a, "data_ptr") and id(a) not in per_call]
        if any(len(found) != 1 for found in at) or tuple(call[:3]) != grid or len(call) < 4:
            return None
        if any(id(call[i]) not in own for i in buffers):
            return None
        args = tuple(a.data_ptr() if i in buffers else a for i, a in enumerate(call))
        return cls(function, args, tuple(found[0] for found in at), hooks)


def _same(a: Any, b: Any) -> bool:
    """The same argument in two launches: the same object, or equal values that are not buffers."""
    return a is b or (type(a) is type(b) and not hasattr(a, "data_ptr") and a == b)


def _idle(hook: Any) -> bool:
    """No launch hook: None (older Triton) or an empty hook chain (newer)."""
    return hook is None or getattr(hook, "calls", None) == []


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
