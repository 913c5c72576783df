"""The fused Triton variant, and the choice of arithmetic that makes it bit-exact with torch on each device."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, get_args

import numpy as np
import torch

from preprocgate.errors import MissingDependencyError, RunError
from preprocgate.geometry import Geometry, stretch
from preprocgate.spec import INTERPOLATIONS, InputSpec
from preprocgate.variants import filters
from preprocgate.variants.base import Preprocessor, Size

Arithmetic = Literal["auto", "generic", "channels_last", "unfused"]
Division = Literal["auto", "div_rn", "reciprocal_fma"]
# The kernel's TAPS constexpr. generic: torch's NCHW kernels (CUDA; CPU multi-threaded), fma(w0,p00,w1*p01) per
# row, then rows. channels_last: torch's CPU channels-last kernel, four pre-multiplied weights, one FMA chain.
# unfused: the generic order with every product and sum rounded separately (builds without FMA).
_TAPS = {"generic": 0, "channels_last": 1, "unfused": 2}
_FUSING_CPU_CAPABILITIES = {"AVX2", "AVX512"}


@dataclass(frozen=True)
class KernelArithmetic:
    """How the kernel rounds; one of these reproduces each of torch's bilinear kernels on a device."""

    taps: Literal["generic", "channels_last", "unfused"]
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
    FMAs in their AVX2/AVX512 code paths; the DEFAULT path (and unknown ISAs) is assumed unfused.
    """
    if device.type == "cuda":
        return KernelArithmetic("generic" if arithmetic == "auto" else arithmetic, True, True)
    fused = torch.backends.cpu.get_cpu_capability() in _FUSING_CPU_CAPABILITIES
    if arithmetic == "auto":
        channels_last = torch.get_num_threads() == 1 or size[0] + size[1] <= 128
        arithmetic = ("channels_last" if channels_last else "generic") if fused else "unfused"
    return KernelArithmetic(arithmetic, fused or arithmetic != "unfused", False)


def load_kernel(device: torch.device) -> ModuleType:
    """Import the kernel module, in Triton's interpreter when running on the CPU."""
    if device.type != "cuda":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    elif os.environ.get("TRITON_INTERPRET") == "1":
        raise RunError("TRITON_INTERPRET=1 is set but the gate runs on CUDA; unset it to run the compiled kernel")
    try:
        from preprocgate.variants import triton_kernel
    except ImportError as exc:
        raise MissingDependencyError("triton", "triton") from exc
    return triton_kernel


# modes whose CUDA weights or accumulation order differed from torch's in measured outputs (the H200 sweep); the
# antialias tables now follow nvcc's contractions (filters.torch_antialias_cuda): empty this set once
# benchmarks/antialias_cuda_probe.py shows 0 mismatches on a GPU (the refusal test follows it)
_CUDA_INEXACT: frozenset[str] = frozenset({"bilinear_antialias"})
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
        num_warps: int | None = None,
        division: Division = "auto",
        inexact: bool = False,
    ) -> None:
        """``inexact``: run a mode whose CUDA arithmetic does not yet match torch's (``bilinear_antialias``:
        benchmarks/RESULTS.md) instead of refusing it; for measuring the kernel, never for a parity gate."""
        super().__init__(config, device)
        if device.type == "cuda" and config.interpolation in _CUDA_INEXACT and not inexact:
            raise RunError(
                f"the triton variant's {config.interpolation} is bit-exact with torch in Triton's interpreter but not "
                "yet on CUDA (docs/arithmetic.md); use the torch variant there, or params: {inexact: true} to time it"
            )
        if arithmetic not in ("auto", *_TAPS):
            raise ValueError(f"arithmetic must be one of auto, {', '.join(_TAPS)}")
        if division not in get_args(Division):
            raise ValueError(f"division must be one of {', '.join(get_args(Division))}")
        self.arithmetic: Arithmetic = arithmetic
        # auto: the reciprocal-and-FMA correction where it is compiled (a single rounding per FMA); div_rn in
        # the interpreter, whose tl.fma rounds twice before Triton 3.9
        self.division = ("reciprocal_fma" if device.type == "cuda" else "div_rn") if division == "auto" else division
        self.block = block
        self.num_warps = num_warps
        self.kernel = load_kernel(device)
        self._tables: dict[tuple[object, ...], tuple[torch.Tensor, ...]] = {}

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
        if self.device.type != "cuda" and not interpreter_fma_is_exact():
            mode += "; this Triton's interpreter rounds tl.fma twice (fixed in 3.9): not bit-exact with torch"
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
                    arrays.append((weights, np.stack([first, fma_from], axis=1)))
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

    def launch(self, src: torch.Tensor, dst: torch.Tensor, geometry: Geometry | None = None) -> None:
        """Run the kernel on device tensors: uint8 N×H×W×3 contiguous → N×3×OH×OW contiguous, float32 or
        float16 (the float32 result rounded to nearest-even: equal to the torch chain's output ``.half()``).
        ``geometry`` places the content on the output; None stretches to the output size."""
        n, in_h, in_w, _ = src.shape
        out_h, out_w = dst.shape[2:]
        if geometry is None:
            geometry = stretch((in_h, in_w), (out_h, out_w))
        if geometry.canvas != (out_h, out_w) or geometry.source != (in_h, in_w):
            raise RunError(f"geometry {geometry} does not fit source {(in_h, in_w)} and output {(out_h, out_w)}")
        (top, left), (content_h, content_w) = geometry.offset, geometry.content
        # torch resizes to the content size, so its kernel (and arithmetic) is the one for that size
        arith = torch_reference_arithmetic(self.device, geometry.content, self.arithmetic)
        plane = out_h * out_w
        if self.block:
            block = self.block
        elif self.device.type == "cuda":
            block = 256  # with 2 warps: the fastest launch in both H100 sweeps (benchmarks/RESULTS.md)
        else:  # the interpreter runs one program at a time: one program per image is fastest
            block = 1 << max(plane - 1, 1).bit_length()
        f32 = np.float32
        launch: dict[str, object] = {}
        if self.device.type == "cuda":
            launch["enable_fp_fusion"] = False
            launch["num_warps"] = self.num_warps or (4 if self.block else 2)  # 4: Triton's own default
        scale = f32(self.config.pixel_scale)
        k = self.kernel
        interp = getattr(k, _INTERP[self.config.interpolation])
        # torch's antialias accumulation: nvcc contracts every tap into an FMA; x86 CPU builds with FMA code
        # paths only the remainder of a loop vectorised by 4 (filters.cpu_fma_from); others none
        if self.device.type == "cuda":
            acc = k.ACC_FMA
        else:
            acc = k.ACC_FMA_REMAINDER if arith.taps != "unfused" else k.ACC_ROUNDED
        tab_x, tab_y, idx_x, idx_y = self.tables(geometry, acc == k.ACC_FMA_REMAINDER)
        pillow = interp == k.SEPARABLE_FIXED
        # Pillow's reference normalises its uint8 result in numpy: a true division by pixel_scale on every device
        recip_scale = arith.reciprocal_scale and not pillow
        if geometry.is_stretch:
            pad = self.kernel.PAD_NONE
        else:
            pad = self.kernel.PAD_PIXEL if self.pad_value is not None else self.kernel.PAD_ZERO
        self.kernel.preprocess_kernel[(triton_cdiv(plane, block), n)](
            src,
            dst,
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
            tab_x.shape[-1] if tab_x.dim() == 2 else 1,
            tab_y.shape[-1] if tab_y.dim() == 2 else 1,
            SWAP=self.swap_channels,
            PAD=pad,
            TAPS=_TAPS[arith.taps],
            INDEX_FMA=arith.index_fma,
            RECIP_SCALE=recip_scale,
            DIV_FMA=self.division == "reciprocal_fma",
            INTERP=interp,
            ACC=acc,
            V_FIRST=pillow and filters.pillow_vertical_first(geometry.source, geometry.content),
            BLOCK=block,
            **launch,
        )


def interpreter_fma_is_exact() -> bool:
    """Triton's CPU interpreter computes ``tl.fma`` with one rounding only from 3.9 on (``fma_fp32``);
    before, it multiplies and adds in float32, which no FMA-contracted torch kernel reproduces."""
    from triton._C.libtriton import interpreter

    return hasattr(interpreter, "fma_fp32")


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
