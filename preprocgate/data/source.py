"""Where a dataset's bytes come from: a local folder, or an fsspec URL (``s3://``, ``gs://``, ``az://``,
``http(s)://``, ``file://``, ``memory://``, …) that every machine of a run can open.

The one reading rule, for the driver (:func:`preprocgate.data.coco.load_coco`) and for the Ray workers: a file
that cannot be read is ``None``, which the dataset counts as "file missing or unreadable" wherever it lives.
Credentials never go in the spec: fsspec's backends read their usual environment and files (``AWS_*``,
``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_*``); credentials written into a URL (``user:password@``,
a signed query) are masked wherever the URL is shown.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec

from preprocgate.errors import RunError
from preprocgate.fileio import atomic_write_bytes
from preprocgate.redact import redact, shown_url, url_secrets

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_EXTRAS = {"aiohttp": "remote"}  # a backend's missing module → the preprocgate extra that installs it
CHUNK = 128  # files read (and held) at a time: bounds memory when the caller hashes and drops the bytes
THREADS = 8  # reads in flight, for sources without concurrent batch reads of their own


def is_url(value: str) -> bool:
    """Whether a spec value names an fsspec URL (anything with ``scheme://``) rather than a local path."""
    return bool(_SCHEME.match(value))


class BackendError(RunError):
    """No fsspec backend for a URL: its package is missing, or fsspec knows no such protocol. The message names
    the spec key already; a caller adding context re-raises it as it is."""


def _filesystem(url: str, key: str) -> tuple[Any, str]:
    """fsspec's filesystem for ``url`` and the path inside it; a missing backend or an unknown protocol is one
    line naming the spec key (exit 3)."""
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:  # a known protocol whose package is missing: fsspec chains the import's error
        missing = getattr(exc.__cause__, "name", None)
        extra = _EXTRAS.get(missing or "", "")
        install = f"pip install 'preprocgate[{extra}]'" if extra else f"pip install {missing}"
        why = f"{missing} is not installed; run: {install}" if missing else str(exc)
        raise BackendError(f"{key}: {shown_url(url)}: {why}") from None
    except ValueError as exc:  # "Protocol not known"
        protocol = url.split("://", 1)[0]
        raise BackendError(
            f"{key}: {shown_url(url)}: no fsspec backend for {protocol}:// ({exc}); known: s3, gs, az, http(s), "
            "file, memory, … (installed with their packages: s3fs, gcsfs, adlfs, aiohttp)"
        ) from None


def _reason(exc: BaseException, url: str) -> str:
    """An error of a backend as one line, without the URL's credentials (backends quote the URL they failed on)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}", url_secrets(url))


class ImageSource(ABC):
    """A folder of images, local or remote: the bytes of a file by its name from the annotations."""

    problem: str | None = None
    """The first failure that was not "no such file" (unreachable host, refused credentials), for the message
    when no image at all could be read."""

    @abstractmethod
    def read(self, file_name: str) -> bytes | None:
        """The file's bytes, or None when it is missing or cannot be read."""

    @abstractmethod
    def check(self) -> None:
        """Raise RunError now when the source cannot be used at all (a local folder that does not exist)."""

    def read_many(self, file_names: Sequence[str]) -> Iterator[bytes | None]:
        """Every file's bytes in order, :data:`CHUNK` at a time: a caller that hashes and drops each one holds
        no more than a chunk, whatever the dataset's size."""
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for start in range(0, len(file_names), CHUNK):
                yield from pool.map(self.read, file_names[start : start + CHUNK])


class LocalImages(ImageSource):
    """A folder on this machine (for the Ray executor: a path every node sees)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, file_name: str) -> bytes | None:
        try:
            return (self.folder / file_name).read_bytes()
        except OSError:
            return None

    def check(self) -> None:
        if not self.folder.is_dir():
            raise RunError(f"{self.folder}: images folder not found")

    def __str__(self) -> str:
        return str(self.folder)


class RemoteImages(ImageSource):
    """A folder named by an fsspec URL. Only the URL is pickled (a Ray worker opens its own client with its own
    credentials); an object store has no folders, so nothing is checked before the images are read."""

    def __init__(self, url: str, key: str = "dataset.images") -> None:
        self.url, self.key = url.rstrip("/"), key
        self._fs: Any = None
        self._root = ""

    def __getstate__(self) -> dict[str, str]:
        return {"url": self.url, "key": self.key}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.url, self.key = state["url"], state["key"]
        self._fs, self._root = None, ""

    def _open(self) -> Any:
        """fsspec's filesystem, opened on first use (in each process that reads)."""
        if self._fs is None:
            self._fs, self._root = _filesystem(self.url, self.key)
        return self._fs

    def check(self) -> None:
        """Opens the filesystem: a missing backend or an unknown protocol stops the run now, before any work."""
        self._open()

    def _path(self, file_name: str) -> str:
        self._open()
        return f"{self._root.rstrip('/')}/{file_name}"

    def read(self, file_name: str) -> bytes | None:
        try:
            return self._open().cat_file(self._path(file_name))
        except FileNotFoundError:
            return None
        except Exception as exc:  # each backend raises its own types: aiohttp's, botocore's, …
            self.problem = self.problem or _reason(exc, self.url)
            return None

    def read_many(self, file_names: Sequence[str]) -> Iterator[bytes | None]:
        """Asynchronous backends (HTTP, S3, GCS, Azure) fetch a chunk concurrently in one ``cat``: faster than
        a thread per file (benchmarks/dataset_source.py); the others read in threads."""
        fs = self._open()
        if not fs.async_impl:
            yield from super().read_many(file_names)
            return
        for start in range(0, len(file_names), CHUNK):
            paths = [self._path(name) for name in file_names[start : start + CHUNK]]
            found = fs.cat(paths, on_error="return")
            for path in paths:
                data = found.get(path)
                if isinstance(data, bytes):
                    yield data
                    continue
                if isinstance(data, BaseException) and not isinstance(data, FileNotFoundError):
                    self.problem = self.problem or _reason(data, self.url)
                yield None

    def __str__(self) -> str:
        return shown_url(self.url)


def images_at(value: str, base_dir: Path, key: str = "dataset.images") -> ImageSource:
    """The spec's images value: a URL as it is, a path relative to the spec's folder."""
    return RemoteImages(value, key) if is_url(value) else LocalImages((base_dir / value).resolve())


def annotations_at(value: str, base_dir: Path, cache_dir: Path, key: str = "dataset.annotations") -> tuple[Path, str]:
    """The spec's annotations as a local file (evaluators open a path) and the name messages show.

    A URL is fetched each run (it may have changed) into ``cache_dir``, named by its content: the dataset
    manifest hashes the same bytes as for a local copy, so both share every cached dump."""
    if not is_url(value):
        path = (base_dir / value).resolve()
        return path, str(path)
    fs, path = _filesystem(value, key)
    shown = shown_url(value)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise RunError(f"{shown}: annotations file not found") from None
    except Exception as exc:  # each backend raises its own types
        raise RunError(f"{shown}: annotations cannot be read: {_reason(exc, value)}") from None
    local = cache_dir / "annotations" / f"{hashlib.sha256(data).hexdigest()}.json"
    if not local.is_file():
        local.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(local, data)
    return local, shown
