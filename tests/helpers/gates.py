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
        "report": {"output_dir": "out"},
    }
    spec.update(overrides)
    return spec


def write_gate(folder: Path, spec: dict[str, Any] | str, name: str = "gate.yaml") -> Path:
    path = folder / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
    return path
