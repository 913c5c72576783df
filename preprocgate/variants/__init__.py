"""Preprocessing variants: the paths a gate compares (cv2 in production, torch at training time, a fused kernel).

Every variant turns decoded uint8 H×W×3 images into the same thing: a float32 N×3×H×W RGB tensor,
``(x / 255 - mean) / std``, on the run's device. Built-in ids are registered lazily; third-party packages add
theirs through the ``preprocgate.variants`` entry-point group, and a spec may name ``module:callable`` directly.
"""

from preprocgate.registry import Registry
from preprocgate.variants.base import Preprocessor, VariantFactory, build_variant

VARIANTS: Registry[VariantFactory] = Registry("variant", "preprocgate.variants")
VARIANTS.register("cv2", "preprocgate.variants.opencv:OpenCVResize")
VARIANTS.register("torch", "preprocgate.variants.torch_interpolate:TorchInterpolate")
VARIANTS.register("triton", "preprocgate.variants.triton_fused:TritonFused")

__all__ = ["VARIANTS", "Preprocessor", "VariantFactory", "build_variant"]
