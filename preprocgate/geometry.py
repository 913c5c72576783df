"""Where an image's content lands in the network input, and how to map detections back.

Every resize mode is described by one :class:`Geometry` per image: the source size, the canvas (the network
input), the size the content is resized to and its offset on the canvas. Variants draw the canvas from it; model
adapters invert it to return boxes and masks in original-image pixels. The plan is pure arithmetic on sizes, so
every variant, the adapters and the report agree on it by construction.

Rounding rules, copied from the reference implementations:

- ``stretch``: content = canvas = ``input.size``; offsets 0; boxes map back as ``x · source / canvas``.
- ``letterbox`` (Ultralytics ``LetterBox``, ``scaleup=True``): ``r = min(H/h, W/w)``; content
  ``(round(h·r), round(w·r))`` with Python's round-half-even (``content_rounding: round``) or truncated as YOLOX's
  ``int(h·r)`` does (``content_rounding: floor``); centred offsets ``top = round(dh/2 − 0.1)``,
  ``left = round(dw/2 − 0.1)`` where ``dh = H − content_h`` (Ultralytics' "−0.1" puts an odd pixel of padding at
  the bottom/right), or ``(0, 0)`` for ``align: top_left`` (YOLOX). Boxes map back as ``(x − left) / r``.
- ``keep_ratio`` (Detectron2 ``ResizeShortestEdge`` + ``ImageList.from_tensors``): scale the shorter side to ``S``;
  if the longer side then exceeds ``max_size``, scale it down to ``max_size``; content sizes ``int(x + 0.5)``;
  content at the top-left; the canvas of a batch is the largest content size in the batch rounded up to a multiple
  of ``stride`` (so the canvas depends on which images share a batch, as in Detectron2). Detectron2 pads the
  normalised batch with 0, hence keep_ratio's default ``pad: mean`` (0 after normalising; see ``ResizeSpec``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from preprocgate.types import Size


@dataclass(frozen=True)
class Geometry:
    """One image's placement on the network input, in pixels, (height, width) order throughout.

    ``inverse`` is the factor, per axis, that the reference implementation multiplies canvas pixels by (after
    removing the offset) to map them back to the source: ``source / content`` for stretch and keep_ratio,
    ``1 / r`` for letterbox (not ``source / content``, which differs by the rounding of the content size).
    """

    source: Size
    canvas: Size
    content: Size
    offset: Size = (0, 0)
    inverse: tuple[float, float] = (1.0, 1.0)

    @property
    def is_stretch(self) -> bool:
        return self.content == self.canvas and self.offset == (0, 0)

    def with_canvas(self, canvas: Size) -> Geometry:
        """The same content on a larger canvas (padding added at the bottom and right)."""
        if canvas[0] < self.offset[0] + self.content[0] or canvas[1] < self.offset[1] + self.content[1]:
            raise ValueError(f"canvas {canvas} cannot hold content {self.content} at {self.offset}")
        return replace(self, canvas=tuple(canvas))  # type: ignore[arg-type]

    def boxes_to_source(self, boxes: Sequence[Sequence[float]] | object) -> object:
        """xyxy boxes in canvas pixels → source pixels, clipped to the source image.

        Works on a numpy array or a torch tensor (any leading shape, last dimension 4); returns the same type.
        """
        top, left = self.offset
        fy, fx = self.inverse
        h, w = self.source
        out = boxes.clone() if hasattr(boxes, "clone") else boxes.copy()  # type: ignore[union-attr]
        out[..., 0::2] = ((out[..., 0::2] - left) * fx).clip(0, w)  # type: ignore[index]
        out[..., 1::2] = ((out[..., 1::2] - top) * fy).clip(0, h)  # type: ignore[index]
        return out


def stretch(source: Size, size: Size) -> Geometry:
    (h, w), (oh, ow) = source, size
    return Geometry(source=(h, w), canvas=(oh, ow), content=(oh, ow), inverse=(h / oh, w / ow))


def letterbox(source: Size, size: Size, align: str = "center", content_rounding: str = "round") -> Geometry:
    (h, w), (oh, ow) = source, size
    r = min(oh / h, ow / w)
    if content_rounding == "round":
        ch, cw = round(h * r), round(w * r)
    elif content_rounding == "floor":
        ch, cw = int(h * r), int(w * r)
    else:
        raise ValueError(f"content_rounding must be round or floor, got {content_rounding!r}")
    ch, cw = min(max(ch, 1), oh), min(max(cw, 1), ow)
    if align == "center":
        top, left = round((oh - ch) / 2 - 0.1), round((ow - cw) / 2 - 0.1)
    elif align == "top_left":
        top, left = 0, 0
    else:
        raise ValueError(f"align must be center or top_left, got {align!r}")
    return Geometry(source=(h, w), canvas=(oh, ow), content=(ch, cw), offset=(top, left), inverse=(1 / r, 1 / r))


def keep_ratio(source: Size, short_side: int, max_size: int, stride: int = 1) -> Geometry:
    h, w = source
    scale = short_side / min(h, w)
    nh, nw = (short_side, scale * w) if h < w else (scale * h, short_side)
    if max(nh, nw) > max_size:
        shrink = max_size / max(nh, nw)
        nh, nw = nh * shrink, nw * shrink
    ch, cw = max(int(nh + 0.5), 1), max(int(nw + 0.5), 1)
    canvas = (_round_up(ch, stride), _round_up(cw, stride))
    return Geometry(source=(h, w), canvas=canvas, content=(ch, cw), inverse=(h / ch, w / cw))


def batch_canvas(geometries: Sequence[Geometry]) -> Size:
    """The canvas a batch shares: every image's canvas fits in it (equal for stretch and letterbox)."""
    return (max(g.canvas[0] for g in geometries), max(g.canvas[1] for g in geometries))


def _round_up(value: int, stride: int) -> int:
    return int(math.ceil(value / stride) * stride)


def plan(source: Size, size: Size, resize: object | None = None) -> Geometry:
    """The geometry of one image under ``input.resize`` (a :class:`preprocgate.spec.ResizeSpec`; None: stretch)
    with ``size`` the spec's ``input.size`` (or a probe's own output size)."""
    mode = getattr(resize, "mode", "stretch")
    if mode == "stretch":
        return stretch(source, size)
    if mode == "letterbox":
        return letterbox(source, size, resize.align, resize.content_rounding)  # type: ignore[attr-defined]
    if mode == "keep_ratio":
        return keep_ratio(source, resize.short_side, resize.max_size, resize.stride)  # type: ignore[attr-defined]
    raise ValueError(f"unknown resize mode {mode!r}")


def plan_batch(sources: Sequence[Size], size: Size, resize: object | None = None) -> list[Geometry]:
    """The geometries of images preprocessed together: each image's plan, all on the batch's shared canvas.

    Variants draw their output with it and the dump stage hands the same list to the model adapter, so both
    sides agree on every offset and factor.
    """
    planned: dict[tuple[int, ...], Geometry] = {}  # a batch is mostly a few shapes: plan each once
    geometries = []
    for source in sources:
        key = tuple(source)
        found = planned.get(key)
        if found is None:
            found = planned[key] = plan(key, size, resize)  # type: ignore[arg-type]
        geometries.append(found)
    if not geometries:
        return []
    canvas = batch_canvas(geometries)
    return [g if g.canvas == canvas else g.with_canvas(canvas) for g in geometries]
