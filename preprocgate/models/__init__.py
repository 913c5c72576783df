"""Model adapters: what turns a variant's tensor into detections. Built-ins load lazily; third-party adapters
register through the ``preprocgate.models`` entry-point group."""

from preprocgate.models.base import Detections, ModelAdapter, rescale
from preprocgate.registry import Registry

MODELS: Registry[type[ModelAdapter]] = Registry("model adapter", "preprocgate.models")
MODELS.register("torch", "preprocgate.models.torch_module:TorchModuleAdapter")
MODELS.register("onnxruntime", "preprocgate.models.ort:OnnxRuntimeAdapter")
MODELS.register("rfdetr", "preprocgate.models.rfdetr:RFDETRAdapter")
MODELS.register("ultralytics", "preprocgate.models.yolo:UltralyticsAdapter")
MODELS.register("yolox", "preprocgate.models.yolo:YoloxAdapter")

__all__ = ["MODELS", "Detections", "ModelAdapter", "rescale"]
