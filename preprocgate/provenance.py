"""Where a result came from: device, library versions, commit. Shown in every report footer."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} (sm_{props.major}{props.minor})"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu} ({torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} torch threads)"


def device_class(device: torch.device) -> str:
    """What a cache key needs of the device: results can differ between such classes, not within one.

    On the CPU torch's bilinear kernel depends on the ISA and on whether it runs single-threaded.
    """
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda-sm{major}{minor}"
    threads = "t1" if torch.get_num_threads() == 1 else "tn"
    return f"cpu-{torch.backends.cpu.get_cpu_capability().lower()}-{threads}"


def git_commit(folder: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def collect(device: torch.device, spec_folder: Path) -> dict[str, Any]:
    from preprocgate.version import __version__

    versions = {
        "preprocgate": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "opencv": _version("opencv-python-headless") or _version("opencv-python"),
        "numpy": _version("numpy"),
    }
    if device.type == "cuda":
        versions["cuda"] = torch.version.cuda
    return {
        "device": device_name(device),
        "commit": git_commit(spec_folder),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {k: v for k, v in versions.items() if v},
    }
