"""COCO evaluators: pycocotools (the reference) and faster-coco-eval (optional, faster, same numbers); registered
in preprocgate/plugins.py."""

from preprocgate.evaluators.base import METRICS, Evaluator
from preprocgate.plugins import EVALUATORS

__all__ = ["EVALUATORS", "METRICS", "Evaluator"]
