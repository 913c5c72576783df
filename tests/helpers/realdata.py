"""The real photos and detectors of ../shared/data (never committed): where they are, and a skip where absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PREPROCGATE_DATA") or ROOT.parent / "shared" / "data").resolve()
COCO128 = DATA / "coco128"
MODELS = DATA / "models"

requires_data = pytest.mark.skipif(
    not (COCO128 / "val2017").is_dir() or not MODELS.is_dir(),
    reason=f"real data not found at {DATA} (set PREPROCGATE_DATA to the folder holding coco128/ and models/)",
)
