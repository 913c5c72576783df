"""Deterministic synthetic probe images with the statistics that stress a resize kernel.

Smooth gradients exercise the interpolation weights, texture and noise exercise every tap, hard edges
exercise the extremes (0 and 255 side by side), and ``natural`` mixes all of them as photos do.
All generators are pure functions of (seed, shape), so a probe set is reproducible everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Generator = Callable[[np.random.Generator, int, int], np.ndarray]


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.linspace(0.0, 1.0, h, dtype=np.float64)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float64)[None, :]
    return y, x


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = _grid(h, w)
    angles = rng.uniform(0, 2 * np.pi, 3)
    chans = [127.5 + 127.5 * np.cos(a) * (x - 0.5) * 2 + 127.5 * np.sin(a) * (y - 0.5) * 2 for a in angles]
    return _to_uint8(np.stack(chans, axis=-1))


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = _grid(h, w)
    out = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fy, fx = rng.uniform(2, 40, 2)
            phase = rng.uniform(0, 2 * np.pi)
            out[..., c] += np.sin(2 * np.pi * (fy * y + fx * x) + phase)
    return _to_uint8(127.5 + 127.5 * out / 4)


def noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def edges(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, :, rng.integers(0, 3)] = 255
    for _ in range(6):
        y0, y1 = sorted(rng.integers(0, h + 1, 2))
        x0, x1 = sorted(rng.integers(0, w + 1, 2))
        img[y0:y1, x0:x1] = rng.choice([0, 255], size=3)
    checker = ((np.arange(h)[:, None] // 3 + np.arange(w)[None, :] // 3) % 2).astype(bool)
    img[checker & (rng.random((h, w)) < 0.1)] = 255
    return img


def natural(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = 0.5 * gradient(rng, h, w) + 0.3 * texture(rng, h, w)
    base += rng.normal(0, 8, (h, w, 3))
    mask = edges(rng, h, w).astype(bool)
    return _to_uint8(np.where(mask, base + 40, base - 10))


GENERATORS: dict[str, Generator] = {
    "gradient": gradient,
    "texture": texture,
    "noise": noise,
    "edges": edges,
    "natural": natural,
}


def make(name: str, seed: int, height: int, width: int) -> np.ndarray:
    """One uint8 H×W×3 probe image; the same (name, seed, shape) always gives the same pixels."""
    key = [seed, height, width, sorted(GENERATORS).index(name)]
    return GENERATORS[name](np.random.default_rng(key), height, width)
