"""glibc's malloc kept from handing freed memory back to the system while a dump runs.

Why: a dump makes and drops megabytes of short-lived strings a batch (RF-DETR's random-weight masks: about 40 MB
of RLE text a batch of 8, decoded into one ``str`` a mask, then joined into the part file's text).
glibc returns the top of its heap to the system as soon as more than ``M_TRIM_THRESHOLD`` (128 KiB) of it is
free, so the next batch's strings land on fresh pages, and the kernel faults and zeroes every one of them again.
On an H100 host that page-fault work was most of the GPU RLE's host time: ``encode_many_json`` of RF-DETR's
logits 3.84 → 1.84 ms an image with the trimming held back; the RF-DETR dumps were 11–14% faster in one A/B
pair, a gain the run-to-run spread of whole dumps (±15%) hid in later runs (benchmarks/RESULTS.md, 2026-12-07).
Only the trimming: the memory still serves the process's next allocations, and is handed back at the end
(``malloc_trim``).

Setting any of these thresholds turns off glibc's own adjustment of them: by default its mmap threshold rises
from 128 KiB to the size of each mmapped block freed (at most 32 MiB) and its trim threshold with it (twice
that), so a process that makes and drops megabyte arrays soon takes them from the heap. Fixed at 128 KiB, every
such array would be mapped and faulted in afresh (13× slower for 1 MB numpy arrays on a 2-core CPU). So the mmap
threshold is set at that ceiling throughout, and after a dump the trim threshold at twice it: where glibc's
adjustment ends up in a process that handles large arrays.

Where the environment already tunes these thresholds (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_MMAP_THRESHOLD_`` or their ``GLIBC_TUNABLES``), the process is left as its owner set it: that is also how
to time a dump without this (``MALLOC_TRIM_THRESHOLD_=131072``, glibc's default). Elsewhere (macOS, Windows,
musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt's parameter numbers (malloc.h)
GLIBC_TOP_PAD = 128 * 1024  # its default (mallopt(3))
MMAP_THRESHOLD = 32 << 20  # glibc's ceiling for its own adjustment on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
AFTER_TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what its adjustment sets beside that
TRIM_THRESHOLD = 1 << 30  # free memory kept at the heap's top before any is handed back, while a dump runs
TOP_PAD = 512 << 20  # extra heap asked for at each growth (only touched pages cost memory)
_ENVIRONMENT = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")
_TUNABLES = ("glibc.malloc.trim_threshold", "glibc.malloc.top_pad", "glibc.malloc.mmap_threshold")

_lock = threading.Lock()
_holders = 0  # dumps running in this process with the trimming held back
_for_good = False  # a worker process keeps it held back (:func:`hold_back_for_good`)


@functools.cache
def _glibc() -> Any | None:
    """The C library's handle where it is glibc (``gnu_get_libc_version`` is glibc's own), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def tuned_by_environment() -> bool:
    """Whether the process's owner set glibc's thresholds: then they are theirs."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(name in os.environ for name in _ENVIRONMENT) or any(name in tunables for name in _TUNABLES)


def _ours() -> bool:
    """Whether this process's thresholds are preprocgate's to set: glibc's malloc, not tuned by its owner."""
    return _glibc() is not None and not tuned_by_environment()


def _set(trim_threshold: int, top_pad: int) -> None:
    libc = _glibc()
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
    libc.mallopt(M_TOP_PAD, top_pad)


@contextmanager
def trimming_held_back() -> Iterator[bool]:
    """Yields whether glibc's trimming is held back inside (see the module's docstring); nested and concurrent
    uses share one setting; when the last ends, the thresholds glibc's own adjustment would have reached are
    set and the free heap is handed back."""
    global _holders
    if not _ours():
        yield False
        return
    with _lock:
        if _holders == 0 and not _for_good:
            _set(TRIM_THRESHOLD, TOP_PAD)
        _holders += 1
    try:
        yield True
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and not _for_good:
                _set(AFTER_TRIM_THRESHOLD, GLIBC_TOP_PAD)
                _glibc().malloc_trim(0)


def hold_back_for_good() -> bool:
    """:func:`trimming_held_back` for the rest of the process: a process that only dumps (a Ray worker). Whether
    it is held back."""
    global _for_good
    if not _ours():
        return False
    with _lock:
        _for_good = True
        _set(TRIM_THRESHOLD, TOP_PAD)
    return True
