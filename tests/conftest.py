import os
import tempfile
from pathlib import Path

# Triton reads this when kernels are decorated: CI has no GPU, so the kernel runs in the interpreter.
os.environ.setdefault("TRITON_INTERPRET", "1")
# Gates without a cache_dir must not share caches with the user's real ones.
os.environ["PREPROCGATE_CACHE"] = tempfile.mkdtemp(prefix="preprocgate-test-cache-")

import pytest


@pytest.fixture(autouse=True)
def _reset_counting_adapter() -> None:
    """Tests that count model calls start from zero, with no injected failure."""
    from tests.helpers.models import CountingOnnx

    CountingOnnx.images_run = 0
    CountingOnnx.fail_after = None


@pytest.fixture(scope="session")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """Ground truth and perturbed detections (tests/helpers/coco_reference.py), shared by the metric tests."""
    from tests.helpers.coco_reference import perturbed_dataset

    return perturbed_dataset(tmp_path_factory.mktemp("coco"))
