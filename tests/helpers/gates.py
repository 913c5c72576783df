"""Write small gate specs for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def small_gate(**overrides: Any) -> dict[str, Any]:
    """A quick gate: two small sweep cases, triton must equal torch bit for bit."""
    spec: dict[str, Any] = {
        "name": "t",
        "device": "cpu",
        "input": {"size": "48x40"},
        "variants": {"cv2": "cv2", "torch": "torch", "triton": "triton"},
        "baseline": "cv2",
        "probes": {
            "parity": {
                "pairs": [{"candidate": "triton", "reference": "torch", "thresholds": {"max_ulp": 0}}],
                "images": {
                    "synthetic": {"generators": ["natural", "noise"]},
                    "sweep": ["61x77", "20x30->33x35"],
                },
            },
            "speed": {"source": "60x80", "warmup": 0, "repeats": 1},
        },
        "report": {"output_dir": "out", "pictures": False},  # pictures: tests/test_pictures.py
    }
    spec.update(overrides)
    return spec


def write_gate(folder: Path, spec: dict[str, Any] | str, name: str = "gate.yaml") -> Path:
    path = folder / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
    return path


DEMO_MODEL = Path(__file__).resolve().parents[2] / "preprocgate" / "demo" / "maskrcnn_mbv3.onnx"


def detection_gate(dataset: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A detection gate on the committed demo model (ONNX Runtime, counted), no probes, cv2 as baseline."""
    spec: dict[str, Any] = {
        "name": "det",
        "device": "cpu",
        "input": {"size": "320x320"},
        "variants": {"cv2": "cv2", "torch": "torch"},
        "baseline": "cv2",
        "probes": {"parity": None, "speed": None},
        "dataset": dataset,
        "model": {"adapter": "tests.helpers.models:CountingOnnx", "file": str(DEMO_MODEL), "batch_size": 4},
        "cache_dir": "cache",
        "report": {"output_dir": "out", "pictures": False},  # pictures: tests/test_pictures.py
    }
    spec.update(overrides)
    return spec


def coco_dataset(paths: Any) -> dict[str, str]:
    """The spec's dataset section for generated COCO files (a ``demo.CocoPaths``)."""
    return {"images": str(paths.images), "annotations": str(paths.annotations)}


def invoke(*args: str) -> Any:
    """The CLI in-process, as CI would call it."""
    from click.testing import CliRunner

    from preprocgate.cli import cli

    return CliRunner().invoke(cli, list(args))
