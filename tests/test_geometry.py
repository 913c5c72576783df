"""Geometry plans against values worked out by hand from the reference implementations' code."""

import numpy as np
import pytest

from preprocgate.geometry import Geometry, keep_ratio, letterbox, plan_batch, stretch
from preprocgate.spec import ResizeSpec


def test_stretch_is_the_whole_canvas() -> None:
    g = stretch((480, 640), (384, 384))
    assert (g.canvas, g.content, g.offset) == ((384, 384), (384, 384), (0, 0))
    assert g.is_stretch and g.inverse == (1.25, 640 / 384)


@pytest.mark.parametrize(
    ("source", "size", "content", "offset"),
    [
        # r = min(320/333, 320/500) = 0.64: 333·0.64 = 213.12 → 213; dh = 107, top = round(53.5 − 0.1) = 53 (the odd
        # row of padding goes to the bottom, as Ultralytics' LetterBox does)
        ((333, 500), (320, 320), (213, 320), (53, 0)),
        # r = 0.5: 427·0.5 = 213.5 rounds half to even → 214; dh = 106 → top 53
        ((427, 640), (320, 320), (214, 320), (53, 0)),
        # 425·0.5 = 212.5 → 212 (half to even, not half up); dh = 108 → top round(53.9) = 54
        ((425, 640), (320, 320), (212, 320), (54, 0)),
        # portrait: r = 320/640; 480·0.5 = 240 → dw = 80, left = round(39.9) = 40
        ((640, 480), (320, 320), (320, 240), (0, 40)),
        # scale-up (scaleup=True): r = min(640/100, 640/50) = 6.4 → 640×320, left round(159.9) = 160
        ((100, 50), (640, 640), (640, 320), (0, 160)),
        # non-square canvas: r = min(384/480, 512/640) = 0.8 → fills it exactly
        ((480, 640), (384, 512), (384, 512), (0, 0)),
        # 1×1 source fills the square canvas
        ((1, 1), (8, 8), (8, 8), (0, 0)),
        # extreme ratio: 7×1000 → r = 0.64 → 4.48 → 4 rows
        ((7, 1000), (640, 640), (4, 640), (318, 0)),
    ],
)
def test_letterbox_matches_ultralytics(source, size, content, offset) -> None:
    g = letterbox(source, size)
    assert (g.canvas, g.content, g.offset) == (size, content, offset)
    r = min(size[0] / source[0], size[1] / source[1])
    assert g.inverse == (1 / r, 1 / r)


@pytest.mark.parametrize(
    ("source", "content"),
    [
        ((333, 500), (277, 416)),  # r = 0.832: int(277.056) = 277
        ((427, 640), (277, 416)),  # r = 0.65: int(277.55) = 277 where round() gives 278
        ((153, 544), (116, 416)),  # 153·(416/544) = 116.99999999999999 in float64: YOLOX's int() gives 116
        ((480, 640), (312, 416)),
    ],
)
def test_letterbox_floor_top_left_matches_yolox(source, content) -> None:
    g = letterbox(source, (416, 416), align="top_left", content_rounding="floor")
    assert (g.content, g.offset, g.canvas) == (content, (0, 0), (416, 416))


@pytest.mark.parametrize(
    ("source", "content", "canvas"),
    [
        # shorter side 480 → 800: 640·(800/480) = 1066.67 → int(1067.17) = 1067; canvas 1067 → 1088 (stride 32)
        ((480, 640), (800, 1067), (800, 1088)),
        # 300×1000: 800 × 2666.67 exceeds 1333 → scaled by 1333/2666.67: 399.9 → 400, 1333 → int(1333.5) = 1333
        ((300, 1000), (400, 1333), (416, 1344)),
        ((1000, 300), (1333, 400), (1344, 416)),
        # already at the target: 800×800 stays, canvas 800 is a multiple of 32
        ((800, 800), (800, 800), (800, 800)),
    ],
)
def test_keep_ratio_matches_detectron2(source, content, canvas) -> None:
    g = keep_ratio(source, 800, 1333, 32)
    assert (g.content, g.canvas, g.offset) == (content, canvas, (0, 0))
    assert g.inverse == (source[0] / content[0], source[1] / content[1])


def test_plan_batch_shares_the_largest_canvas() -> None:
    spec = ResizeSpec(mode="keep_ratio", short_side=800, max_size=1333, stride=32)
    a, b = plan_batch([(480, 640), (1000, 300)], (1, 1), spec)
    assert a.canvas == b.canvas == (1344, 1088)
    assert (a.content, b.content) == ((800, 1067), (1333, 400))
    boxed = plan_batch([(333, 500), (640, 480)], (320, 320), ResizeSpec(mode="letterbox"))
    assert [g.canvas for g in boxed] == [(320, 320), (320, 320)]
    assert plan_batch([], (8, 8), spec) == []


def test_boxes_map_back_through_the_offset_and_ratio() -> None:
    g = letterbox((333, 500), (320, 320))  # r = 0.64, top 53
    boxes = np.array([[0.0, 53.0, 64.0, 53.0 + 64.0], [-5.0, 0.0, 400.0, 400.0]])
    back = g.boxes_to_source(boxes)
    np.testing.assert_allclose(back[0], [0, 0, 100, 100])
    np.testing.assert_allclose(back[1], [0, 0, 500, 333])  # clipped to the source
    assert isinstance(back, np.ndarray) and boxes[0, 1] == 53.0  # input untouched


def test_with_canvas_refuses_a_smaller_canvas() -> None:
    g = Geometry(source=(10, 10), canvas=(32, 32), content=(20, 30))
    assert g.with_canvas((64, 32)).canvas == (64, 32)
    with pytest.raises(ValueError, match="cannot hold"):
        g.with_canvas((16, 32))
