"""Roboflow-style workflow dynamic blocks, run as actorflow units.

A block's ``run_function_code`` is executed into a fresh module namespace (one per
block and load; its module-level state persists across packets, replicas and
restarts) when its first node opens, never at load time. ``init_function_code``, if
any, runs once then; an ``init()`` it defines is called and its result kept as
``self._init_results``. ``run(self, **inputs)`` is called per packet on the node's
executor thread and returns a dict, whose entries are emitted on the output ports of
the same names (a declared output missing from the dict is emitted as ``None``).

``BlockResult`` is pre-injected into the namespace, as Roboflow does::

    def run(self, prediction, url) -> BlockResult:
        return {"message": "...", "status_code": 200}

This is remote code execution by design: blocks are refused unless custom code is
enabled (``allow_custom_code=True`` or ``ACTORFLOW_ALLOW_CUSTOM_CODE=1``); enable it
only for workflow files you trust.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Mapping
from typing import Any, ClassVar

import structlog

from actorflow.unit import Context, FlowUnit, Input, Output, Packet, default_registry

__all__ = ["BlockResult", "DynamicBlock", "register_block_unit"]

BlockResult = dict
"""What a block's ``run`` returns: output port name → value."""

logger = structlog.get_logger(__name__)


class _BlockCode:
    """One block's code and its module namespace, loaded once on first open."""

    def __init__(self, block: Mapping[str, Any]) -> None:
        self.block_type: str = block["block_type"]
        self.source: str = block["source"]
        self._run_code: str = block["run_code"]
        self._init_code: str | None = block["init_code"]
        self._run_name: str = block["run_name"]
        self._lock = threading.Lock()
        self.module: types.ModuleType | None = None
        self.init_results: Any = None

    def load(self) -> types.ModuleType:
        """Execute the block's code once (thread-safe); later calls return the module."""
        with self._lock:
            if self.module is None:
                module = types.ModuleType(f"actorflow_block_{self.block_type}")
                module.__dict__["BlockResult"] = BlockResult
                exec(compile(self._run_code, f"<{self.source}:run>", "exec"), module.__dict__)
                if self._init_code is not None:
                    code = compile(self._init_code, f"<{self.source}:init>", "exec")
                    exec(code, module.__dict__)
                    init = module.__dict__.get("init")
                    self.init_results = init() if callable(init) else None
                self.module = module
            return self.module

    def call(self, unit: DynamicBlock, inputs: dict[str, Any]) -> Any:
        """Call ``run(unit, **inputs)`` from the loaded module."""
        run = getattr(self.load(), self._run_name)
        return run(unit, **inputs)


class DynamicBlock(FlowUnit):
    """Base of the unit classes made for workflow dynamic blocks (one per block use).

    Ports: one input per block input wired by a selector, one output per manifest
    output. Literal step fields are parameters, passed to ``run`` with the inputs.
    Runs ``run`` on the node's executor thread.
    """

    _code: ClassVar[_BlockCode]

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
        data = packet.data if len(self.inputs) > 1 else {self.inputs[0].name: packet.data}
        result = await ctx.run_blocking(self._code.call, self, {**self._params, **data})
        if not isinstance(result, Mapping):
            msg = (
                f"dynamic block {self._code.block_type!r}: run() must return a dict of "
                f"output name to value, got {type(result).__name__}"
            )
            raise TypeError(msg)
        names = [port.name for port in self.outputs]
        extra = [key for key in result if key not in names]
        if extra:
            msg = (
                f"dynamic block {self._code.block_type!r}: run() returned {extra!r}, which "
                f"the manifest does not declare; its outputs are: {', '.join(names)}"
            )
            raise ValueError(msg)
        for port in self.outputs:
            await ctx.emit(port, packet.replace(result.get(port.name)))


def register_block_unit(block: dict[str, Any], bound: tuple[str, ...]) -> str:
    """Make and register the unit class for ``block`` with ``bound`` inputs; return its name.

    The class is registered in ``default_registry`` under the block type; a later step
    of the same block that wires a different set of inputs gets a class of its own,
    registered as ``"<block_type>[<inputs>]"``.
    """
    code = block.get("_code")
    if not isinstance(code, _BlockCode):
        code = block["_code"] = _BlockCode(block)  # one namespace per block per load
    names: dict[tuple[str, ...], str] = block.setdefault("_names", {})
    key = tuple(sorted(bound))
    if key in names:
        return names[key]
    name: str = block["block_type"]
    if names:  # another step wires a different set of inputs: a class of its own
        name = f"{name}[{','.join(key)}]"
    names[key] = name
    attrs: dict[str, Any] = {
        "_code": code,
        "__module__": __name__,
        "__doc__": f"Workflow dynamic block {block['block_type']!r}.",
    }
    attrs.update({f"_in_{i}": Input(port) for i, port in enumerate(bound)})
    attrs.update({f"_out_{i}": Output(port) for i, port in enumerate(block["outputs"])})
    cls = type(f"DynamicBlock_{block['block_type']}", (DynamicBlock,), attrs)
    default_registry.register(cls, name)
    logger.warning("custom_code_loaded", block_type=block["block_type"], source=block["source"])
    return name
