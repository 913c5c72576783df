"""Value types shared across layers, so that no module defines its own copy."""

from __future__ import annotations

Size = tuple[int, int]
"""(height, width) in pixels."""

__all__ = ["Size"]
