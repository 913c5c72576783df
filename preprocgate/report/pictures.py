"""PNG pictures for reviewers, drawn with matplotlib (the ``pictures`` extra) from arrays the pictures stage
gathered: where two preprocessing paths' pixels differ, and which detections moved on real photos.

Drawn through matplotlib's object API (``Figure`` + the Agg canvas), never pyplot: no global state, no display.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from preprocgate.errors import MissingDependencyError
from preprocgate.functional.ulp import ulp_distance


@dataclass(frozen=True)
class ProbeView:
    """One probe of a parity pair: its source image (RGB) and both variants' C×H×W outputs."""

    name: str
    image: np.ndarray
    candidate: np.ndarray
    reference: np.ndarray


@dataclass(frozen=True)
class DetectionView:
    """One photo (RGB) with both variants' COCO result records (boxes, scores, RLE masks)."""

    name: str
    image: np.ndarray
    reference: list[dict]
    candidate: list[dict]
    unmatched_reference: set[int]
    unmatched_candidate: set[int]
    min_score: float  # detections below it are not drawn (nor diffed)


def _figure(rows: int, cols: int, width: float = 4.0, height: float = 3.2):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "pictures") from exc
    fig = Figure(figsize=(width * cols, height * rows), dpi=64, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


PANEL = 256
"""Pixels per panel side: arrays are reduced to this before drawing, which sets the cost of a picture."""


def _reduce(array: np.ndarray, reduce: str = "max") -> np.ndarray:
    """H×W(×C) shrunk by a whole factor to at most PANEL per side: block maximum for heatmaps (a one-pixel
    difference stays visible), every k-th pixel for photos."""
    k = max(1, -(-max(array.shape[:2]) // PANEL))
    if k == 1:
        return array
    if reduce != "max":
        return array[::k, ::k]
    h, w = array.shape[0] // k * k, array.shape[1] // k * k
    if h == 0 or w == 0:
        return array[::k, ::k]
    return array[:h, :w].reshape(h // k, k, w // k, k).max(axis=(1, 3))


def _show(ax, array: np.ndarray, reduce: str = "max", **kwargs):
    """``imshow`` of the reduced array, in the coordinates of the full one (so boxes land where they belong)."""
    h, w = array.shape[:2]
    return ax.imshow(_reduce(array, reduce), extent=(0, w, h, 0), interpolation="nearest", **kwargs)


def parity_picture(title: str, probes: Sequence[ProbeView]) -> bytes:
    """Per probe: the source image, |Δ| and the ULP distance (largest over channels) as heatmaps."""
    fig, axes = _figure(len(probes), 3)
    fig.suptitle(title)
    for row, probe in zip(axes, probes, strict=True):
        cand, ref = probe.candidate.astype(np.float32), probe.reference.astype(np.float32)
        both = np.isfinite(cand) & np.isfinite(ref)
        delta = np.where(both, np.abs(cand - ref), np.inf).max(axis=0)
        ulps = np.where(both, ulp_distance(cand, ref), np.iinfo(np.int64).max).max(axis=0)
        _show(row[0], probe.image, "sample")
        row[0].set_title(f"{probe.name}\n{probe.image.shape[1]}×{probe.image.shape[0]} source", fontsize=8)
        shown = _show(row[1], delta, cmap="magma")
        row[1].set_title(f"|Δ| (max {np.max(delta):.2e})", fontsize=8)
        fig.colorbar(shown, ax=row[1], shrink=0.8)
        shown = _show(
            row[2], np.log10(1.0 + ulps), cmap="viridis", vmin=0, vmax=max(np.log10(2.0), np.log10(1.0 + ulps.max()))
        )
        row[2].set_title(f"log10(1 + ULP distance), max {int(ulps.max()):,} ULP", fontsize=8)
        fig.colorbar(shown, ax=row[2], shrink=0.8)
        for ax in row:
            ax.set_axis_off()
    return _png(fig)


def _draw(
    ax, image: np.ndarray, records: list[dict], unmatched: set[int], color: tuple[float, float, float], min_score: float
) -> None:
    from matplotlib.patches import Rectangle
    from pycocotools import mask as mask_utils

    records = [r if r["score"] >= min_score else None for r in records]  # keeps the indices of ``unmatched``
    overlay = np.zeros((*image.shape[:2], 4), np.float32)
    for i, r in enumerate(records):
        seg = r.get("segmentation") if r else None
        if seg is not None:
            m = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode("ascii")}).astype(bool)
            if m.shape == overlay.shape[:2]:
                overlay[m] = (*((1.0, 0.1, 0.1) if i in unmatched else color), 0.35)
    _show(ax, image, "sample")
    _show(ax, overlay, "sample")
    for i, r in enumerate(records):
        if r is None:
            continue
        x, y, w, h = r["bbox"]
        lost = i in unmatched
        ax.add_patch(
            Rectangle((x, y), w, h, fill=False, lw=2.0 if lost else 1.0, ec=(1.0, 0.1, 0.1) if lost else color)
        )
        ax.text(
            x,
            y,
            f"{r['category_id']}:{r['score']:.2f}",
            fontsize=6,
            color="white",
            va="bottom",
            bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "lw": 0},
        )
    ax.set_axis_off()


def detection_picture(title: str, reference: str, candidate: str, views: Sequence[DetectionView]) -> bytes:
    """Per photo: the reference variant's detections, then the candidate's, boxes and masks over the photo;
    detections the other variant has no match for in red."""
    fig, axes = _figure(len(views), 2, width=5.0, height=4.0)
    fig.suptitle(f"{title}\nred: no match in the other variant (class:score)")
    for row, view in zip(axes, views, strict=True):
        for ax, name, records, lost, color in (
            (row[0], reference, view.reference, view.unmatched_reference, (0.2, 0.5, 1.0)),
            (row[1], candidate, view.candidate, view.unmatched_candidate, (1.0, 0.6, 0.1)),
        ):
            _draw(ax, view.image, records, lost, color, view.min_score)
            shown = sum(r["score"] >= view.min_score for r in records)
            ax.set_title(f"{view.name}: {name}, {shown} detections, {len(lost)} unmatched", fontsize=8)
    return _png(fig)


def index_html(gate: str, pictures: Sequence[tuple[str, str, str]]) -> str:
    """A page showing every picture: (subject, title, file name beside the page)."""
    items = "\n".join(
        f'<h2>{html.escape(subject)}: {html.escape(title)}</h2>\n<a href="{html.escape(name)}">'
        f'<img src="{html.escape(name)}" alt="{html.escape(title)}" style="max-width:100%"></a>'
        for subject, title, name in pictures
    )
    return (
        f'<!doctype html>\n<meta charset="utf-8">\n<title>preprocgate {html.escape(gate)}: pictures</title>\n'
        f"<h1>preprocgate {html.escape(gate)}: pictures</h1>\n{items}\n"
    )
