"""Preprocessing variants: the paths a gate compares (cv2 in production, torch at training time, a fused kernel).

Every variant turns decoded uint8 H×W×3 images into the same thing: a float32 N×3×H×W RGB tensor,
``(x / 255 - mean) / std``, on the run's device. Built-in ids are registered lazily (preprocgate/plugins.py);
third-party packages add theirs through the ``preprocgate.variants`` entry-point group, and a spec may name
``module:callable`` directly.
"""

from preprocgate.plugins import VARIANTS
from preprocgate.variants.base import Preprocessor, VariantFactory, build_variant

__all__ = ["VARIANTS", "Preprocessor", "VariantFactory", "build_variant"]
