"""``OnnxSession``: one ONNX Runtime session, its providers and its input contract.

Synchronous and thread-confined by design: the inference unit creates one per replica
on the node's executor thread and calls ``run`` only from there. ``terminate`` is the
one method meant to be called from another thread (the event loop, on stop).

``onnxruntime`` is imported lazily, inside functions, so that importing actorflow never
pulls it in (and so that a missing install fails with an actionable message).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog

from actorflow.errors import UnitConfigError

Device = Literal["auto", "cpu", "cuda"]
"""Where a model should run; ``auto`` asks for CUDA and falls back to CPU."""

DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda")

_ORT_TYPES: Mapping[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}

logger = structlog.get_logger(__name__)


class InputMismatch(ValueError):
    """A tensor given to a model does not match the model's declared input."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A model input or output as the session declares it."""

    name: str
    shape: tuple[int | str | None, ...]
    """Fixed sizes are ints; dynamic axes are names (``"N"``) or ``None``."""
    dtype: Any
    """The numpy dtype, or ``None`` for a type numpy cannot hold."""

    def describe(self) -> str:
        """``float32[N, 3, 224, 224]``, for error messages."""
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        kind = np.dtype(self.dtype).name if self.dtype is not None else "?"
        return f"{kind}[{dims}]"


def import_onnxruntime() -> Any:
    """Import ``onnxruntime`` or fail with the install command.

    Raises:
        UnitConfigError: onnxruntime is not installed.
    """
    try:
        import onnxruntime  # heavy and optional: inference nodes only
    except ImportError as exc:
        msg = (
            "onnxruntime is not installed; install exactly one of "
            "pip install '.[cpu]' or '.[gpu]' in the actorflow repository"
        )
        raise UnitConfigError(msg) from exc
    return onnxruntime


def resolve_model(model: str, resolve: Any) -> Path:
    """Turn a ``model`` parameter into a file path.

    ``pkg:<package>/<file>`` names a file shipped inside an installed package (found with
    ``importlib.util.find_spec``, without importing the package); anything else goes
    through ``resolve`` (``ctx.resolve_path``: relative to the graph file).

    Raises:
        UnitConfigError: the package is not installed or the file does not exist.
    """
    if model.startswith("pkg:"):
        package, _, rel = model[4:].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            msg = f"model {model!r}: package {package!r} is not installed (pip install it)"
            raise UnitConfigError(msg)
        path = Path(next(iter(spec.submodule_search_locations))) / rel
    else:
        path = Path(resolve(model))
    if not path.is_file():
        msg = f"model file not found: {path} (the path is relative to the graph file)"
        raise UnitConfigError(msg)
    return path


def wanted_providers(
    device: Device, available: Sequence[str], *, gpu_present: bool = True
) -> list[str]:
    """Providers to ask for, in order; CPU always ends the list as the fallback.

    ``auto`` asks for CUDA only where a GPU driver is present: on a machine without one
    it means CPU, silently (nobody asked for a GPU). ``cuda`` always asks.
    """
    asks = device == "cuda" or (device == "auto" and gpu_present)
    wanted = ["CUDAExecutionProvider"] if asks else []
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


@functools.cache
def gpu_driver_present() -> bool:
    """Whether the NVIDIA driver library loads: false on a machine without a GPU."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


class OnnxSession:
    """One ``onnxruntime.InferenceSession`` plus what actorflow needs around it.

    Guarantees:
        * ``providers`` lists what the session really uses (``session.get_providers()``),
          not what was asked for: onnxruntime-gpu falls back to CPU silently.
        * ``check`` raises ``InputMismatch`` naming node, input, expected and received
          before any call reaches onnxruntime.
        * ``terminate`` makes every running ``run`` call return early (with an error)
          and is safe to call from any thread.

    Args:
        path: the ``.onnx`` file, or a serialized model (``bytes``) made in memory.
        node: the node id, for messages and logs.
        device: ``auto`` (CUDA if it really loads, else CPU with a warning), ``cpu`` or
            ``cuda`` (a warning too when CUDA cannot be used).
        intra_op_threads: threads onnxruntime may use inside one operator.
        deviceid: the CUDA device ordinal.
        spinning: let idle intra-op threads spin (onnxruntime's default). With more
            than one thread on a busy machine, ``False`` leaves the cores to the rest of
            the flow between calls.
        max_concurrent_runs: how many ``run`` calls may execute at once (callers from
            several threads wait their turn); 0 means no limit.
    """

    def __init__(
        self,
        path: Path | bytes,
        *,
        node: str,
        device: Device = "auto",
        intra_op_threads: int = 1,
        deviceid: int = 0,
        spinning: bool = True,
        max_concurrent_runs: int = 0,
    ) -> None:
        ort = import_onnxruntime()
        self._ort = ort
        self.node = node
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # ORT's own stderr chatter; we report providers ourselves
        available = ort.get_available_providers()
        gpu_present = gpu_driver_present()
        wanted = wanted_providers(device, available, gpu_present=gpu_present)
        provider_options = [
            {"device_id": deviceid} if p == "CUDAExecutionProvider" else {} for p in wanted
        ]
        self.session = ort.InferenceSession(
            path if isinstance(path, bytes) else str(path),
            sess_options=options,
            providers=wanted,
            provider_options=provider_options,
        )
        self.providers: tuple[str, ...] = tuple(self.session.get_providers())
        self.inputs = tuple(_spec(i) for i in self.session.get_inputs())
        self.outputs = tuple(_spec(o) for o in self.session.get_outputs())
        self._by_name = {i.name: i for i in self.inputs}
        self._running: set[Any] = set()
        self._lock = threading.Lock()
        self._gate = (
            threading.BoundedSemaphore(max_concurrent_runs) if max_concurrent_runs else None
        )
        log = logger.bind(node=node, model="<bytes>" if isinstance(path, bytes) else str(path))
        asked = device == "cuda" or (device == "auto" and gpu_present)
        if asked and "CUDAExecutionProvider" not in self.providers:
            reason = (
                "onnxruntime has no CUDAExecutionProvider (the CPU-only wheel is installed)"
                if "CUDAExecutionProvider" not in available
                else "CUDAExecutionProvider failed to load (CUDA/cuDNN libraries or GPU missing)"
            )
            log.warning(
                "onnx_cuda_unavailable",
                device=device,
                reason=reason,
                providers=list(self.providers),
                fix="pip install '.[gpu]' (in the actorflow repository) with CUDA 13 and "
                "cuDNN 9, or set device='cpu' to silence this",
            )
        log.info(
            "onnx_session_opened",
            device=device,
            providers=list(self.providers),
            intra_op_threads=intra_op_threads,
            inputs=[i.describe() for i in self.inputs],
        )

    @property
    def on_gpu(self) -> bool:
        """Whether the session really runs on CUDA."""
        return "CUDAExecutionProvider" in self.providers

    def check(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Check names, ranks, fixed sizes and dtypes of ``feeds`` against the model.

        Raises:
            InputMismatch: the message names node, input, expected and received.
        """
        for name, spec in self._by_name.items():
            if name not in feeds:
                msg = (
                    f"node {self.node!r}: model input {name!r} was not fed; model inputs "
                    f"are {list(self._by_name)} (map ports to them with 'inputs')"
                )
                raise InputMismatch(msg)
            array = feeds[name]
            if not _fits(spec, array):
                received = f"{array.dtype.name}{list(array.shape)}"
                msg = (
                    f"node {self.node!r}: input {name!r} expects {spec.describe()}, "
                    f"received {received}; resize/convert upstream (e.g. a 'resize' and "
                    f"'to_tensor' node) so the tensor matches the model"
                )
                raise InputMismatch(msg)
        extra = set(feeds) - set(self._by_name)
        if extra:
            msg = (
                f"node {self.node!r}: {sorted(extra)} are not inputs of the model; "
                f"its inputs are {list(self._by_name)}"
            )
            raise InputMismatch(msg)

    def run(
        self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]
    ) -> list[np.ndarray]:
        """Run the model (blocking); ``terminate`` from another thread stops it early.

        A call waiting for its turn (``max_concurrent_runs``) counts as running: a
        ``terminate`` meanwhile makes it return at once when its turn comes.
        """
        options = self._ort.RunOptions()
        with self._lock:
            self._running.add(options)
        try:
            if self._gate is None:
                return list(self.session.run(output_names, dict(feeds), options))
            with self._gate:
                return list(self.session.run(output_names, dict(feeds), options))
        finally:
            with self._lock:
                self._running.discard(options)

    def terminate(self) -> int:
        """Ask every running call to stop; returns how many were running."""
        with self._lock:
            running = list(self._running)
        for options in running:
            options.terminate = True
        return len(running)

    def warm_up(self, batch: int = 1) -> None:
        """Run once on zeros: dynamic axes as ``batch`` (first axis) or 32 (others)."""
        feeds = {}
        for spec in self.inputs:
            shape = [
                d if isinstance(d, int) and d > 0 else (batch if k == 0 else 32)
                for k, d in enumerate(spec.shape)
            ]
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype or np.float32)
        try:
            self.run(None, feeds)
        except Exception as exc:  # warm-up is best effort
            logger.debug("onnx_warm_up_skipped", node=self.node, reason=str(exc)[:200])


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in (arg.shape or ()))
    return TensorSpec(arg.name, shape, _ORT_TYPES.get(arg.type))


def _fits(spec: TensorSpec, array: np.ndarray) -> bool:
    if spec.dtype is not None and array.dtype != spec.dtype:
        return False
    if len(spec.shape) != array.ndim:
        return False
    return all(
        not isinstance(d, int) or d <= 0 or d == n
        for d, n in zip(spec.shape, array.shape, strict=True)
    )
