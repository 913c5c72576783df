import os
import tempfile

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
