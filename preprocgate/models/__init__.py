"""Model adapters: what turns a variant's tensor into detections. Built-ins load lazily (registered in
preprocgate/plugins.py); third-party adapters register through the ``preprocgate.models`` entry-point group."""

from preprocgate.models.base import Detections, ModelAdapter, rescale
from preprocgate.plugins import MODELS

__all__ = ["MODELS", "Detections", "ModelAdapter", "rescale"]
