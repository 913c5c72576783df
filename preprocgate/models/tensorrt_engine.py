"""TensorRT engines for an ONNX model: built with the tensorrt Python API, cached on disk, run on torch CUDA tensors.

UNTESTED. TensorRT cannot be installed on the CI or GPU machines this project is developed on, so no line of this
module has ever run; its tests skip where ``tensorrt`` does not import. The code follows TensorRT 10's documented
Python API (named I/O tensors, ``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``) and refuses
older majors; for TensorRT 11+, which removed the FP16 builder flag, fp16 engines are built from an fp16 copy of
the graph made by ``rfdetr``'s own caster. What a first run on a TensorRT machine must confirm: the engine
builds from the ``rfdetr`` ONNX export (dynamic batch), its outputs match the torch backend within fp16/fp32
tolerance, and a second run reuses the cached engine.

An engine is specific to the TensorRT version and the GPU it was built on, and building one takes minutes, so it
is cached under ``<cache>/tensorrt/`` by the ONNX file's hash, TensorRT's version, the GPU's name and compute
capability, the precision and the batch profile. Engines are fed torch tensors already on the GPU and write into
torch tensors, on torch's current stream: no host copies and no pycuda.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from preprocgate.errors import MissingDependencyError, RunError
from preprocgate.hashing import digest_json, file_sha256

WORKSPACE_BYTES = 4 << 30


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise MissingDependencyError("tensorrt", "") from exc
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise RunError(f"TensorRT {trt.__version__}: the tensorrt backend needs TensorRT 10 or later")
    return trt


def engine_path(trt: Any, cache_dir: Path, onnx_path: Path, fp16: bool, max_batch: int, device: torch.device) -> Path:
    """Where the engine for these inputs is cached: any change to what makes an engine makes a new file."""
    key = digest_json(
        {
            "onnx": file_sha256(onnx_path),
            "tensorrt": trt.__version__,
            "gpu": torch.cuda.get_device_name(device),
            "capability": list(torch.cuda.get_device_capability(device)),
            "fp16": fp16,
            "max_batch": max_batch,
        }
    )
    return cache_dir / "tensorrt" / f"{onnx_path.stem}-{key[:16]}.engine"


@contextlib.contextmanager
def _build_source(onnx_path: Path, fp16: bool, strongly_typed: bool) -> Any:
    """The graph to parse: the file itself, or (fp16 on TensorRT 11+) an fp16 copy with fp32 I/O, removed after."""
    if not (fp16 and strongly_typed):
        yield onnx_path
        return
    try:
        from rfdetr.export._tensorrt.exporter import fp16_source_graph
    except ImportError as exc:
        raise MissingDependencyError("rfdetr", "rfdetr") from exc
    with fp16_source_graph(str(onnx_path)) as cast:
        yield Path(cast)


def build_engine(trt: Any, onnx_path: Path, fp16: bool, max_batch: int) -> bytes:
    """A serialized engine for ``onnx_path``; a dynamic batch axis gets one profile spanning 1..max_batch."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = int(trt.__version__.split(".")[0]) >= 11
    network = builder.create_network(0)  # explicit batch is TensorRT 10's only mode
    parser = trt.OnnxParser(network, logger)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16 and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
    with _build_source(onnx_path, fp16, strongly_typed) as source:
        if not parser.parse_from_file(str(source)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RunError(f"{onnx_path}: TensorRT cannot parse the model: {errors}")
        profile = builder.create_optimization_profile()
        dynamic = False
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = tuple(tensor.shape)
            if shape[0] == -1:
                rest = shape[1:]
                profile.set_shape(tensor.name, (1, *rest), (max_batch, *rest), (max_batch, *rest))
                dynamic = True
        if dynamic:
            config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RunError(f"{onnx_path}: TensorRT could not build an engine (its log above says why)")
    return bytes(serialized)


class TensorRTEngine:
    """One cached engine with a single input; called with a CUDA batch, returns its outputs as CUDA tensors.

    ``max_batch`` is the largest batch one call takes (a static-batch engine's own batch instead); the caller
    splits larger batches. Outputs come in the engine's order (for ``rfdetr`` exports: dets, labels, masks).
    """

    def __init__(self, onnx_path: Path, device: torch.device, precision: str, cache_dir: Path, max_batch: int) -> None:
        trt = import_tensorrt()
        self.device = device
        self.version = trt.__version__
        self.gpu = torch.cuda.get_device_name(device)
        self.path = engine_path(trt, cache_dir, onnx_path, precision == "fp16", max_batch, device)
        if not self.path.is_file():
            with torch.cuda.device(device):
                data = build_engine(trt, onnx_path, precision == "fp16", max_batch)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))  # must outlive the engine
        with torch.cuda.device(device):
            self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self.engine is None:
                raise RunError(f"{self.path}: TensorRT cannot load this engine; delete it to rebuild")
            self.context = self.engine.create_execution_context()
        dtypes = {
            trt.DataType.FLOAT: torch.float32,
            trt.DataType.HALF: torch.float16,
            trt.DataType.INT32: torch.int32,
            trt.DataType.INT64: torch.int64,
            trt.DataType.BOOL: torch.bool,
        }
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise RunError(f"{onnx_path}: expected one input, the engine has {inputs}")
        self.input = inputs[0]
        self.outputs = [n for n in names if n != self.input]
        self.dtypes = {n: dtypes[self.engine.get_tensor_dtype(n)] for n in names}
        batch = int(self.engine.get_tensor_shape(self.input)[0])
        self.static_batch = batch if batch != -1 else None
        self.max_batch = self.static_batch or max_batch

    @property
    def identity(self) -> dict[str, str]:
        return {"tensorrt": self.version, "gpu": self.gpu, "engine_sha256": file_sha256(self.path)}

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.to(self.device, self.dtypes[self.input]).contiguous()
        if not self.context.set_input_shape(self.input, tuple(x.shape)):
            raise RunError(f"TensorRT engine {self.path.name} does not accept input shape {tuple(x.shape)}")
        self.context.set_tensor_address(self.input, x.data_ptr())
        outputs = []
        for name in self.outputs:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RunError(f"TensorRT engine {self.path.name}: execute_async_v3 failed")
        stream.synchronize()  # x may be freed once this returns, and TensorRT reads it asynchronously
        return tuple(outputs)
