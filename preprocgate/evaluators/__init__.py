"""COCO evaluators: pycocotools (the reference) and faster-coco-eval (optional, faster, same numbers)."""

from preprocgate.evaluators.base import METRICS, Evaluator
from preprocgate.registry import Registry

EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator", "preprocgate.evaluators")
EVALUATORS.register("pycocotools", "preprocgate.evaluators.cocoeval:PycocotoolsEvaluator")
EVALUATORS.register("faster_coco_eval", "preprocgate.evaluators.cocoeval:FasterCocoEvaluator")

__all__ = ["EVALUATORS", "METRICS", "Evaluator"]
