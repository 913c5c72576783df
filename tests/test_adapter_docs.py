"""The worked example in docs/adapters.md runs as printed: taken from the page, called directly and through a gate."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from preprocgate.cli import cli
from preprocgate.geometry import plan_batch
from tests.helpers.gates import write_gate

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"


class FakeDetector(torch.nn.Module):
    """Stands in for a detector with NMS inside: per image, a box over the middle of the input (score 0.9,
    class 0 = person) and one below any useful threshold."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = float(x.shape[-2]), float(x.shape[-1])
        rows = torch.tensor([[w / 4, h / 4, 3 * w / 4, 3 * h / 4, 0.9, 0.0], [0.0, 0.0, 8.0, 8.0, 0.01, 5.0]])
        return rows.to(x.dtype).expand(x.shape[0], 2, 6)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """docs/adapters.md's adapter, saved as my_detectors/exported.py on sys.path as the page says."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    code = next(b for b in blocks if "class ExportedDetector" in b)
    root = tmp_path_factory.mktemp("plugin")
    (root / "my_detectors").mkdir()
    (root / "my_detectors" / "__init__.py").write_text("")
    (root / "my_detectors" / "exported.py").write_text(code)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        yield importlib.import_module("my_detectors.exported")


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Saved as the page shows, with a dynamic batch axis."""
    path = tmp_path_factory.mktemp("weights") / "detector.pt2"
    batch = {"x": {0: torch.export.Dim("batch")}}
    torch.export.save(torch.export.export(FakeDetector(), (torch.zeros(2, 3, 64, 64),), dynamic_shapes=batch), path)
    return path


def test_example_maps_boxes_and_classes(example: ModuleType, program: Path) -> None:
    adapter = example.ExportedDetector(torch.device("cpu"), file=program)
    dets = adapter(torch.zeros(2, 3, 64, 64), plan_batch([(128, 256), (64, 64)], (64, 64)))
    assert [len(d) for d in dets] == [1, 1]  # the 0.01 row is below the default threshold
    np.testing.assert_allclose(dets[0].boxes, [[64, 32, 192, 96]])  # input 16..48 scaled ×4 in x, ×2 in y
    np.testing.assert_allclose(dets[1].boxes, [[16, 16, 48, 48]])
    assert dets[0].labels.tolist() == [1] and dets[0].masks is None  # class 0 is COCO category 1 (person)
    assert len(example.COCO_IDS) == 80 and example.COCO_IDS[-1] == 90
    assert adapter.identity["adapter"] == "exported-detector/1"


def test_example_runs_in_a_gate(example: ModuleType, program: Path, tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "name": "exported",
        "device": "cpu",
        "input": {"size": "64x64", "mean": [0, 0, 0], "std": [1, 1, 1]},
        "variants": {"cv2": "cv2", "torch": "torch"},
        "baseline": "cv2",
        "probes": {"parity": None, "speed": None},
        "dataset": {"demo": {"count": 2}},
        "model": {"adapter": "my_detectors.exported:ExportedDetector", "file": str(program), "batch_size": 2},
        "evaluation": {"iou_types": ["bbox"]},
        "thresholds": {"map": {"metrics": ["bbox.AP"], "max_abs_delta": 0.0}},
        "cache_dir": "cache",
        "report": {"output_dir": "out"},
    }
    result = CliRunner().invoke(cli, ["run", str(write_gate(tmp_path, spec))])
    assert result.exit_code == 0, result.output  # identical boxes from both variants: Δ AP is exactly 0
    data = json.loads((tmp_path / "out" / "exported.json").read_text())
    assert [d["detections"] for d in data["dumps"]] == [2, 2]
