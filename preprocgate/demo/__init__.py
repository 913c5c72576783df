"""The demo gate and its Mask R-CNN (ONNX), shipped as package data so that ``preprocgate demo`` runs from an
installed wheel, where the repository's gates/ and models/ folders do not exist. Data only: nothing here imports
the rest of the package."""

from __future__ import annotations

from pathlib import Path

GATE = Path(__file__).with_name("demo.yaml")
"""The packaged demo gate; its ``model.file`` is relative to this folder, its reports go to ./reports."""
