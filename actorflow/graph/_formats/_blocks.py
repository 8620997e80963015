"""Workflow dynamic blocks: manifests checked here, compiled into pure data.

This module is reached only after the custom-code check passed (``_workflow``). It
parses the code with ``ast`` to report syntax errors at load time, without running
any of it. Each block becomes a ``CodeBlock`` and each step using it a ``BlockUse`` on
its node; the unit layer's ``block_unit_class`` makes the unit class for that graph
alone, and the code runs when the node opens, on its executor thread.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from actorflow.graph._formats._common import describe, json_key_location
from actorflow.graph._model import BlockUse, CodeBlock
from actorflow.graph._validate import suggest

_BLOCK_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def parse_blocks(
    blocks: object, *, text: str, path: str, problems: list[str]
) -> dict[str, CodeBlock]:
    """Check every dynamic block definition; return them by ``block_type``."""
    if not isinstance(blocks, list):
        problems.append(f"dynamic_blocks_definitions must be a list, got {describe(blocks)}")
        return {}
    found: dict[str, CodeBlock] = {}
    for index, entry in enumerate(blocks):
        block = _block(index, entry, text, path, problems)
        if block is None:
            continue
        if block.block_type in found:
            problems.append(f"dynamic block {block.block_type!r} is defined twice")
            continue
        found[block.block_type] = block
    return found


def block_use(
    block: CodeBlock,
    bound: list[str],
    params: Mapping[str, Any],
    where: str,
    problems: list[str],
) -> BlockUse:
    """One step's use of ``block``: ``bound`` inputs become input ports.

    ``bound`` are the block inputs wired by selectors; ``params`` are the literal ones
    (passed to ``run`` as keyword arguments). With no ``bound`` input the block runs
    once per workflow run (the compiler wires its trigger port).
    """
    declared = block.inputs
    problems.extend(
        f"{where}: dynamic block {block.block_type!r} has no input {field!r}"
        f"{suggest(field, declared)}; its inputs are: {', '.join(declared) or 'none'}"
        for field in [*bound, *params]
        if field not in declared
    )
    problems.extend(
        f"{where}: dynamic block input {field!r} is not given; wire it with a selector or "
        "give it a value"
        for field in declared
        if field not in bound and field not in params
    )
    return BlockUse(block, tuple(b for b in bound if b in declared))


def _block(
    index: int, entry: object, text: str, path: str, problems: list[str]
) -> CodeBlock | None:
    where = f"dynamic block #{index + 1}"
    if not isinstance(entry, Mapping):
        problems.append(f"{where} must be an object with 'manifest' and 'code'")
        return None
    manifest, code = entry.get("manifest"), entry.get("code")
    if not isinstance(manifest, Mapping) or not isinstance(code, Mapping):
        problems.append(f"{where} needs a 'manifest' object and a 'code' object")
        return None
    block_type = manifest.get("block_type")
    if not isinstance(block_type, str) or not _BLOCK_TYPE.match(block_type):
        problems.append(
            f"{where}: manifest block_type must be a name like 'my_block', got {block_type!r}"
        )
        return None
    where = f"dynamic block {block_type!r}"
    loc = json_key_location(text, "block_type", block_type, path)
    if loc is not None:
        where += f" ({loc})"
    inputs, outputs = manifest.get("inputs", {}), manifest.get("outputs", {})
    if not isinstance(inputs, Mapping) or not isinstance(outputs, Mapping) or not outputs:
        problems.append(
            f"{where}: manifest 'inputs' and 'outputs' must be objects keyed by "
            "name, with at least one output"
        )
        return None
    run_code, init_code = code.get("run_function_code"), code.get("init_function_code")
    run_name = code.get("run_function_name", "run")
    if (
        not isinstance(run_code, str)
        or not isinstance(init_code, str | None)
        or not isinstance(run_name, str)
    ):
        problems.append(
            f"{where}: code needs 'run_function_code' as a string ('init_function_code' optional)"
        )
        return None
    for label, source in (("run_function_code", run_code), ("init_function_code", init_code)):
        if source is not None and not _parses(source, f"{where} {label}", problems):
            return None
    if not _defines(run_code, run_name):
        problems.append(
            f"{where}: run_function_code defines no function {run_name!r}; "
            f"write 'def {run_name}(self, ...) -> BlockResult:'"
        )
        return None
    return CodeBlock(
        block_type=block_type,
        inputs=tuple(str(k) for k in inputs),
        outputs=tuple(str(k) for k in outputs),
        run_code=run_code,
        init_code=init_code,
        run_name=run_name,
        source=f"{path}:{block_type}",
    )


def _parses(source: str, where: str, problems: list[str]) -> bool:
    try:
        ast.parse(source)
    except SyntaxError as exc:
        problems.append(
            f"{where}: syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}"
        )
        return False
    except (RecursionError, MemoryError, ValueError):
        problems.append(f"{where}: the code cannot be parsed (too deeply nested or invalid)")
        return False
    return True


def _defines(source: str, name: str) -> bool:
    tree = ast.parse(source)
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )
