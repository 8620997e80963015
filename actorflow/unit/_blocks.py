"""Workflow dynamic blocks as units: one class per block use, scoped to its graph.

A block's ``run_function_code`` is executed into a fresh module namespace (one per
``CodeBlock``, that is per block per loaded document; its module-level state persists
across packets, replicas and restarts) when its first node opens, never at load time.
``init_function_code``, if any, runs once then; an ``init()`` it defines is called and
its result kept as ``self._init_results``. ``run(self, **inputs)`` is called per packet
on the node's executor thread and returns a dict, whose entries are emitted on the
output ports of the same names (a declared output missing from the dict is emitted as
``None``).

The classes are never put in a registry: a graph's nodes carry their ``BlockUse``
and the runtime asks ``block_unit_class`` for the class, so two workflows defining a
block of the same name each run their own code.

A block with no selector-wired input has one input port, ``BLOCK_TRIGGER_PORT``, fed
by the workflow's image input: ``run`` is called once per workflow run, without that
payload (the seed's ``def run(self) -> BlockResult:`` snippets).

This is remote code execution by design: the workflow loader refuses blocks unless
custom code is enabled (``allow_custom_code=True`` or ``ACTORFLOW_ALLOW_CUSTOM_CODE=1``).
"""

from __future__ import annotations

import threading
import types
import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

import structlog

from actorflow.graph import BLOCK_TRIGGER_PORT, BlockUse, CodeBlock
from actorflow.unit._base import Context, FlowUnit
from actorflow.unit._packet import Packet
from actorflow.unit._ports import Input, Output

__all__ = ["BlockResult", "DynamicBlock", "MissingBlockDependency", "block_unit_class"]

BlockResult = dict
"""What a block's ``run`` returns: output port name → value."""

logger = structlog.get_logger(__name__)


class MissingBlockDependency(ImportError):
    """A dynamic block imports a package that is not installed (the message says how)."""


class _BlockCode:
    """One block's module namespace, loaded once on first open (thread-safe).

    It copies what it needs from the ``CodeBlock`` and keeps no reference to it, so the
    weak caches below drop both once the graph is gone.
    """

    def __init__(self, code: CodeBlock) -> None:
        self.block_type, self.source = code.block_type, code.source
        self._run_code, self._init_code = code.run_code, code.init_code
        self._run_name = code.run_name
        self._lock = threading.Lock()
        self.module: types.ModuleType | None = None
        self.init_results: Any = None

    def load(self) -> types.ModuleType:
        """Execute the block's code once; later calls return the module.

        Raises:
            MissingBlockDependency: the code imports a package that is not installed.
        """
        with self._lock:
            if self.module is None:
                module = types.ModuleType(f"actorflow_block_{self.block_type}")
                module.__dict__["BlockResult"] = BlockResult
                try:
                    run_code = compile(self._run_code, f"<{self.source}:run>", "exec")
                    exec(run_code, module.__dict__)
                    if self._init_code is not None:
                        init_code = compile(self._init_code, f"<{self.source}:init>", "exec")
                        exec(init_code, module.__dict__)
                        init = module.__dict__.get("init")
                        self.init_results = init() if callable(init) else None
                except ModuleNotFoundError as exc:
                    package = (exc.name or "?").split(".")[0]
                    msg = (
                        f"dynamic block {self.block_type!r} ({self.source}) imports "
                        f"{package!r}, which is not installed; install it into the "
                        f"environment that runs actorflow: pip install {package}"
                    )
                    raise MissingBlockDependency(msg, name=package) from exc
                self.module = module
            return self.module

    def call(self, unit: DynamicBlock, inputs: dict[str, Any]) -> Any:
        """Call ``run(unit, **inputs)`` from the loaded module."""
        run = getattr(self.load(), self._run_name)
        return run(unit, **inputs)


class DynamicBlock(FlowUnit):
    """Base of the unit classes made for workflow dynamic blocks (one per block use).

    Ports: one input per block input wired by a selector (or the trigger port), one
    output per manifest output. Literal step fields are parameters, passed to ``run``
    with the inputs. Runs ``run`` on the node's executor thread.
    """

    _code: ClassVar[_BlockCode]
    _trigger: ClassVar[bool]

    def __init__(self, **params: Any) -> None:
        self._params = params
        self._init_results: Any = None

    async def open(self, ctx: Context) -> None:
        """Load the block's code (first open only) on the executor thread."""
        ctx.log.warning("custom_code_enabled", block_type=self._code.block_type)
        await ctx.run_blocking(self._code.load)
        self._init_results = self._code.init_results

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Call ``run`` with the packet's inputs and emit its dict on the output ports."""
        if self._trigger:
            data: Mapping[str, Any] = {}
        elif len(self.inputs) > 1:
            data = packet.data
        else:
            data = {self.inputs[0].name: packet.data}
        result = await ctx.run_blocking(self._code.call, self, {**self._params, **data})
        block_type = self._code.block_type
        if not isinstance(result, Mapping):
            msg = (
                f"dynamic block {block_type!r}: run() must return a dict of "
                f"output name to value, got {type(result).__name__}"
            )
            raise TypeError(msg)
        names = [port.name for port in self.outputs]
        extra = [key for key in result if key not in names]
        if extra:
            msg = (
                f"dynamic block {block_type!r}: run() returned {extra!r}, which "
                f"the manifest does not declare; its outputs are: {', '.join(names)}"
            )
            raise ValueError(msg)
        for port in self.outputs:
            await ctx.emit(port, packet.replace(result.get(port.name)))


_namespaces: weakref.WeakKeyDictionary[CodeBlock, _BlockCode] = weakref.WeakKeyDictionary()
_classes: weakref.WeakKeyDictionary[CodeBlock, dict[tuple[str, ...], type[DynamicBlock]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def block_unit_class(use: BlockUse) -> type[DynamicBlock]:
    """The unit class for one use of a block (made once per ``CodeBlock`` and ports).

    Uses of the same ``CodeBlock`` share one module namespace; different
    ``CodeBlock`` objects (another document, or the same one loaded again) never do.
    """
    with _cache_lock:
        code = _namespaces.get(use.code)
        if code is None:
            code = _namespaces[use.code] = _BlockCode(use.code)
            logger.warning(
                "custom_code_loaded", block_type=use.code.block_type, source=use.code.source
            )
        by_ports = _classes.setdefault(use.code, {})
        cls = by_ports.get(use.ports)
        if cls is None:
            ports = use.ports or (BLOCK_TRIGGER_PORT,)
            attrs: dict[str, Any] = {
                "_code": code,
                "_trigger": not use.ports,
                "__module__": __name__,
                "__doc__": f"Workflow dynamic block {use.code.block_type!r} ({use.code.source}).",
            }
            attrs.update({f"_in_{i}": Input(port) for i, port in enumerate(ports)})
            attrs.update({f"_out_{i}": Output(port) for i, port in enumerate(use.code.outputs)})
            cls = type(f"DynamicBlock_{use.code.block_type}", (DynamicBlock,), attrs)
            by_ports[use.ports] = cls
        return cls
