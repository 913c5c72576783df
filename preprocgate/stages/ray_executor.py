"""The ``ray`` executor: a dump's batches inferred by actors on a Ray cluster, one per GPU (or per N CPUs).

Each actor loads the model once and reads and decodes its images itself, from a path every node sees or an
fsspec URL (:mod:`preprocgate.data.source`): the driver sends image ids, file names and digests, never pixels,
and keeps none of the images' bytes once hashed. The driver composes the batches exactly as a local
run does (:func:`preprocgate.stages.dump.batches`), so dumps are bit-identical on the same hardware class, and it
writes each returned part (COCO records, masks as RLE) into the content-addressed cache as it arrives, through a
local run's :class:`~preprocgate.stages.dump.PartWriter` (the JSON text, the file and the digest on threads of
their own, while the driver goes on receiving): a killed driver resumes from the parts written, a killed actor is
restarted by Ray and its batches retried.

``ray`` imports only when this executor is chosen (the ``preprocgate[ray]`` extra).
"""

from __future__ import annotations

import itertools
import math
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from preprocgate import provenance
from preprocgate.data.coco import ImageRecord, read_image
from preprocgate.data.source import ImageSource
from preprocgate.errors import MissingDependencyError, PreprocgateError, RunError
from preprocgate.functional.coco import to_results
from preprocgate.plugins import MODELS, VARIANTS
from preprocgate.spec import InputSpec
from preprocgate.stages.allocator import hold_back_for_good
from preprocgate.stages.dump import (
    KEEP_SHARE,
    DumpJob,
    DumpStage,
    PartWriter,
    Recipe,
    batches,
    escaped_counts,
    image_memory_bytes,
    infer_batch,
    shape_groups,
    take_written,
)
from preprocgate.timing import StageTimes, elsewhere
from preprocgate.variants import Preprocessor, build_variant
from preprocgate.variants.arena import ImageArena, Slot, physical_memory

# inside the computed dumps' seconds: the first dump's for the start, each variant's for its warm-up
STARTUP = "ray: join, start workers, load and warm up models"
_RESTARTS = 3  # per actor, and retries per batch: a node lost now and then, not a batch that always kills it
DECODE_BATCHES = 2  # batches an actor decodes a call: the first dump's first batch waits for no more than these
DECODES_AHEAD = 2  # decode calls queued on an actor at a time
# dump calls queued on an actor at a time: enough to keep it busy, few enough that the driver waits on a handful of
# calls (not every batch of a 500k-image dump) and that finished parts do not pile up in Ray's object store
IN_FLIGHT = 4
# a streamed dump's batches an actor holds decoded and not yet inferred, at most (plus one decode call's): what its
# dumps in flight and its decode calls queued need to keep it busy
STREAM_WINDOW = IN_FLIGHT + DECODES_AHEAD * DECODE_BATCHES


@dataclass(frozen=True)
class WorkerSetup:
    """What an actor needs to build the run's model and variants where it runs (everything but pixels)."""

    recipe: Recipe
    input_spec: InputSpec
    threads: int
    images: ImageSource  # pickled as its path or URL: each worker opens it with its own credentials


@dataclass(frozen=True)
class ImageRef:
    """An image as a worker reads it: the file and the digest of the bytes the driver hashed for the manifest."""

    record: ImageRecord
    sha256: str | None


class DumpWorker:
    """One Ray actor: the model, the variants built so far, and the images it decoded (kept for the next
    variant's dump, as the local executor keeps its own, or dropped once inferred where the driver streams them
    through: :meth:`dump`'s ``release``). With the executor's ``concurrency`` 2, two calls may run at once: one
    infers while the other encodes its finished batch; inference is serialised. Decoding runs on a thread of its
    own either way."""

    def __init__(self, setup: WorkerSetup) -> None:
        torch.set_num_threads(setup.threads)  # the driver's: CPU results and the cache key's device class use it
        hold_back_for_good()  # this process only dumps: the local executor holds it back around each dump
        self.setup, recipe = setup, setup.recipe
        self.device = torch.device(recipe.device)  # a type only: Ray sets which GPU this actor sees
        self.adapter = MODELS.resolve(recipe.adapter)(
            self.device, recipe.precision, file=recipe.model_file, **recipe.params
        )
        self.variants: dict[str, Preprocessor] = {}
        self.images: dict[int, np.ndarray] = {}
        self.slots: dict[int, Slot] = {}  # of the images held or being decoded: the slabs still in use
        self.arena = ImageArena(pinned=self.device.type == "cuda")
        self.infer_lock = threading.Lock()
        self.decode_lock = threading.Lock()
        self.held_lock = threading.Lock()  # ``images`` and ``slots`` against a release from a dump call
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="preprocgate-decode")

    def device_class(self) -> str:
        return provenance.device_class(self.device)

    def memory(self) -> tuple[str, int]:
        """This actor's node and the node's memory in bytes: the driver divides it among the node's actors."""
        import ray

        return ray.get_runtime_context().get_node_id(), physical_memory()

    def decode(self, groups: list[list[ImageRef]]) -> tuple[dict[int, str], float]:
        """Decode and keep these images, each group (a batch's images of one shape) back to back in the actor's
        arena, as the local executor places them; return the unusable ones with the reason, and the seconds it
        took. One caller at a time: the decoding thread and a dump that lacks an image (after a restart) must not
        reserve the same arena bytes nor decode an image twice."""
        start = time.perf_counter()
        with self.decode_lock:
            with self.held_lock:
                missing = ([r for r in group if r.record.id not in self.images] for group in groups)
                slots = self.arena.reserve_groups(missing, _shape)
                self.slots.update((ref.record.id, slot) for ref, slot in slots.items())
            decoded = list(self.pool.map(self._place, slots.items()))
            corrupt = {}
            with self.held_lock:
                for ref, (image, reason) in zip(slots, decoded, strict=True):
                    if image is None:
                        corrupt[ref.record.id] = reason
                        del self.slots[ref.record.id]
                    else:
                        self.images[ref.record.id] = ImageArena.seal(image)
        return corrupt, time.perf_counter() - start

    def release(self, ids: list[int]) -> None:
        """Drops these images, and the arena's slabs no image still held or being decoded lies in: each is
        freed once its last image is (a streamed dump's memory stays bounded)."""
        with self.held_lock:
            for i in ids:
                self.images.pop(i, None)
                self.slots.pop(i, None)
            self.arena.release(below=min((slot.slab for slot in self.slots.values()), default=math.inf))

    def _read(self, ref: ImageRef) -> tuple[np.ndarray | None, str]:
        return read_image(self.setup.images, ref.record, ref.sha256)

    def _place(self, placed: tuple[ImageRef, Slot]) -> tuple[np.ndarray | None, str]:
        """The image read and decoded, then copied to its arena slot."""
        image, reason = self._read(placed[0])
        return (self.arena.fill(placed[1], image) if image is not None else None), reason

    def dump(
        self, variant: str, refs: list[ImageRef], release: bool = False
    ) -> tuple[dict[int, list[dict]], dict[int, list[bytes]], dict[str, float]]:
        """One batch's COCO records by image id, their masks' strings as JSON writes them where the GPU made that
        (:func:`~preprocgate.stages.dump.escaped_counts`: the driver writes them as they are), and the seconds per
        step spent on it here. ``release``: the batch's images dropped once inferred (:meth:`release`)."""
        times = StageTimes()
        with times.measure("decode"):  # nothing after a restart: the images this actor held are gone
            corrupt, _ = self.decode(shape_groups(refs, _shape))
        if corrupt:
            raise RunError(f"images {sorted(corrupt)} decoded before but not now: {corrupt}")
        with self.infer_lock:
            if variant not in self.variants:
                impl, params = self.setup.recipe.variants[variant]
                self.variants[variant] = build_variant(
                    VARIANTS.resolve(impl), self.setup.input_spec, self.device, params
                )
            batch = [self.images[r.record.id] for r in refs]
            detections = infer_batch(self.variants[variant], self.adapter, self.setup.input_spec, batch, times)
        ids = [r.record.id for r in refs]
        if release:
            del batch
            self.release(ids)
        with times.measure("encode"):
            part = {i: to_results(i, d) for i, d in zip(ids, detections, strict=True)}
        return part, escaped_counts(ids, detections), times.seconds


class RayExecutor:
    """Runs dumps on a Ray cluster: ``address`` joins one (``ray start --head`` printed it; ``auto`` finds the
    local one), None starts Ray on this machine. ``workers``: actors (default: one per GPU of the cluster when
    the run's device is CUDA, else one per ``cpus_per_worker`` CPUs). ``concurrency``: calls an actor runs at
    once: 1 (default) runs them in turn, the forward alone in its process but for the decoding thread; 2 encodes a
    finished batch while the next one infers, as the local executor's writer thread does, which measured slower
    on one GPU (the two contend for the actor's GIL; benchmarks/RESULTS.md, benchmarks/ray_executor_gpu.py).
    ``niceness``: the workers' scheduling niceness, 0 (default) as a local run's process has; Ray starts its
    workers at 15 so that many busy tasks leave the CPU to its own daemons, which here would put a forward bound
    by Python behind every other process on the node. None keeps Ray's. ``image_memory_gb``: the most decoded
    images a worker keeps for the next variants (default: :data:`~preprocgate.stages.dump.KEEP_SHARE` of its
    node's memory, shared among the node's workers); a dump whose images would pass it on a worker is streamed:
    each worker decodes a bounded window ahead of its dumps (:data:`STREAM_WINDOW` batches) and drops each batch's
    images once inferred, and the next variant decodes them again. Same dumps either way.

    ``workers_per_gpu`` (default 1): actors sharing each GPU, each with ``1 / workers_per_gpu`` of it. Why: a
    dump of a mask model keeps one Python process busy, not its GPU (RF-DETR seg-nano on an H100: the inferring
    thread busy 98% of the time, the GPU 33%; benchmarks/RESULTS.md), so a second process on the same GPU could
    launch its batches while the first encodes. Without NVIDIA MPS it measured no gain on an H100 (the GPU
    time-slices the two processes' contexts: each one's forward took twice as long), hence 1 by default; with
    MPS their kernels may overlap (not measured). The batches are the same; the model is loaded once per actor."""

    decodes_here = False  # the workers read the images: the driver hashes each one and drops it

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: int = 1,
        concurrency: int = 1,
        niceness: int | None = 0,
        image_memory_gb: float | None = None,
        workers_per_gpu: int = 1,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise MissingDependencyError("ray", "ray") from None
        if workers is not None and workers < 1:
            raise RunError(f"executor: workers must be at least 1, got {workers}")
        if concurrency not in (1, 2):
            raise RunError(f"executor: concurrency must be 1 or 2, got {concurrency}")
        if niceness is not None and not -20 <= niceness <= 19:
            raise RunError(f"executor: niceness must be from -20 to 19, got {niceness}")
        if isinstance(workers_per_gpu, bool) or not isinstance(workers_per_gpu, int) or not 1 <= workers_per_gpu <= 8:
            raise RunError(f"executor: workers_per_gpu must be a whole number from 1 to 8, got {workers_per_gpu!r}")
        self.ray = ray
        self.address, self.workers, self.cpus_per_worker = address, workers, cpus_per_worker
        self.concurrency, self.niceness, self.workers_per_gpu = concurrency, niceness, workers_per_gpu
        self.image_memory = image_memory_bytes(image_memory_gb)
        self.actors: list[Any] = []
        self.budgets: list[float] = []  # per actor: the bytes of images it may keep
        self.holder: dict[int, int] = {}  # image id → the actor that decoded it
        self.dealt: dict[int, int] = {}  # a streamed dump's images sent to an actor to decode, not yet inferred
        self.ahead: list[int] = []  # per actor: how many of ``dealt``
        self.window = math.inf  # ``ahead``'s bound: a streamed dump's (:meth:`_decode_ahead`)
        self.warm: set[tuple[int, str]] = set()  # (actor, variant) pairs that have run a batch
        self.connected = False

    def compute(self, stage: DumpStage, job: DumpJob) -> None:
        if stage.recipe is None:
            raise RunError("the ray executor needs a recipe to rebuild the model and variants on its workers")
        elsewhere()  # the workers do the dump's work: the driver's wall time has no split
        if not self.actors:
            with stage.times.measure(STARTUP):
                self._start(stage, stage.recipe)
        refs = self._refs(stage, job.todo)
        stream = self._streams(stage, job.todo)
        flow = _BatchFlow(job.todo, stage.batch_size, stage.dataset.corrupt)
        decodes = self._decode_ahead(flow, refs, stage, stream)
        with stage.times.measure(STARTUP):
            self._warm_up(job.name, flow, decodes, refs, stage)
        dumps = _Lanes(len(self.actors), IN_FLIGHT)

        def dispatch() -> None:
            for chunk in flow.ready():
                dumps.add(self.holder[chunk[0]], chunk)
            dumps.send(lambda n, chunk: self.actors[n].dump.remote(job.name, [refs[i] for i in chunk], stream))

        dispatch()
        written: deque[Future] = deque()
        with PartWriter(stage.cache, job.key, job.digest) as writer:
            while decodes or dumps:
                ready, _ = self.ray.wait([*decodes.in_flight, *dumps.in_flight], num_returns=1)
                if ready[0] in decodes.in_flight:
                    self._decoded(flow, decodes, ready[0], stage)
                    dispatch()
                    continue
                n, chunk = dumps.done(ready[0])
                part, escaped, seconds = self._get(ready[0])
                if stream:
                    self._released(n, chunk)
                    self._send_decodes(decodes)
                dispatch()
                # named by first image: parts may finish in any order, and a resumed run recomposes the same batches
                written.append(writer.submit_records(f"{job.tag}-i{chunk[0]:012d}", part, escaped))
                for step, s in seconds.items():
                    stage.times.add(f"{step} (workers)", s)
                take_written(stage, job, written, keep=IN_FLIGHT)
            take_written(stage, job, written, keep=0)

    def _streams(self, stage: DumpStage, todo: list[int]) -> bool:
        """Whether a worker would pass its budget keeping the images it holds and its share of those of ``todo``
        no worker holds yet: then this dump's images are streamed through the workers, not kept."""
        shapes = stage.shapes
        held = [0] * len(self.actors)
        for i, n in self.holder.items():
            held[n] += math.prod(shapes[i])
        corrupt = stage.dataset.corrupt
        fresh = sum(math.prod(shapes[i]) for i in todo if i not in self.holder and i not in corrupt)
        return any(kept + fresh / len(self.actors) > budget for kept, budget in zip(held, self.budgets, strict=True))

    def _decode_ahead(self, flow: _BatchFlow, refs: dict[int, ImageRef], stage: DumpStage, stream: bool) -> _Lanes:
        """Start decoding the images no actor holds yet, :data:`DECODE_BATCHES` predicted batches a call, the
        calls dealt to the actors in turn, :data:`DECODES_AHEAD` of them queued on an actor at a time. Each actor
        decodes on a thread of its own (the ``decode`` concurrency group) while it infers the batches already
        known: a batch is sent once every image up to its last is decoded or found unusable, as a local run
        infers its first dump while the rest decode ahead. ``stream``: a call is sent only while the actor
        holds fewer than :data:`STREAM_WINDOW` batches of this dump's images not yet inferred (:meth:`_released`
        takes them off)."""
        decodes = _Lanes(len(self.actors), DECODES_AHEAD)
        self.window = STREAM_WINDOW * stage.batch_size if stream else math.inf
        self.ahead = [0] * len(self.actors)
        self.dealt = {}
        fresh = [i for i in flow.todo if i not in self.holder]
        predicted = batches(fresh, stage.batch_size)
        for index, k in enumerate(range(0, len(predicted), DECODE_BATCHES)):
            n = index % len(self.actors)
            chunk = [i for b in predicted[k : k + DECODE_BATCHES] for i in b]
            groups = [g for b in predicted[k : k + DECODE_BATCHES] for g in shape_groups([refs[i] for i in b], _shape)]
            flow.expect(index, chunk)
            decodes.add(n, (index, groups))
            self.holder.update(dict.fromkeys(chunk, n))
        self._send_decodes(decodes)
        return decodes

    def _send_decodes(self, decodes: _Lanes) -> None:
        def submit(n: int, item: tuple[int, list[list[ImageRef]]]) -> Any:
            if self.window < math.inf:  # streaming: the window counts them until inferred
                ids = [ref.record.id for group in item[1] for ref in group]
                self.dealt.update(dict.fromkeys(ids, n))
                self.ahead[n] += len(ids)
            return self.actors[n].decode.options(concurrency_group="decode").remote(item[1])

        decodes.send(submit, allow=lambda n: self.ahead[n] < self.window)

    def _released(self, actor: int, chunk: list[int]) -> None:
        """A streamed batch inferred: its images no longer held (the actor dropped them itself), and those
        another actor decoded (an unusable image shifted the batch) dropped there too."""
        elsewhere: dict[int, list[int]] = {}
        for i in chunk:
            n = self.holder.pop(i)
            self._undeal(i)
            if n != actor:
                elsewhere.setdefault(n, []).append(i)
        for n, ids in elsewhere.items():  # not awaited: a lost release only keeps images a while longer
            self.actors[n].release.options(concurrency_group="decode").remote(ids)

    def _undeal(self, image_id: int) -> None:
        """The image off its actor's streaming window (inferred, or found unusable)."""
        if image_id in self.dealt:
            self.ahead[self.dealt.pop(image_id)] -= 1

    def _decoded(self, flow: _BatchFlow, decodes: _Lanes, call: Any, stage: DumpStage) -> None:
        """A decode call's result taken in (its unusable images, the workers' seconds), and the actor's next
        decode call sent."""
        _, (index, _) = decodes.done(call)
        corrupt, seconds = self._get(call)
        stage.dataset.corrupt.update(corrupt)
        for i in corrupt:  # never inferred: off the window
            self._undeal(i)
        stage.times.add("decode (workers)", seconds)
        flow.arrived(index)
        self._send_decodes(decodes)

    def _warm_up(
        self, variant: str, flow: _BatchFlow, decodes: _Lanes, refs: dict[int, ImageRef], stage: DumpStage
    ) -> None:
        """Each actor infers a first batch of this variant once, results dropped, before the dump's batches: a
        fresh actor's first call pays CUDA, cuDNN and Triton start-up (seconds), which the local executor pays
        once per process; counted with the start, not in the images' throughput. Outputs are unchanged. The
        batch is the first of the actor's images known to be usable (waiting for its first decode if need be)."""
        calls = []
        for n in (n for n in range(len(self.actors)) if (n, variant) not in self.warm):
            usable = flow.usable(lambda i, n=n: self.holder.get(i) == n, stage.batch_size)
            first = decodes.oldest(n)
            if not usable and first is not None:
                self._decoded(flow, decodes, first, stage)
                usable = flow.usable(lambda i, n=n: self.holder.get(i) == n, stage.batch_size)
            if usable:
                calls.append(self.actors[n].dump.remote(variant, [refs[i] for i in usable]))
                self.warm.add((n, variant))
        self._get(calls)

    def _refs(self, stage: DumpStage, ids: list[int]) -> dict[int, ImageRef]:
        records = {r.id: r for r in stage.dataset.records}
        return {i: ImageRef(records[i], stage.dataset.sha256(i)) for i in ids}

    def _get(self, refs: Any) -> Any:
        """``ray.get``, with a worker's failure as one line: preprocgate's own errors as they were raised there."""
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, PreprocgateError):
                raise cause from None
            raise RunError(f"a Ray worker raised {type(cause).__name__}: {_last_line(str(cause))}") from None
        except self.ray.exceptions.RayActorError as exc:
            raise RunError(
                f"a Ray worker could not start or died more than {_RESTARTS} times ({_last_line(str(exc))}); "
                "the parts written so far are kept: rerun to resume"
            ) from None

    def _start(self, stage: DumpStage, recipe: Recipe) -> None:
        ray = self.ray
        if not ray.is_initialized():  # else: run_gate called inside a Ray driver, whose connection stays its own
            _check_reachable(self.address)
            try:
                ray.init(address=self.address, logging_level="WARNING", include_dashboard=False)
            except ConnectionError as exc:
                raise RunError(f"executor: cannot reach the Ray cluster at {self.address!r}: {exc}") from None
            self.connected = True
        device = torch.device(recipe.device)
        count = self.actor_count(ray.cluster_resources(), device)
        setup = WorkerSetup(recipe, stage.input_spec, torch.get_num_threads(), stage.dataset.images)
        actor = ray.remote(**self.actor_options(device))(DumpWorker)
        self.actors = [actor.remote(setup) for _ in range(count)]
        if self.image_memory is not None:
            self.budgets = [self.image_memory] * count
        else:
            nodes = self._get([a.memory.remote() for a in self.actors])
            sharing = Counter(node for node, _ in nodes)
            self.budgets = [memory * KEEP_SHARE / sharing[node] for node, memory in nodes]
        classes = set(self._get([a.device_class.remote() for a in self.actors]))
        if classes != {stage.key_base["device"]}:
            raise RunError(
                f"executor: the Ray workers run on {', '.join(sorted(classes))} but this run's dumps are keyed "
                f"for {stage.key_base['device']}: run the driver on a node of the workers' hardware class"
            )

    def actor_count(self, resources: dict[str, float], device: torch.device) -> int:
        """How many actors a cluster with ``resources`` (Ray's totals) gets: ``workers`` where given."""
        cuda = device.type == "cuda"
        total = resources.get("GPU" if cuda else "CPU", 0)
        count = self.workers or int(total * self.workers_per_gpu if cuda else total // self.cpus_per_worker)
        if count < 1:
            raise RunError(f"executor: the Ray cluster has no {'GPU' if cuda else 'CPU'} to run on")
        return count

    def actor_options(self, device: torch.device) -> dict[str, Any]:
        """The workers' Ray options: resources, restarts, concurrency, and the niceness (Ray reads a worker's
        from ``RAY_worker_niceness`` in its environment; an actor's ``env_vars`` merge with the job's)."""
        options: dict[str, Any] = {
            "num_cpus": self.cpus_per_worker,
            "max_restarts": _RESTARTS,
            "max_task_retries": _RESTARTS,
            "max_concurrency": self.concurrency,
            "concurrency_groups": {"decode": 1},  # decoding beside the dumps' calls (:meth:`_decode_ahead`)
        }
        if device.type == "cuda":
            options["num_gpus"] = 1 / self.workers_per_gpu
        if self.niceness is not None:
            options["runtime_env"] = {"env_vars": {"RAY_worker_niceness": str(self.niceness)}}
        return options

    def close(self) -> None:
        """Ends the actors and leaves the cluster (a Ray runtime this process started stops with it)."""
        for actor in self.actors:
            self.ray.kill(actor)
        if self.connected:
            self.ray.shutdown()
        self.actors, self.holder, self.warm, self.connected = [], {}, set(), False


class _Lanes:
    """Calls waiting to be sent to each actor, at most ``limit`` in flight on each: the driver waits on the calls
    in flight only, so each wait stays short however many batches a dump has."""

    def __init__(self, actors: int, limit: int) -> None:
        self.limit = limit
        self.waiting: list[deque[Any]] = [deque() for _ in range(actors)]
        self.in_flight: dict[Any, tuple[int, Any]] = {}  # call → (actor, item), oldest first
        self._count = [0] * actors

    def add(self, actor: int, item: Any) -> None:
        self.waiting[actor].append(item)

    def send(self, submit: Callable[[int, Any], Any], allow: Callable[[int], bool] = lambda n: True) -> None:
        """Submit waiting items, oldest first, until each actor has ``limit`` in flight, or ``allow`` refuses."""
        for n, queue in enumerate(self.waiting):
            while queue and self._count[n] < self.limit and allow(n):
                item = queue.popleft()
                self.in_flight[submit(n, item)] = (n, item)
                self._count[n] += 1

    def oldest(self, actor: int) -> Any | None:
        """The actor's call in flight that was sent first (None if it has none)."""
        return next((call for call, (n, _) in self.in_flight.items() if n == actor), None)

    def done(self, call: Any) -> tuple[int, Any]:
        n, item = self.in_flight.pop(call)
        self._count[n] -= 1
        return n, item

    def __bool__(self) -> bool:
        return bool(self.in_flight) or any(self.waiting)


class _BatchFlow:
    """A dump's batches as its images become known: those of the usable images of ``todo`` in order, as every
    executor infers them, each released once every image up to its last is decoded or found unusable. Images
    that no decode call (:meth:`expect`) is waiting on are known from the start."""

    def __init__(self, todo: list[int], batch_size: int, corrupt: dict[int, str]) -> None:
        self.todo, self.batch_size, self.corrupt = todo, batch_size, corrupt
        self.decoding: dict[Hashable, list[int]] = {}  # decode call (its key) → its images
        self._waiting: set[int] = set()
        self._position = 0  # todo[:position] are placed in batches (sent, or waiting in ``_carry``)
        self._carry: list[int] = []

    def expect(self, key: Hashable, ids: list[int]) -> None:
        self.decoding[key] = ids
        self._waiting.update(ids)

    def arrived(self, key: Hashable) -> None:
        self._waiting.difference_update(self.decoding.pop(key))

    def usable(self, wanted: Callable[[int], bool], count: int) -> list[int]:
        """Up to ``count`` images known to be usable for which ``wanted`` holds, in order."""
        found = (i for i in self.todo if i not in self._waiting and i not in self.corrupt and wanted(i))
        return list(itertools.islice(found, count))

    def ready(self) -> list[list[int]]:
        """The batches that became known since the last call; the last, short one once every image is."""
        out = []
        while self._position < len(self.todo) and self.todo[self._position] not in self._waiting:
            i = self.todo[self._position]
            self._position += 1
            if i not in self.corrupt:
                self._carry.append(i)
            if len(self._carry) == self.batch_size:
                out.append(self._carry)
                self._carry = []
        if self._position == len(self.todo) and self._carry:
            out.append(self._carry)
            self._carry = []
        return out


def _shape(ref: ImageRef) -> tuple[int, int, int]:
    return ref.record.height, ref.record.width, 3


def _last_line(text: str) -> str:
    """The message under a remote traceback: its last non-empty line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else text


def _check_reachable(address: str | None) -> None:
    """A ``host:port`` nothing listens on is an error now: ``ray.init`` would retry it for minutes."""
    if address is None or "://" in address:
        return  # start Ray here, or a ray:// client address: Ray's own checks apply
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # auto
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise RunError(f"executor: cannot reach the Ray cluster at {address}: {exc}") from None
