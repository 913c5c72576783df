"""Pictures beside the report: heatmaps of a parity failure, detections of an accuracy failure, drawn once."""

from __future__ import annotations

from pathlib import Path

import pytest

from preprocgate.data import demo
from tests.helpers.gates import coco_dataset, detection_gate, invoke, write_gate

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> demo.CocoPaths:
    return demo.generate(tmp_path_factory.mktemp("data"), "val", 4, seed=3)


def failing_gate(folder: Path, data: demo.CocoPaths, **report: object) -> Path:
    """A 1-ULP-off torch path that must equal torch bit for bit, and a bound on ΔAP no real change meets."""
    spec = detection_gate(
        coco_dataset(data),
        variants={"cv2": "cv2", "torch": "torch", "off": "tests.helpers.variants:OneUlpOff"},
        probes={
            "parity": {
                "pairs": [{"candidate": "off", "reference": "torch", "thresholds": {"max_ulp": 0}}],
                "images": {"synthetic": {"generators": ["natural"]}, "sweep": ["61x77", "20x30->33x35"]},
            },
            "speed": None,
        },
        thresholds={"map": {"metrics": ["bbox.AP"], "max_abs_delta": 0.0}},
        diff={"score_threshold": 0.3, "pairs": [{"candidate": "torch", "reference": "cv2"}]},
    )
    spec["report"].update({"pictures": True, **report})
    return write_gate(folder, spec)


def test_a_failing_gate_shows_where_pixels_and_detections_moved(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    result = invoke("run", str(failing_gate(tmp_path, dataset, artifacts_url="https://ci.example/a")))
    assert result.exit_code == 1, result.output
    folder = tmp_path / "out" / "det-pictures"
    parity, detections = folder / "parity-off-vs-torch.png", folder / "detections-torch-vs-cv2.png"
    assert parity.read_bytes().startswith(PNG) and detections.read_bytes().startswith(PNG)
    assert oct(parity.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    index = (folder / "index.html").read_text()
    assert 'src="parity-off-vs-torch.png"' in index and 'src="detections-torch-vs-cv2.png"' in index
    md = (tmp_path / "out" / "det.md").read_text()
    assert "(https://ci.example/a/det-pictures/parity-off-vs-torch.png)" in md
    assert "(https://ci.example/a/det-pictures/index.html)" in md

    # warm: the pictures come from the cache, not drawn again; the Markdown is the same outside the run's fold
    from preprocgate.report import pictures
    from preprocgate.report.render import stable_part

    def refuse(*args: object) -> bytes:
        raise AssertionError("drawn again")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pictures, "parity_picture", refuse)
        mp.setattr(pictures, "detection_picture", refuse)
        again = invoke("run", str(failing_gate(tmp_path, dataset, artifacts_url="https://ci.example/a")))
    assert again.exit_code == 1, again.output
    assert stable_part((tmp_path / "out" / "det.md").read_text()) == stable_part(md)


def test_pictures_can_be_turned_off(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    result = invoke("run", str(failing_gate(tmp_path, dataset, pictures=False)))
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "out" / "det-pictures").exists()
    assert "### Pictures" not in (tmp_path / "out" / "det.md").read_text()


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask
