"""Detection dumps: every variant's preprocessing, then the same model, on the same decoded images.

An unchanged variant is read from the cache instead of recomputed (its adapter is never called); a
partially written dump resumes from its finished parts. What the cache lacks is computed by an executor
(``EXECUTORS`` in plugins.py): :class:`LocalExecutor` in this process, or ``ray`` (stages/ray_executor.py)
on the workers of a Ray cluster. Every executor infers the same batches and the driver writes every part.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from preprocgate import geometry
from preprocgate.cache import DumpCache, part_texts
from preprocgate.data.coco import CocoDataset
from preprocgate.errors import RunError
from preprocgate.functional.coco import EncodedMasks, portable, to_results_json
from preprocgate.functional.masks import UpsampledMasks
from preprocgate.keys import DumpDigest, dump_digest, dump_key
from preprocgate.models import ModelAdapter
from preprocgate.models.base import Detections
from preprocgate.results import DumpSummary
from preprocgate.spec import InputSpec
from preprocgate.stages.allocator import trimming_held_back
from preprocgate.timing import StageTimes, work
from preprocgate.variants import Preprocessor
from preprocgate.variants.arena import ImageArena, Slot, physical_memory

T = TypeVar("T")
_IN_FLIGHT = 2  # batches inferred but not yet written: enough to overlap encoding with the next inference
KEEP_SHARE = 0.4  # of the host's memory: decoded images kept for the next variants, at most (else streamed)
MAX_LOOKAHEAD = 4  # batches the local executor may launch before it waits for the oldest one's detections
STREAM_AHEAD = 4  # batches decoded ahead of the one inferred, where images are streamed rather than kept


@dataclass(frozen=True)
class Dump:
    """One variant's detections (COCO result records by image id) and where they came from.

    ``results`` is read on first use (``load``): a warm run whose metrics, diffs and pictures are cached by the
    dumps' digests never reads a part file, which at COCO scale with masks is most of a warm run's time."""

    variant: str
    key: str
    digest: str
    image_ids: tuple[int, ...]
    detections: int
    cached_images: int
    computed_images: int
    seconds: float
    load: Callable[[], dict[int, list[dict]]] = field(repr=False, compare=False)

    @classmethod
    def of(
        cls,
        variant: str,
        key: str,
        results: dict[int, list[dict]],
        cached: int,
        computed: int,
        seconds: float,
        digest: str | None = None,
    ) -> Dump:
        """A dump whose results are in memory (``digest``: theirs, when already known)."""
        detections = sum(len(v) for v in results.values())
        return cls(
            variant, key, digest or dump_digest(results), tuple(sorted(results)), detections, cached, computed,
            seconds, lambda: results,
        )  # fmt: skip

    @cached_property
    def results(self) -> dict[int, list[dict]]:
        results = self.load()
        if tuple(sorted(results)) != self.image_ids:
            raise RunError(
                f"dump of {self.variant}: its cached parts changed since it was completed "
                f"({len(results)} of {len(self.image_ids)} images readable); run again to recompute them"
            )
        return results

    def summary(self) -> DumpSummary:
        return DumpSummary(
            self.variant,
            self.key,
            self.digest,
            len(self.image_ids),
            self.detections,
            self.cached_images,
            self.computed_images,
            self.seconds,
        )

    @property
    def records(self) -> list[dict]:
        return [r for image_id in sorted(self.results) for r in self.results[image_id]]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: a contiguous run of whole batches of the image list, for one process or CI
    job. Whole batches: every image is inferred in the same batch as in a single-process run, so that models
    whose kernels depend on batch composition (GPU convolutions may) still give identical dumps."""

    index: int
    count: int

    def select(self, ids: list[int], batch_size: int = 1) -> list[int]:
        batches = -(-len(ids) // batch_size)
        lo, hi = batches * self.index // self.count, batches * (self.index + 1) // self.count
        return ids[lo * batch_size : hi * batch_size]

    @property
    def tag(self) -> str:
        return f"s{self.index}of{self.count}"


def batches(ids: list[int], batch_size: int) -> list[list[int]]:
    """The batches a dump infers: consecutive, whole, in id order. Every executor uses these and no others, so
    that models whose kernels depend on batch composition (GPU convolutions may) give identical dumps."""
    return [ids[lo : lo + batch_size] for lo in range(0, len(ids), batch_size)]


def infer_batch(
    variant: Preprocessor,
    adapter: ModelAdapter,
    input_spec: InputSpec,
    batch: Sequence[np.ndarray],
    times: StageTimes,
    encode: bool = True,
) -> list[Detections]:
    """One batch through preprocessing and the model, to host-only detections (:func:`portable`; ``encode``
    False: masks left where the model put them, for the caller to encode): :func:`launch_batch` and its
    detections at once. With ``encode``, each call ends with the thread's stream synchronised, so that its
    queued kernels are not counted as the engine's encoding after it."""
    detections = launch_batch(variant, adapter, input_spec, batch, times, wait=encode)()
    if not encode:
        return detections
    with times.measure("infer+postprocess"):
        return portable(detections)


def launch_batch(
    variant: Preprocessor,
    adapter: ModelAdapter,
    input_spec: InputSpec,
    batch: Sequence[np.ndarray],
    times: StageTimes,
    wait: bool = False,
) -> Callable[[], list[Detections]]:
    """One batch's preprocessing and model queued (:meth:`ModelAdapter.launch`); the call returned waits for
    what the adapter waits for (a detector's boxes and scores on the host) and gives the detections, masks left
    where the model put them. The variant's and the adapter's calls are the gate's work
    (:func:`preprocgate.timing.work`).

    ``wait``: the thread's stream synchronised after the variant's call and after the adapter's, so that each
    stage's time holds its device time. Without it (the local executor's ``encode_stream``: another thread
    encodes the masks) nothing waits here beyond the adapter's own waits: the model's remaining kernels
    (RF-DETR: its masks picked for the encoder) run on while this thread queues the next batch, which waits for
    them only when it waits for its own. The stages' split then counts a kernel where it is waited for: still
    inside the work, but ``preprocess`` and ``infer+postprocess`` are the host's queuing and waiting, not each
    step's device time."""
    with torch.inference_mode():
        with times.measure("preprocess"), work():
            tensor = variant(list(batch))
            if wait:
                variant.synchronize()
        with times.measure("infer+postprocess"):
            plan = geometry.plan_batch([im.shape[:2] for im in batch], input_spec.size, input_spec.resize)
            with work():
                finish = adapter.launch(tensor, plan)

    def detections() -> list[Detections]:
        with torch.inference_mode(), times.measure("infer+postprocess"), work():
            taken = finish()
            if wait:
                variant.synchronize()  # the run's device, which the adapter shares
            return taken

    return detections


def shape_groups(images: Sequence[T], shape_of: Callable[[T], tuple[int, ...]]) -> list[list[T]]:
    """A batch's images by shape, the groups in the order a variant's call meets them (each at its first image,
    as :meth:`Preprocessor.__call__ <preprocgate.variants.base.Preprocessor.__call__>` groups them): the runs an
    :class:`~preprocgate.variants.arena.ImageArena` places back to back."""
    groups: dict[tuple[int, ...], list[T]] = {}
    for image in images:
        groups.setdefault(shape_of(image), []).append(image)
    return list(groups.values())


@dataclass(frozen=True)
class Recipe:
    """How another process rebuilds this run's model and variants (a remote executor's workers): registry names
    or ``module:attr`` references and their params, the model file and the device type (never an index: each
    worker uses the device its scheduler gave it)."""

    adapter: str
    model_file: Path
    precision: str
    params: dict[str, Any]
    device: str
    variants: dict[str, tuple[str, dict[str, Any]]]


@dataclass
class DumpJob:
    """The images of one variant's dump that the cache lacks, handed to an executor. ``tag`` prefixes the part
    files (the shard); :meth:`finished` records a written part and reports progress."""

    name: str
    key: str
    tag: str
    variant: Preprocessor
    todo: list[int]
    done: dict[int, list[dict]]
    on_batch: Callable[[int, int], None] | None = None
    computed: int = field(default=0, init=False)
    digest: DumpDigest = field(default_factory=DumpDigest, init=False)
    """The parts' records fed in id order as they are written (the writer's texts): the dump's digest without
    encoding it all again, when the job wrote the whole dump in order."""

    def finished(self, part: dict[int, list[dict]]) -> None:
        self.done.update(part)
        self.computed += len(part)
        if self.on_batch is not None:
            self.on_batch(self.computed, len(self.todo))


class Executor(Protocol):
    """Computes a :class:`DumpJob`: decodes its images (recording unusable ones in ``stage.dataset.corrupt``),
    infers :func:`batches` of the usable ones, and writes each part to ``stage.cache`` from this process.
    ``decodes_here``: whether it decodes in this process, from the bytes the dataset read for its manifest; an
    executor whose workers read the images themselves says False, and the dataset drops each image's bytes once
    hashed."""

    decodes_here: bool

    def compute(self, stage: DumpStage, job: DumpJob) -> None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """This process: two writer threads (:class:`PartWriter`) encode and write while the next batch is inferred.
    The inferring thread hands them host-only detections (:func:`portable`): masks on a GPU are compressed to COCO
    RLE there, so only their strings cross to the host and the device memory is freed at once.

    Measured on an H100 and dropped (benchmarks/RESULTS.md): preprocessing the next batch in a third thread
    (it contends for the GIL with a forward bound by Python) and a writer process instead of the thread (the
    same inference time per image, plus seconds of process start per variant).

    ``encode_stream`` (default on; ``executor: {kind: local, params: {encode_stream: false}}`` turns it off):
    masks on a CUDA device are run-length encoded by the writer thread, on a CUDA stream of its own, instead of
    by the inferring thread: the next batch's preprocessing and forward are queued while the GPU encodes the last
    one, and the encoder's host synchronisations no longer stop the inferring thread. Same strings. It only
    overlaps because the inferring thread waits for its own stream, not the device
    (:meth:`~preprocgate.variants.base.Preprocessor.synchronize`); with that, RF-DETR's GPU dumps ran 14–37%
    faster with it on an H200 and an H100 (benchmarks/RESULTS.md). With it on, the inferring thread does not
    wait for the model's last kernels either (:func:`infer_batch`): the masks' resize runs while it queues the
    next batch. Elsewhere it changes nothing.

    ``arena`` (default on; ``params: {arena: false}`` turns it off): images are decoded into an
    :class:`~preprocgate.variants.arena.ImageArena`, page-locked on CUDA, each batch's shape groups back to back,
    so that a GPU variant uploads a group without stacking it on the host first. Off: each image its own array,
    stacked per call, as before (``benchmarks/rfdetr_gpu.py --local-params '{}' '{"arena": false}'``).

    ``image_memory_gb`` (default: :data:`KEEP_SHARE` of the host's memory): the most decoded images kept for the
    next variants, in GB (10⁹ bytes); a dataset whose images need more is decoded again for each variant, a few
    batches ahead, in bounded memory (:meth:`DumpStage.decoded_batches`). Same dumps either way.

    ``switch_interval_ms`` (default: Python's, 5 ms): the interpreter's thread switch interval while a dump runs.
    The writer's encoding thread holds the GIL for about a millisecond an image; the inferring thread, which
    launches a model's kernels one by one from Python, gives the GIL up at each host synchronisation and may then
    wait a whole interval to take it back. A shorter interval returns it sooner, at the cost of more switches.
    Timed on an H100 at 0.5 and 1 ms: no effect beyond the spread between runs (``benchmarks/rfdetr_gpu.py
    --local-params '{}' '{"switch_interval_ms": 0.5}'``), so Python's stays the default. Same dumps either way.

    ``lookahead`` (default 1, at most :data:`MAX_LOOKAHEAD`): batches launched (:func:`launch_batch`: their
    preprocessing, forward and postprocess queued) before the thread waits for the oldest one's detections.
    With 0 the thread waits for each batch's boxes before it preprocesses the next, so the GPU idles while the
    host makes one batch's detections and queues the next batch (RF-DETR dumps on an H100 kept the GPU busy
    47–56% of the time; benchmarks/RESULTS.md). With 1 the next batch's forward is queued behind this one's
    first, and runs while the host finishes this one. It changes only when the host waits: the kernels are
    queued in the same order on the same stream, and each batch's masks are handed to the writer's stream
    behind every kernel that made them (:meth:`MasksOnStream.hand_over`), so the dumps are the same. It matters
    where the device runs behind the host (CUDA with ``encode_stream``); elsewhere each batch is computed at its
    launch. Where a batch fails to launch (its decoding, preprocessing or forward), the batches launched before
    it are still written, so a resumed run computes what it would without the lookahead; where taking a batch's
    detections fails, the batches launched after it are lost (at most ``lookahead``) and a resumed run computes
    them. Default 1 from RF-DETR's dumps on an H100 (benchmarks/RESULTS.md, 2026-12-07),
    0 and 1 alternating: the cv2 dump 14% faster with 1 in both pairs, torch and triton within −4 to +10%
    (mean +2–3%), the same digests.
    """

    decodes_here = True

    def __init__(
        self,
        encode_stream: bool = True,
        arena: bool = True,
        image_memory_gb: float | None = None,
        switch_interval_ms: float | None = None,
        lookahead: int = 1,
    ) -> None:
        interval = param_number(
            "switch_interval_ms", switch_interval_ms, lambda v: 0 < v <= 100, "milliseconds above 0, at most 100"
        )
        ahead = param_number(
            "lookahead", lookahead, lambda v: v in range(MAX_LOOKAHEAD + 1), f"batches, 0 to {MAX_LOOKAHEAD}"
        )
        self.lookahead = 1 if ahead is None else int(ahead)
        self.encode_stream = encode_stream
        self.arena = arena
        self.image_memory = image_memory_bytes(image_memory_gb)
        self.switch_interval = None if interval is None else interval / 1e3

    def compute(self, stage: DumpStage, job: DumpJob) -> None:
        saved = sys.getswitchinterval()
        if self.switch_interval is not None:
            sys.setswitchinterval(self.switch_interval)
        try:
            self._compute(stage, job)
        finally:
            sys.setswitchinterval(saved)

    def _compute(self, stage: DumpStage, job: DumpJob) -> None:
        first = len(list(stage.cache.folder(job.key).glob(f"part-{job.tag}-*.json")))
        parts: deque[Future] = deque()
        launched: deque[tuple[str, list[int], Callable[[], list[Detections] | MasksOnStream]]] = deque()
        device = job.variant.device
        side = torch.cuda.Stream(device) if self.encode_stream and device.type == "cuda" else None
        with PartWriter(stage.cache, job.key, job.digest) as writer:

            def submit_oldest() -> None:
                name, chunk, detections = launched.popleft()
                parts.append(writer.submit(name, chunk, detections()))
                take_written(stage, job, parts, keep=_IN_FLIGHT)

            def drain() -> None:
                while launched:
                    submit_oldest()
                take_written(stage, job, parts, keep=0)

            try:
                batches = stage.decoded_batches(job.todo, device, self.arena, self.image_memory)
                for n, (chunk, images) in enumerate(batches):
                    launched.append((f"{job.tag}-{first + n:06d}", chunk, _launch(stage, job, images, side)))
                    if len(launched) > self.lookahead:
                        submit_oldest()
            except Exception:
                # the batches launched before the failure are still written where they can be, so that a
                # resumed run computes no more than it would without the lookahead; the failure is what is raised
                with suppress(Exception):
                    drain()
                raise
            drain()

    def close(self) -> None:
        pass


class DumpStage:
    """Computes what the cache lacks through its executor (default: :class:`LocalExecutor`)."""

    def __init__(
        self,
        cache: DumpCache,
        adapter: ModelAdapter,
        dataset: CocoDataset,
        batch_size: int,
        key_base: dict,
        input_spec: InputSpec,
        excluded: dict[int, str] | None = None,
        executor: Executor | None = None,
        recipe: Recipe | None = None,
    ) -> None:
        """``key_base``: :func:`preprocgate.keys.dump_base`. ``excluded``: images already known unusable (another
        stage's :attr:`corrupt`), left out as they were there. ``recipe``: for executors that infer in other
        processes."""
        self.executor = executor or LocalExecutor()
        self.recipe = recipe
        self.cache = cache
        self.input_spec = input_spec
        self.adapter = adapter
        self.dataset = dataset
        self.batch_size = batch_size
        self.key_base = key_base
        self._excluded: dict[int, str] = dict(excluded or {})
        self._decoded: dict[int, np.ndarray] = {}
        self._kept_bytes = 0  # of the images in ``_decoded``, or reserved for them
        self._arena: ImageArena | None = None
        self.times = StageTimes()

    def key(self, variant_identity: dict) -> str:
        return dump_key(self.key_base, variant_identity)

    @property
    def corrupt(self) -> dict[int, str]:
        """Images left out of every dump: found unusable now (the dataset's decode) or when a cached dump was made."""
        return {**self.dataset.corrupt, **self._excluded}

    @property
    def valid(self) -> list[int]:
        """The ids every dump covers, in order."""
        corrupt = self.corrupt
        return [r.id for r in self.dataset.records if r.id not in corrupt]

    @property
    def seconds(self) -> dict[str, float]:
        """Time per step (decode, preprocess, infer, write) over every dump this stage made."""
        return self.times.seconds

    def mine(self, shard: Shard | None) -> list[int]:
        """The ids a run with ``shard`` dumps: the shard's whole batches of :attr:`valid`, or all of them."""
        return shard.select(self.valid, self.batch_size) if shard else self.valid

    def decoded_batches(
        self, ids: list[int], device: torch.device | None = None, arena: bool = True, memory: float | None = None
    ) -> Iterator[tuple[list[int], list[np.ndarray]]]:
        """:func:`batches` of the images of ``ids`` that decode, each with its images as soon as they are: the
        first variant's dump infers while the rest decode ahead (``decode`` times only the waits), and every image
        is kept, read-only, for the next variants'. The batches are those of the usable images in id order, as
        every executor infers them, whichever images turn out unusable.

        The images are decoded into an :class:`~preprocgate.variants.arena.ImageArena` (page-locked when
        ``device`` is a GPU), each shape group of a batch back to back, so that a variant takes the group
        without stacking it again; an image found unusable shifts the batches after it, whose groups are then
        stacked as usual. ``arena`` False: each image an array of its own, as the decoder made it.

        ``memory``: the most bytes of decoded images kept for the next variants (default: :data:`KEEP_SHARE` of
        the host's memory). Where this call's would pass it, its images are decoded :data:`STREAM_AHEAD`
        batches ahead and dropped once inferred (their arena's slabs with them), and the next variant decodes
        them again: a dataset larger than memory runs in bounded memory, at the price of a decode per variant.
        The images and batches are the same either way."""
        corrupt = set(self.corrupt)
        missing = [i for i in ids if i not in self._decoded and i not in corrupt]
        need = sum(math.prod(self.shapes[i]) for i in missing)
        keep = self._kept_bytes + need <= (physical_memory() * KEEP_SHARE if memory is None else memory)
        self._kept_bytes += need if keep else 0
        target = self._arena_for(keep, device) if arena and missing else None
        slots = self._reserve(target, [i for i in ids if i not in corrupt], set(missing)) if target else {}
        held = self._decoded if keep else {}

        def place(i: int, image: np.ndarray) -> np.ndarray:
            slot = slots.get(i)
            return target.fill(slot, image) if target is not None and slot is not None else image

        fresh = self.dataset.decode_each(missing, place=place, ahead=None if keep else STREAM_AHEAD * self.batch_size)
        pending = set(missing)
        # where streaming: per position, the first slab an image from there on lies in (the earlier ones can go)
        still_needed = [] if keep else _suffix_min([slots[i].slab if i in slots else math.inf for i in ids])
        chunk: list[int] = []
        try:
            for n, i in enumerate(ids):
                if i in pending:
                    with self.times.measure("decode"):
                        found, image = next(fresh)
                    assert found == i, "decode_each keeps the order it was given"
                    if image is not None:
                        held[i] = ImageArena.seal(image)
                if i in held or i in self._decoded:
                    chunk.append(i)
                if chunk and (len(chunk) == self.batch_size or n == len(ids) - 1):
                    yield chunk, [held[j] if j in held else self._decoded[j] for j in chunk]
                    if not keep:  # inferred: dropped, and the slabs no later image lies in
                        for j in chunk:
                            held.pop(j, None)
                        if target is not None:
                            target.release(below=still_needed[n + 1])
                    chunk = []
        finally:
            fresh.close()

    def _arena_for(self, keep: bool, device: torch.device | None) -> ImageArena:
        """The stage's arena for images kept for the next variants, or an arena of their own for images
        streamed through once."""
        pinned = device is not None and device.type == "cuda"
        if not keep:
            return ImageArena(pinned=pinned)
        if self._arena is None:
            self._arena = ImageArena(pinned=pinned)
        return self._arena

    @cached_property
    def shapes(self) -> dict[int, tuple[int, int, int]]:
        """Each image's decoded shape, from the annotations: what its arena slot and its memory take."""
        return {r.id: (r.height, r.width, 3) for r in self.dataset.records}

    def _reserve(self, target: ImageArena, usable: list[int], missing: set[int]) -> dict[int, Slot]:
        """Slots in ``target`` for the ``missing`` images of the batches of ``usable``: per batch, each shape
        group back to back."""
        groups = (
            group
            for batch in batches(usable, self.batch_size)
            for group in shape_groups([i for i in batch if i in missing], self.shapes.__getitem__)
        )
        return target.reserve_groups(groups, self.shapes.__getitem__)

    def run(
        self,
        name: str,
        variant: Preprocessor,
        variant_identity: dict,
        shard: Shard | None = None,
        compute: bool = True,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> Dump:
        """The variant's dump: from the cache where present, computed otherwise (``compute=False``: a merge
        of shard dumps, where a missing image is an error). With a shard, only its images are computed.
        ``on_progress(done, total)`` after each batch (a progress bar's ``Task.update``)."""
        start = time.perf_counter()
        key = self.key(variant_identity)
        complete = self.cache.complete(key)
        if complete is not None:  # images found corrupt when this dump was computed stay excluded
            self._excluded.update({int(k): v for k, v in complete.get("corrupt", {}).items()})
            known = self.cache.intact(key, complete, self.valid)
            if known is not None:  # nothing to compute, and nothing read until something needs the records
                if on_progress is not None:
                    finished = len(self.mine(shard))
                    on_progress(finished, finished)
                digest, detections = known
                ids = tuple(self.valid)
                return Dump(
                    name, key, digest, ids, detections, len(ids), 0, time.perf_counter() - start,
                    lambda: self._read(key),
                )  # fmt: skip
        done = self.cache.load_parts(key)
        cached = len(done)
        job: DumpJob | None = None
        if complete is not None:
            lost = sum(1 for i in self.valid if i not in done)
            if lost:  # a part was damaged and discarded: the marker no longer tells the truth
                self.cache.discard_marker(key, f"{lost} image(s) missing from its parts")
                complete = None
        if complete is None:
            ids = self.mine(shard)
            todo = [i for i in ids if i not in done]
            if todo and not compute:
                raise RunError(
                    f"{name}: {len(todo)} of {len(self.valid)} images have no dump in {self.cache.folder(key)}; "
                    "run the missing shards first (preprocgate run --shard i/N)"
                )
            if todo:
                tag = shard.tag if shard else "all"
                ready = len(ids) - len(todo)

                def report(computed: int, _todo: int) -> None:
                    if on_progress is not None:
                        on_progress(ready + computed, len(ids))

                report(0, len(todo))
                job = DumpJob(name, key, tag, variant, todo, done, report)
                self.executor.compute(self, job)
        if on_progress is not None:  # a dump read whole from the cache ends at its full count too
            finished = self.mine(shard)
            on_progress(sum(1 for i in finished if i in done), len(finished))
        results = {i: done[i] for i in self.valid if i in done}
        cached = min(cached, len(results))
        # the writer's digest where it wrote the whole dump in order (a fresh local dump), else all encoded again
        streamed = job.digest if job is not None and job.digest.ok and job.digest.ids == list(results) else None
        digest = streamed.hexdigest() if streamed is not None else None
        dump = Dump.of(name, key, results, cached, len(results) - cached, time.perf_counter() - start, digest)
        if (complete is None or "digest" not in complete) and all(i in done for i in self.valid):
            # its digest and parts recorded (also for a marker from before they were): the next run reads nothing
            corrupt = {str(k): v for k, v in sorted(self.corrupt.items())}
            self.cache.mark_complete(key, name, dump.digest, dump.detections, self.valid, corrupt)
        return dump

    def _read(self, key: str) -> dict[int, list[dict]]:
        """A completed dump's records, read when first needed."""
        done = self.cache.load_parts(key)
        return {i: done[i] for i in self.valid if i in done}


@dataclass(frozen=True)
class MasksOnStream:
    """A batch's detections whose masks are still on the GPU, handed to another thread to encode on ``stream``
    once the inferring thread's stream has produced them (``ready``)."""

    detections: list[Detections]
    stream: torch.cuda.Stream
    ready: torch.cuda.Event

    @classmethod
    def hand_over(cls, detections: list[Detections], stream: torch.cuda.Stream) -> MasksOnStream:
        """Recorded when the detections are taken, not when their batch was launched: taking them may queue the
        kernels that make the masks (an adapter's filtering or mapping back, RF-DETR's with a score threshold or
        a letterbox). With the executor's ``lookahead`` the encoding then also waits for the batches launched
        since, one forward or so later; the writer keeps :data:`_IN_FLIGHT` parts in flight for that."""
        ready = torch.cuda.Event()
        ready.record(torch.cuda.current_stream(stream.device))  # the inferring thread's stream, behind the masks
        for d in detections:
            masks = d.masks.logits if isinstance(d.masks, UpsampledMasks) else d.masks
            if isinstance(masks, torch.Tensor) and masks.is_cuda:
                masks.record_stream(stream)  # their memory is not reused before ``stream``'s reads
        return cls(detections, stream, ready)

    def portable(self) -> list[Detections]:
        self.stream.wait_event(self.ready)
        with torch.cuda.stream(self.stream), torch.inference_mode():  # as the inferring thread encodes
            return portable(self.detections)


class PartWriter:
    """A dump's parts encoded on one thread and written on another, in order, while the caller infers the next
    batch; the digest's sha256 of each part runs on a third thread beside its file's writing and sync. Encoding
    (COCO records, their JSON text) holds the GIL; writing (joining the texts, the file and its sync) and hashing
    do not, so all three overlap: on RF-DETR-like masks (megabytes of RLE an image) the hash and the write with
    its sync take about as long each (benchmarks/dump_overhead.py). Masks still on a GPU (:class:`MasksOnStream`)
    are run-length encoded on a fourth thread first: that step mostly waits for the GPU (the batch's
    postprocessing, then the RLE's kernels), and on the encoding thread those waits held back the previous
    batch's records (RF-DETR on an H100: the encoding thread, 15.7 ms a batch, half of it the RLE, set the
    dump's pace; benchmarks/RESULTS.md). The digest is fed one part after another in submission order. Used as
    a context manager, it keeps the dump's records out of the garbage collector's way while it runs
    (:func:`heap_frozen`): after each part is written, what is alive is frozen; and glibc's malloc keeps the
    memory the parts' strings free for the next ones (:func:`~preprocgate.stages.allocator.trimming_held_back`)."""

    def __init__(self, cache: DumpCache, key: str, digest: DumpDigest | None = None) -> None:
        self.cache, self.key, self.digest = cache, key, digest
        self._heap = ExitStack()
        self.freeze = False  # :func:`heap_frozen`'s, once entered
        self._masks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preprocgate-rle")
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preprocgate-encode")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preprocgate-write")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preprocgate-digest")

    def submit(
        self, name: str, chunk: list[int], detections: list[Detections] | MasksOnStream
    ) -> Future[tuple[dict[int, list[dict]], float]]:
        """The part's records and the seconds its threads spent on it, once it is written."""
        masks = self._masks.submit(_portable, detections)
        return self._writer.submit(self._write, name, self._encoder.submit(_encode_part, chunk, masks))

    def submit_records(
        self, name: str, part: dict[int, list[dict]], escaped: dict[int, Sequence[bytes]]
    ) -> Future[tuple[dict[int, list[dict]], float]]:
        """Records made in another process (a Ray worker's), with the JSON text of the strings it escaped
        (:func:`escaped_counts`): written as :meth:`submit`'s are, so that the process receiving them only
        receives."""
        return self._writer.submit(self._write, name, self._encoder.submit(_records_texts, part, escaped))

    def _write(self, name: str, encoded: Future) -> tuple[dict[int, list[dict]], float]:
        part, texts, seconds = encoded.result()
        begin = time.perf_counter()
        hashed = self._hasher.submit(self.digest.add_part, texts) if self.digest is not None else None
        self.cache.write_texts(self.key, name, texts)
        if hashed is not None:
            hashed.result()
        seconds += time.perf_counter() - begin
        if self.freeze:  # the garbage cycles made since the last part collected, then all alive frozen
            gc.collect(1)  # only the objects made since the last freeze: a cycle of tensors is not kept for long
            gc.freeze()
        return part, seconds

    def close(self) -> None:
        self._masks.shutdown()
        self._encoder.shutdown()
        self._writer.shutdown()
        self._hasher.shutdown()
        self._heap.close()

    def __enter__(self) -> PartWriter:
        self.freeze = self._heap.enter_context(heap_frozen())
        self._heap.enter_context(trimming_held_back())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _launch(
    stage: DumpStage, job: DumpJob, images: list[np.ndarray], side: torch.cuda.Stream | None
) -> Callable[[], list[Detections] | MasksOnStream]:
    """One batch started on the inferring thread; the call returned gives what the writer takes: with a
    ``side`` stream, the detections whose masks it encodes there, else host-only detections, inferred and
    encoded here at once."""
    if side is None:
        detections = infer_batch(job.variant, stage.adapter, stage.input_spec, images, stage.times)
        return lambda: detections
    finish = launch_batch(job.variant, stage.adapter, stage.input_spec, images, stage.times)
    return lambda: MasksOnStream.hand_over(finish(), side)


def _portable(detections: list[Detections] | MasksOnStream) -> tuple[list[Detections], float]:
    """The batch's detections with their GPU masks run-length encoded, and the seconds that took."""
    begin = time.perf_counter()
    if isinstance(detections, MasksOnStream):
        detections = detections.portable()
    return detections, time.perf_counter() - begin


def _encode_part(
    chunk: list[int], portable: Future[tuple[list[Detections], float]]
) -> tuple[dict[int, list[dict]], dict[int, bytes], float]:
    detections, seconds = portable.result()
    begin = time.perf_counter()
    part, texts = {}, {}
    for i, d in zip(chunk, detections, strict=True):
        part[i], texts[i] = to_results_json(i, d)
    return part, texts, seconds + time.perf_counter() - begin


def _records_texts(
    part: dict[int, list[dict]], escaped: dict[int, Sequence[bytes]]
) -> tuple[dict[int, list[dict]], dict[int, bytes], float]:
    begin = time.perf_counter()
    return part, part_texts(part, escaped), time.perf_counter() - begin


def param_number(name: str, value: object, valid: Callable[[float], bool], unit: str) -> float | None:
    """An executor's numeric param, None where unset; a bool, a string or a value ``valid`` refuses is one line
    naming the param, the unit and the range (exit 3)."""
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not valid(value):
        raise RunError(f"executor: {name} must be a number of {unit}, got {value!r}")
    return float(value)


def image_memory_bytes(gigabytes: object) -> float | None:
    """An executor's ``image_memory_gb`` param in bytes; None stays None (:data:`KEEP_SHARE` of the memory)."""
    value = param_number("image_memory_gb", gigabytes, lambda v: v >= 0, "GB, 0 or more")
    return None if value is None else value * 1e9


def _suffix_min(values: list[float]) -> list[float]:
    """``out[k] = min(values[k:])``, and ``out[len(values)] = inf``."""
    out = [math.inf] * (len(values) + 1)
    for k in range(len(values) - 1, -1, -1):
        out[k] = min(values[k], out[k + 1])
    return out


def take_written(stage: DumpStage, job: DumpJob, parts: deque[Future], keep: int) -> None:
    """Waits for the oldest of ``parts`` (:meth:`PartWriter.submit`'s) until ``keep`` are left and records
    them as finished: a bound on the detections held in memory, and on a write's failure found late."""
    while len(parts) > keep:
        part, seconds = parts.popleft().result()
        job.finished(part)
        stage.times.add("encode+write (overlapped)", seconds)


@contextmanager
def heap_frozen() -> Iterator[bool]:
    """Yields whether a dump may move what is alive out of the cyclic garbage collector's generations as it
    goes (:func:`gc.freeze`, a constant-time move; :class:`PartWriter` does it after each part); at the end
    it is all moved back to the oldest generation (:func:`gc.unfreeze`).

    Why: a dump keeps its records, hundreds of thousands of dicts and lists that hold no cycles, and every full
    collection walks all of them again while every thread waits; they grow with the dump, and so does each walk
    (an RF-DETR run of 1,000 images on an H100: 1.0-1.7 s of full collections in its three dumps; none with
    this, benchmarks/RESULTS.md). Objects are still freed by their reference counts meanwhile, and garbage
    cycles by the young collections before each freeze; only a cycle alive at a freeze and dropped later waits
    for the next full collection after the dump. Not while the collector is off. Where the process had frozen
    objects of its own before (a pre-fork server, or the interpreter at start: one GPU image's Python froze 375),
    everything stays frozen at the end, as that process's policy is (the collector cannot unfreeze some objects
    and not others)."""
    if not gc.isenabled():
        yield False
        return
    theirs = gc.get_freeze_count()
    try:
        yield True
    finally:
        if not theirs:
            gc.unfreeze()


def escaped_counts(ids: Sequence[int], detections: Sequence[Detections]) -> dict[int, list[bytes]]:
    """By image, its masks' strings as JSON writes them where the GPU's RLE made that text beside them
    (:attr:`EncodedMasks.json`), one per record of :func:`~preprocgate.functional.coco.to_results`, in order: what
    :func:`preprocgate.cache.part_texts` then puts in the part file as it is. Copied out of the RLE's host buffer
    (views of it cannot be pickled), since they go to another process."""
    return {
        i: [bytes(text) for text in d.masks.json]
        for i, d in zip(ids, detections, strict=True)
        if isinstance(d.masks, EncodedMasks) and d.masks.json is not None
    }
