"""models.base: rescale (detections on the canvas back to the source through its Geometry) and map_labels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from preprocgate.geometry import letterbox, stretch
from preprocgate.models.base import map_labels, rescale


def test_stretch_is_the_former_scaling_bit_for_bit() -> None:
    """Stretch geometry: the same float32 arithmetic as before geometries existed (dump digests unchanged)."""
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(50, 4, generator=g) * 400 - 40
    masks = torch.rand(50, 1, 320, 320, generator=g)
    det = rescale(boxes, torch.rand(50), np.arange(50), masks, stretch((427, 640), (320, 320)))
    scale = torch.tensor([640 / 320, 427 / 320, 640 / 320, 427 / 320], dtype=torch.float32)
    expected = boxes * scale
    expected[:, 0::2] = expected[:, 0::2].clamp(0, 640)
    expected[:, 1::2] = expected[:, 1::2].clamp(0, 427)
    assert np.array_equal(det.boxes, expected.numpy())
    former = F.interpolate(masks, size=(427, 640), mode="bilinear", align_corners=False)[:, 0] > 0.5
    assert torch.equal(det.masks, former)


def test_letterbox_boxes_remove_the_padding_and_divide_by_the_scale() -> None:
    geometry = letterbox((427, 640), (320, 320))  # r = 0.5, content 214×320 at top 53 (Ultralytics' rounding)
    assert geometry.offset == (53, 0) and geometry.content == (214, 320)
    boxes = torch.tensor([[10.0, 53.0, 110.0, 153.0], [-5.0, 0.0, 330.0, 320.0]])
    det = rescale(boxes, torch.tensor([0.9, 0.8]), np.array([1, 2]), None, geometry)
    np.testing.assert_allclose(det.boxes, [[20, 0, 220, 200], [0, 0, 640, 427]])  # second: clipped to the image


def test_float_masks_crop_the_content_at_any_proportional_resolution() -> None:
    """A mask set inside the content's upper-left quarter maps to the source's upper-left quarter, from the
    canvas and from a 4× coarser grid, including a grid where the content's edge falls between pixels."""
    geometry = letterbox((200, 400), (320, 320))  # content 160×320 at top 80
    canvas = torch.zeros(1, 320, 320)
    canvas[0, 80:160, 0:160] = 1.0
    expected = torch.zeros(1, 200, 400, dtype=torch.bool)
    expected[0, :100, :200] = True
    at_canvas = rescale(torch.zeros(1, 4), torch.ones(1), np.array([1]), canvas, geometry).masks
    assert torch.equal(at_canvas, expected)
    coarse = canvas[:, ::4, ::4].clone()  # 80×80: content rows 20..60, whole pixels
    from_coarse = rescale(torch.zeros(1, 4), torch.ones(1), np.array([1]), coarse, geometry).masks
    cropped = F.interpolate(coarse[None, :, 20:60], size=(200, 400), mode="bilinear", align_corners=False)[0] > 0.5
    assert torch.equal(from_coarse, cropped)
    assert (from_coarse != expected).sum() == 3  # only the block's corner, where bilinear weights give 0.6² < 0.5
    odd = letterbox((213, 400), (320, 320))  # content 170 rows at top 75: 18.75 rows at a 4× coarser grid
    coarse_odd = torch.zeros(1, 80, 80)
    coarse_odd[0, 19:40, :40] = 1.0
    m = rescale(torch.zeros(1, 4), torch.ones(1), np.array([1]), coarse_odd, odd).masks
    assert m.shape == (1, 213, 400) and m[0, 5:80, 10:190].all() and not m[0, 120:].any()


def test_bool_masks_go_through_cv2_like_ultralytics_scale_image() -> None:
    """Binary masks: content cropped, cv2.resize INTER_LINEAR of uint8 0/1 (more than 128 masks: chunked)."""
    geometry = letterbox((427, 640), (320, 320))
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(130, 320, 320, generator=g) > 0.6
    det = rescale(torch.zeros(130, 4), torch.ones(130), np.ones(130), masks, geometry)
    assert det.masks.shape == (130, 427, 640) and det.masks.dtype == bool
    for k in (0, 129):
        crop = masks[k, 53:267].numpy().astype(np.uint8)
        expected = cv2.resize(crop, (640, 427), interpolation=cv2.INTER_LINEAR).astype(bool)
        assert np.array_equal(det.masks[k], expected)
    none = rescale(torch.zeros(0, 4), torch.ones(0), np.ones(0), masks[:0], geometry)
    assert none.masks.shape == (0, 427, 640)


@pytest.mark.parametrize("source", [(480, 640), (640, 481), (1, 1), (37, 1000)])
def test_boxes_round_trip_through_the_canvas(source: tuple[int, int]) -> None:
    """A box drawn on the source, placed on the canvas by the geometry's own scale and offset, comes back."""
    geometry = letterbox(source, (416, 416), "top_left", "floor")
    h, w = source
    box = np.array([[0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h]])
    (top, left), (fy, fx) = geometry.offset, geometry.inverse
    on_canvas = torch.tensor(box / [fx, fy, fx, fy] + [left, top, left, top], dtype=torch.float32)
    det = rescale(on_canvas, torch.ones(1), np.ones(1), None, geometry)
    np.testing.assert_allclose(det.boxes, box, rtol=1e-5, atol=1e-3)


def test_labels_are_mapped_where_the_map_has_them_and_kept_elsewhere() -> None:
    labels = torch.tensor([0, 5, 3, 99, -1, 5, 2])
    mapped = map_labels(labels, {5: 50, 2: 20, 7: 70})
    assert mapped.dtype == np.int64 and mapped.tolist() == [0, 50, 3, 99, -1, 50, 20]
    assert map_labels(np.array([4, 1], dtype=np.int32), {}).tolist() == [4, 1]
    assert map_labels(np.array([], dtype=np.int64), {1: 2}).tolist() == []
