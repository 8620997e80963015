"""The lifecycle contract of a flowunit, and the ``Context`` the runtime hands it."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from actorflow.unit._ports import Input, Output

if TYPE_CHECKING:
    from actorflow.unit._packet import Packet

R = TypeVar("R")
"""Return type of a blocking call."""


class Context(abc.ABC):
    """What a running unit can do; built by the runtime, one per replica.

    Users receive a ``Context`` and never construct one.
    """

    node: str
    """The node id."""
    unit: str
    """The unit's registry name."""
    replica: int
    """Which replica of the node this is (0-based)."""
    device: str
    """The node's ``device`` attribute (``auto``, ``cpu``, ``cuda``)."""
    deviceid: int
    """The node's ``deviceid`` attribute."""
    log: Any
    """A structlog logger bound to flow, node and unit."""

    @abc.abstractmethod
    async def emit(self, port: Output[Any] | str, packet: Packet[Any]) -> None:
        """Send ``packet`` on ``port``; waits while a ``block`` consumer is full.

        A downstream consumer that has gone away is not this node's failure: the
        packet is counted as cancelled and ``emit`` returns.
        """

    @abc.abstractmethod
    async def run_blocking(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on this node's named executor thread (``actorflow-<node>-<i>``).

        Cancellation (``stop()``) returns at once: a thread cannot be interrupted, so
        a call still running is abandoned — its result is discarded, and it is counted
        and named in the node's statistics (``abandoned``, ``abandoned_threads``).
        Worker threads are daemon threads, so an abandoned call never keeps the
        process alive.
        """

    @abc.abstractmethod
    def fail(self, packet: Packet[Any], error: Exception) -> None:
        """Fail one packet without failing the call: for bad data inside a batch.

        The packet is counted as failed and its session receives ``error`` (as a
        ``NodeFailed`` whose cause it is); the unit is not restarted, and the rest of
        the batch goes on. Raise instead when the unit itself is broken.
        """

    @abc.abstractmethod
    def resolve_path(self, path: str | Path) -> Path:
        """Resolve a path parameter relative to the graph file's directory."""


def _collect_ports(cls: type) -> tuple[tuple[Input[Any], ...], tuple[Output[Any], ...]]:
    inputs: dict[str, Input[Any]] = {}
    outputs: dict[str, Output[Any]] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if isinstance(value, Input):
                inputs[value.name] = value
            elif isinstance(value, Output):
                outputs[value.name] = value
    return tuple(inputs.values()), tuple(outputs.values())


class FlowUnit:
    """Base class for a node that consumes packets and may emit packets.

    Ports are class attributes (``frame = Input("frame", np.ndarray)``); the registry
    and the validator read them without instantiating the unit. Parameters are
    keyword-only ``__init__`` arguments, validated there, so configuration errors
    surface at ``build()`` before any I/O.

    The runtime calls, in order and never concurrently for one replica:

    * ``open(ctx)`` once, before any packet. If it raises, neither ``process`` nor
      ``close`` is called, so release whatever you acquired before raising.
    * ``process(ctx, packet)`` once per input, in arrival order, or
      ``process_batch(ctx, packets)`` when the node has ``batch_size > 1`` and the unit
      defines it. A node with several input ports receives one packet whose ``data``
      is a dict of port name to payload, joined by session and lineage.
    * ``close(ctx)`` exactly once if and only if ``open`` succeeded: after the inputs
      end, after ``stop()``, after another node failed, or before a restart. It runs
      shielded from cancellation, bounded by the flow's close timeout.

    An exception from ``process`` fails that packet only: it is counted, and its
    session receives the error (node, exception type and message); the next packet
    goes on. The replica is restarted (``close`` then ``open``) only when the unit
    looks broken: the exception is an instance of ``fatal_errors``, or
    ``RestartPolicy.failures_before_restart`` calls in a row failed. Methods run on
    the event loop thread; blocking work must go through ``ctx.run_blocking``.
    """

    name: ClassVar[str] = ""
    """Registry name (snake_case, stable forever). Empty: not registered."""
    inputs: ClassVar[tuple[Input[Any], ...]] = ()
    outputs: ClassVar[tuple[Output[Any], ...]] = ()
    fatal_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    """Exceptions that mean the unit itself is broken: raising one from ``process``
    fails the packet *and* restarts the replica, counted towards the restart intensity
    (e.g. a lost device or connection). Any other exception fails the packet only."""
    _builder_parents: tuple[Any, ...] | None = None
    _builder_options: dict[str, Any] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.inputs, cls.outputs = _collect_ports(cls)
        if "name" in cls.__dict__ and cls.name:
            from actorflow.unit._registry import default_registry

            default_registry.register(cls)

    async def open(self, ctx: Context) -> None:
        """Acquire resources; called once before any packet."""

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Handle one packet; emit results with ``ctx.emit``."""
        msg = f"{type(self).__name__} must implement process() or process_batch()"
        raise NotImplementedError(msg)

    async def process_batch(self, ctx: Context, packets: list[Packet[Any]]) -> None:
        """Handle a batch (``batch_size > 1``); by default calls ``process`` per packet."""
        for packet in packets:
            await self.process(ctx, packet)

    async def close(self, ctx: Context) -> None:
        """Release resources; called once iff ``open`` succeeded."""

    def output_policy(self, port: str) -> str | None:
        """The policy this unit suggests for edges out of ``port`` that do not set one.

        A live camera suggests ``"latest"`` so that a slow consumer sees fresh frames;
        ``None`` (the default) leaves the edge at ``"block"``. Called once at build.
        """
        return None

    def describe(self) -> Mapping[str, Any]:
        """Facts worth reporting in statistics (e.g. the execution providers in use).

        Called by ``flow.statistics()`` on the node's first replica; keep it cheap and
        free of side effects. The default reports nothing.
        """
        return {}

    @classmethod
    def has_batch(cls) -> bool:
        """Whether the class overrides ``process_batch`` (the runtime then batches)."""
        return cls.process_batch is not FlowUnit.process_batch

    # -- videoflow-style builder -------------------------------------------------------

    def __call__(self, *parents: Any) -> Self:
        """Connect ``parents`` (nodes or ``node[port]``) to this unit's inputs, in order.

        Raises:
            RuntimeError: the unit was already connected (videoflow's rule).
        """
        if self._builder_parents is not None:
            msg = (
                f"{type(self).__name__} is already connected to its parents; create a new "
                "unit instance for another node"
            )
            raise RuntimeError(msg)
        self._builder_parents = parents
        return self

    def options(
        self,
        *,
        id: str | None = None,
        replicas: int | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        batch_timeout: float | None = None,
        policy: str | None = None,
        placement: str | None = None,
        resources: Mapping[str, float] | None = None,
        window: int | None = None,
    ) -> Self:
        """Set node options for the Python builder; returns ``self`` for chaining.

        ``placement="ray"`` runs the node's ``replicas`` as Ray actors, each reserving
        ``resources`` and holding at most ``window`` packets in flight.
        """
        given = {
            "id": id,
            "replicas": replicas,
            "queue_size": queue_size,
            "batch_size": batch_size,
            "batch_timeout": batch_timeout,
            "policy": policy,
            "placement": placement,
            "resources": resources,
            "window": window,
        }
        self._builder_options = {
            **(self._builder_options or {}),
            **{k: v for k, v in given.items() if v is not None},
        }
        return self

    def __getitem__(self, port: str) -> tuple[FlowUnit, str]:
        """Name one output port when connecting: ``Draw()(detector["boxes"])``."""
        return (self, port)


class SourceUnit(FlowUnit):
    """A node with no inputs that produces a stream; finishing ``generate`` ends the stream.

    ``generate(ctx)`` is an async generator yielding payloads for the unit's first
    output port. The runtime iterates it inside ``aclosing()``, so ``stop()`` runs the
    generator's ``finally``. Blocking capture goes through ``ctx.run_blocking``.

    ``status`` says how the source's input is doing, for statistics and the dashboard:
    ``connecting``, ``live``, ``reconnecting`` or ``ended``; sources of live streams
    (cameras, RTSP) keep it current.
    """

    status: str = "live"

    def generate(self, ctx: Context) -> AsyncIterator[Any]:
        """Yield payloads; returning ends this source's stream."""
        msg = f"{type(self).__name__} must implement generate()"
        raise NotImplementedError(msg)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Sources receive no packets."""
        msg = f"source {type(self).__name__} has no inputs"
        raise TypeError(msg)
