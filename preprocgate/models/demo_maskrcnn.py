"""The demo detector: a torchvision Mask R-CNN on a MobileNetV3-Large FPN, sized to commit (≈6M parameters).

It consumes the gate's preprocessed tensor as is: torchvision's own resize and normalisation are replaced by
a pass-through, so what the gate compares (the preprocessing variants) is exactly what the network sees.
Requires torchvision; CI runs its ONNX export on ONNX Runtime instead.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 5  # background + the demo dataset's 4 categories (ids 1..4)
INPUT_SIZE = (320, 320)


def _pass_through_transform(size: tuple[int, int]) -> nn.Module:
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class PassThrough(GeneralizedRCNNTransform):
        """Batches images without resizing or normalising them: the gate's variants already did."""

        def normalize(self, image: torch.Tensor) -> torch.Tensor:
            return image

        def resize(self, image, target=None):  # type: ignore[no-untyped-def]
            return image, target

    return PassThrough(min(size), max(size), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], size_divisible=32)


def build_network(num_classes: int = NUM_CLASSES, score_thresh: float = 0.05, channels: int = 128) -> nn.Module:
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    features = mobilenet_v3_large(weights=None, norm_layer=nn.BatchNorm2d).features
    # strides 8, 16, 32 (40, 112 and 960 channels) plus a max-pooled level
    backbone = BackboneWithFPN(
        features, {"6": "0", "12": "1", "16": "2"}, [40, 112, 960], channels, extra_blocks=LastLevelMaxPool()
    )
    anchors = AnchorGenerator(((16, 24), (32, 48), (64, 96), (128, 256)), ((0.5, 1.0, 2.0),) * 4)
    box_pool = MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2)
    mask_pool = MultiScaleRoIAlign(["0", "1", "2"], output_size=14, sampling_ratio=2)
    model = MaskRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(channels * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_classes),
        mask_roi_pool=mask_pool,
        mask_head=MaskRCNNHeads(channels, [channels] * 4, 1),
        mask_predictor=MaskRCNNPredictor(channels, channels, num_classes),
        box_score_thresh=score_thresh,
        box_detections_per_img=100,
    )
    model.transform = _pass_through_transform(INPUT_SIZE)
    return model


class DemoMaskRCNN(nn.Module):
    """Batched tensor in, torchvision-style detections out (boxes in input pixels, mask probabilities)."""

    def __init__(self, score_thresh: float = 0.05) -> None:
        super().__init__()
        self.net = build_network(score_thresh=score_thresh)

    def forward(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return self.net(list(images))


def build(score_thresh: float = 0.05) -> DemoMaskRCNN:
    """Factory named by gates as ``preprocgate.models.demo_maskrcnn:build``."""
    return DemoMaskRCNN(score_thresh=score_thresh)
