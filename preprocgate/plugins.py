"""Every plug-in point's registry with its built-in names, in one place below the layers that implement them.

The spec checks names against these registries and the engine resolves them; neither needs to import the
implementing packages, whose modules load only when a gate uses them. Third-party packages add names through
each registry's entry-point group.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from preprocgate.registry import Registry

VARIANTS: Registry[Callable[..., Any]] = Registry("variant", "preprocgate.variants")
VARIANTS.register("cv2", "preprocgate.variants.opencv:OpenCVResize")
VARIANTS.register("pillow", "preprocgate.variants.pillow:PillowResize")
VARIANTS.register("torch", "preprocgate.variants.torch_interpolate:TorchInterpolate")
VARIANTS.register("triton", "preprocgate.variants.triton_fused:TritonFused")

MODELS: Registry[Callable[..., Any]] = Registry("model adapter", "preprocgate.models")
MODELS.register("torch", "preprocgate.models.torch_module:TorchModuleAdapter")
MODELS.register("onnxruntime", "preprocgate.models.ort:OnnxRuntimeAdapter")
MODELS.register("rfdetr", "preprocgate.models.rfdetr:RFDETRAdapter")
MODELS.register("ultralytics", "preprocgate.models.yolo:UltralyticsAdapter")
MODELS.register("yolox", "preprocgate.models.yolo:YoloxAdapter")

EVALUATORS: Registry[Callable[..., Any]] = Registry("evaluator", "preprocgate.evaluators")
EVALUATORS.register("pycocotools", "preprocgate.evaluators.cocoeval:PycocotoolsEvaluator")
EVALUATORS.register("faster_coco_eval", "preprocgate.evaluators.cocoeval:FasterCocoEvaluator")

EXECUTORS: Registry[Callable[..., Any]] = Registry("executor", "preprocgate.executors")
EXECUTORS.register("local", "preprocgate.stages.dump:LocalExecutor")
EXECUTORS.register("ray", "preprocgate.stages.ray_executor:RayExecutor")

FORGES: Registry[Any] = Registry("forge", "preprocgate.forges")
FORGES.register("github", "preprocgate.publish.github:GitHub")
FORGES.register("gitlab", "preprocgate.publish.gitlab:GitLab")


def check_params(factory: Callable[..., Any], params: dict[str, Any]) -> str | None:
    """Whether ``params`` fit a variant factory's ``(config, device, **params)`` signature, without building it."""
    try:
        inspect.signature(factory).bind(None, None, **params)
    except (TypeError, ValueError) as exc:  # ValueError: a callable without a signature (some builtins)
        return str(exc)
    return None
