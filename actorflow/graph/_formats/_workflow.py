"""The workflow form: Roboflow-style JSON with steps wired by selectors.

::

    {"version": "1.0",
     "inputs":  [{"type": "WorkflowImage", "name": "image"}],
     "steps":   [{"type": "core/scale@v1", "name": "double", "image": "$inputs.image",
                  "factor": 2}],
     "outputs": [{"type": "JsonField", "name": "result", "selector": "$steps.double.image"}]}

Each input becomes an ``input`` node (a session port), each step a node running the
unit its ``type`` names, each selector an edge (``$inputs.x`` from input ``x``,
``$steps.s.field`` from port ``field`` of step ``s``), every other step field a unit
parameter, and each ``JsonField`` output an ``output`` node named by ``name``. An
optional ``"driver": {"dir": [...]}`` (an actorflow extension, as in ModelBox files)
lists directories of Python flowunit modules.

``dynamic_blocks_definitions`` carry Python code. They are refused with
``CustomCodeDisabled`` unless custom code is enabled; nothing of their code runs, or is
even compiled, before that check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from actorflow.errors import CustomCodeDisabled, GraphSyntaxError, GraphValidationError
from actorflow.graph._dict import graph_from_dict
from actorflow.graph._formats._common import (
    MAX_NODES,
    check_depth,
    describe,
    json_key_location,
)
from actorflow.graph._formats._modelbox import driver_dirs
from actorflow.graph._model import BLOCK_TRIGGER_PORT, BlockUse, CodeBlock, Graph, Location
from actorflow.graph._validate import suggest

TOP_LEVEL_KEYS = (
    "version",
    "inputs",
    "steps",
    "outputs",
    "dynamic_blocks_definitions",
    "description",
    "name",
    "driver",
)
"""Keys a workflow document may have (``driver`` is actorflow's: ModelBox's ``[driver] dir``)."""
IMAGE_INPUTS = frozenset({"WorkflowImage", "InferenceImage", "WorkflowVideoMetadata"})
PARAMETER_INPUTS = frozenset({"WorkflowParameter", "InferenceParameter"})
STEP_IGNORED = frozenset({"type", "name", "comments", "placement"})
"""Step fields that are neither parameters nor selectors."""
PLACEMENT_KEYS = frozenset({"type", "replicas", "resources", "window"})
"""Keys of a step's ``placement`` (actorflow's extension): ``{"type": "ray", ...}``."""
WORKFLOW_ALIASES: dict[str, str] = {
    "bounding_box_visualization": "box_visualization",
    "label_visualization": "label_visualization",
    "object_detection_model": "onnx_inference",
    "roboflow_object_detection_model": "onnx_inference",
    "onnx_model": "onnx_inference",
    "face_recognition_model": "face_recognition",
    "dashboard_visualization": "dashboard_visualization",
}
"""Workflow block names (after the ``vendor/`` prefix and ``@vN`` suffix) → unit names."""
SUPPORTED_BLOCKS = (
    "core/bounding_box_visualization@v1",
    "core/label_visualization@v1",
    "daoai/face_recognition_model@v1",
    "daoai/dashboard_visualization@v1",
    "roboflow_core/object_detection_model@v1",
)
"""Vendor block types with an actorflow unit (any vendor prefix and version is accepted)."""
FIELD_ALIASES: dict[str, dict[str, str]] = {
    "box_visualization": {"predictions": "detections"},
    "label_visualization": {"predictions": "detections"},
    "face_recognition": {"images": "image", "predictions": "detections"},
}
"""Per unit: Roboflow field or output name → the unit's port name."""
CUSTOM_CODE_ENV = "ACTORFLOW_ALLOW_CUSTOM_CODE"
"""Set to ``1`` to let workflow dynamic blocks run Python code."""
_TYPE = re.compile(r"^(?:[\w.\-]+/)?(?P<name>[\w.\-]+?)(?:@v\d+)?$")
_STEP_SELECTOR = re.compile(r"^\$steps\.(?P<step>[^.]+)(?:\.(?P<field>.+))?$")
_INPUT_SELECTOR = re.compile(r"^\$inputs\.(?P<name>.+)$")


def custom_code_allowed(allow_custom_code: bool | None) -> bool:
    """The argument when given, else the environment variable ``ACTORFLOW_ALLOW_CUSTOM_CODE``."""
    if allow_custom_code is not None:
        return allow_custom_code
    return os.environ.get(CUSTOM_CODE_ENV, "").strip().lower() in ("1", "true", "yes")


def unit_name_for(step_type: str) -> str:
    """The unit a workflow step ``type`` names: prefix and version dropped, aliases applied."""
    match = _TYPE.match(step_type)
    base = match.group("name") if match else step_type
    return WORKFLOW_ALIASES.get(base, base)


def unknown_block_hint(step_type: str) -> str:
    """What to tell a user whose workflow names a block no unit implements."""
    unit = unit_name_for(step_type)
    return (
        f"workflow block {step_type!r} runs the unit {unit!r}; supported blocks: "
        f"{', '.join(SUPPORTED_BLOCKS)}, and every actorflow unit as 'actorflow/<unit>@v1'. "
        f"To run your own code under this type, write a FlowUnit class with name = {unit!r} "
        'in a module of a directory listed in the workflow\'s "driver": {"dir": [...]} '
        "(or install it as a plugin: docs/how-to/write-a-flowunit.md)"
    )


def load_workflow(
    doc: Mapping[str, Any],
    *,
    text: str,
    path: str,
    base_dir: Path,
    name: str | None,
    allow_custom_code: bool | None,
) -> Graph:
    """Compile a parsed workflow document into a ``Graph``.

    Raises:
        CustomCodeDisabled: the document has dynamic blocks and custom code is off.
        GraphSyntaxError: the document's shape is wrong.
        GraphValidationError: values are wrong; every problem is listed.
    """
    blocks = doc.get("dynamic_blocks_definitions") or []
    if blocks:
        _refuse_unless_allowed(blocks, path, allow_custom_code)
    problems: list[str] = []
    problems.extend(
        f"unknown workflow key {key!r}{suggest(key, TOP_LEVEL_KEYS)}; "
        f"a workflow has: {', '.join(TOP_LEVEL_KEYS[:5])}"
        for key in doc
        if key not in TOP_LEVEL_KEYS
    )
    compiler = _Compiler(text, path, problems)
    block_units = compiler.blocks(blocks) if blocks else {}
    compiler.inputs(_list(doc, "inputs", path))
    compiler.steps(_list(doc, "steps", path), block_units)
    compiler.outputs(_list(doc, "outputs", path))
    compiled = {
        "name": name or str(doc.get("name") or Path(path).stem or "workflow"),
        "nodes": compiler.nodes,
        "edges": compiler.edges,
        "driver": {"dir": driver_dirs(doc.get("driver"), problems)},
    }
    check_depth(compiled, path)
    try:
        graph = graph_from_dict(
            compiled, base_dir=base_dir, source=path, locations=compiler.locations
        )
    except GraphValidationError as exc:
        raise GraphValidationError([*problems, *exc.problems], source=path) from None
    if problems:
        raise GraphValidationError(problems, source=path)
    nodes = tuple(
        node.with_(
            params=MappingProxyType(compiler.params[node.id]),
            block=compiler.uses.get(node.id),
            unknown_hint=compiler.hints.get(node.id, ""),
        )
        if node.id in compiler.params
        else node
        for node in graph.nodes
    )
    return replace(graph, nodes=nodes)


def _refuse_unless_allowed(blocks: object, path: str, allow_custom_code: bool | None) -> None:
    if custom_code_allowed(allow_custom_code):
        return
    block_type = "<unnamed>"
    if isinstance(blocks, list) and blocks and isinstance(blocks[0], Mapping):
        manifest = blocks[0].get("manifest")
        if isinstance(manifest, Mapping):
            block_type = str(manifest.get("block_type", block_type))
    raise CustomCodeDisabled(block_type, path=path)


def _list(doc: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        msg = f"workflow {key!r} must be a list, got {describe(value)}"
        raise GraphSyntaxError(msg, path=path)
    return value


class _Compiler:
    """Accumulates nodes, edges, locations and problems while walking a workflow."""

    def __init__(self, text: str, path: str, problems: list[str]) -> None:
        self.text, self.path, self.problems = text, path, problems
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[dict[str, Any]] = []
        self.locations: dict[str, Location] = {}
        self.params: dict[str, dict[str, Any]] = {}
        self.uses: dict[str, BlockUse] = {}
        """Steps that run a dynamic block: step name → its ``BlockUse``."""
        self.hints: dict[str, str] = {}
        """Steps of vendor block types: step name → advice if no unit implements them."""
        self._block_names: dict[BlockUse, str] = {}
        self._images: set[str] = set()
        self._first_image: str | None = None
        self._parameters: dict[str, Any] = {}
        self._steps: dict[str, Mapping[str, Any]] = {}
        self._block_types: set[str] = set()
        self._used_inputs: set[str] = set()

    def blocks(self, blocks: object) -> dict[str, CodeBlock]:
        from actorflow.graph._formats._blocks import parse_blocks

        return parse_blocks(blocks, text=self.text, path=self.path, problems=self.problems)

    def inputs(self, inputs: list[Any]) -> None:
        for entry in inputs:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                self.problems.append(
                    f"each workflow input needs a 'type' and a 'name', got {entry!r}"
                )
                continue
            kind, input_name = str(entry.get("type", "")), entry["name"]
            if kind in PARAMETER_INPUTS and "default_value" in entry:
                self._parameters[input_name] = entry["default_value"]
            elif kind in IMAGE_INPUTS or kind in PARAMETER_INPUTS:
                self._images.add(input_name)
                if kind in IMAGE_INPUTS and self._first_image is None:
                    self._first_image = input_name
            else:
                known = sorted(IMAGE_INPUTS | PARAMETER_INPUTS)
                self.problems.append(
                    f"input {input_name!r}: unknown type {kind!r}"
                    f"{suggest(kind, known)}; types: {', '.join(known)}"
                )

    def steps(self, steps: list[Any], block_units: dict[str, CodeBlock]) -> None:
        if len(steps) > MAX_NODES:
            self.problems.append(f"workflow has {len(steps)} steps, over the limit of {MAX_NODES}")
            return
        for step in steps:
            if (
                not isinstance(step, Mapping)
                or not isinstance(step.get("name"), str)
                or not isinstance(step.get("type"), str)
            ):
                self.problems.append(
                    f"each step needs a string 'type' and 'name', got {str(step)[:80]}"
                )
                continue
            if step["name"] in self._steps:
                self.problems.append(f"duplicate step name {step['name']!r}")
                continue
            self._steps[step["name"]] = step
        self._block_types = set(block_units)
        for step_name, step in self._steps.items():
            self._step(step_name, step, block_units.get(step["type"]))
        for input_name in sorted(self._images):
            self.nodes[input_name] = {"type": "input"}
            self._locate(input_name)

    def outputs(self, outputs: list[Any]) -> None:
        for entry in outputs:
            if (
                not isinstance(entry, Mapping)
                or not isinstance(entry.get("name"), str)
                or not isinstance(entry.get("selector"), str)
            ):
                self.problems.append(
                    f"each workflow output needs a 'name' and a 'selector', got {str(entry)[:80]}"
                )
                continue
            out_name = entry["name"]
            if out_name in self.nodes:
                self.problems.append(
                    f"output {out_name!r} has the name of a step or input; give it another name"
                )
                continue
            self.nodes[out_name] = {"type": "output"}
            where = self._where(f"output {out_name!r}", out_name)
            src = self._source(entry["selector"], where)
            if src is not None:
                self._edge(src, out_name, where)

    def _step(self, step_name: str, step: Mapping[str, Any], block: CodeBlock | None) -> None:
        where = self._where(f"step {step_name!r}", step_name)
        unit = unit_name_for(step["type"])
        aliases = FIELD_ALIASES.get(unit, {}) if block is None else {}
        attrs: dict[str, Any] = {}
        bound: list[str] = []
        for field, value in step.items():
            if field in STEP_IGNORED or value is None:
                continue
            param = _INPUT_SELECTOR.match(value) if isinstance(value, str) else None
            if param is not None and param.group("name") in self._parameters:
                attrs[field] = self._parameters[param.group("name")]  # a default, baked in
            elif _is_selector(value):
                src = self._source(value, f"{where} field {field!r}")
                if src is not None:
                    self._edge(src, f"{step_name}:{aliases.get(field, field)}", where)
                    bound.append(field)
            elif isinstance(value, list) and any(_is_selector(v) for v in value):
                self.problems.append(
                    f"{where} field {field!r}: a list of selectors is not "
                    "supported; wire one selector per field"
                )
            else:
                attrs[field] = value
        if block is not None:
            unit = self._block_step(step_name, block, bound, attrs, where)
        elif "/" in step["type"] and not step["type"].startswith("actorflow/"):
            self.hints[step_name] = unknown_block_hint(step["type"])
        if step_name in self._images:
            self.problems.append(f"{where} has the name of an input; rename one of them")
        # Parameters bypass the dict form's attributes: a step field called 'unit' or
        # 'device' is a parameter of the block here, not a runtime setting.
        self.nodes[step_name] = {"flowunit": unit, **self._placement(step, where)}
        self.params[step_name] = attrs

    def _block_step(
        self,
        step_name: str,
        block: CodeBlock,
        bound: list[str],
        attrs: dict[str, Any],
        where: str,
    ) -> str:
        """Record the step's ``BlockUse``; return the unit name its node shows."""
        from actorflow.graph._formats._blocks import block_use

        use = block_use(block, bound, attrs, where, self.problems)
        self.uses[step_name] = use
        if not use.ports:  # nothing wired: run once per workflow run
            if self._first_image is None:
                self.problems.append(
                    f"{where}: dynamic block {block.block_type!r} has no input wired by a "
                    "selector, so it runs once per workflow run, triggered by the "
                    "workflow's first image input; declare one: "
                    '{"type": "WorkflowImage", "name": "image"}'
                )
            else:
                self._used_inputs.add(self._first_image)
                self._edge(self._first_image, f"{step_name}:{BLOCK_TRIGGER_PORT}", where)
        name = self._block_names.get(use)
        if name is None:  # a second use wiring other inputs needs a class of its own
            taken = set(self._block_names.values())
            name = block.block_type
            if name in taken:
                name = f"{name}[{','.join(use.ports) or BLOCK_TRIGGER_PORT}]"
            self._block_names[use] = name
        return name

    def _placement(self, step: Mapping[str, Any], where: str) -> dict[str, Any]:
        """A step's ``placement``: ``"ray"`` or ``{"type": "ray", "replicas": 2, ...}``."""
        value = step.get("placement")
        if value is None:
            return {}
        if isinstance(value, str):
            return {"placement": value}
        if not isinstance(value, Mapping) or set(value) - PLACEMENT_KEYS:
            self.problems.append(
                f"{where}: placement must be 'ray' or an object with keys "
                f"{', '.join(sorted(PLACEMENT_KEYS))}, got {str(value)[:80]}"
            )
            return {}
        attrs = {k: v for k, v in value.items() if k != "type"}
        return {"placement": value.get("type", "ray"), **attrs}

    def _source(self, selector: str, where: str) -> str | None:
        if m := _INPUT_SELECTOR.match(selector):
            input_name = m.group("name")
            if input_name in self._images:
                self._used_inputs.add(input_name)
                return input_name
            known = sorted(self._images | set(self._parameters))
            self.problems.append(
                f"{where}: selector {selector!r} names no workflow input"
                f"{suggest(input_name, known)} (inputs: {', '.join(known)})"
            )
            return None
        m = _STEP_SELECTOR.match(selector)
        if m is None:
            self.problems.append(
                f"{where}: {selector!r} is not a selector; use "
                "'$inputs.<name>' or '$steps.<step>.<output>'"
            )
            return None
        step_name, field = m.group("step"), m.group("field")
        if step_name not in self._steps:
            self.problems.append(
                f"{where}: selector {selector!r} references step "
                f"{step_name!r}, which is not a step"
                f"{suggest(step_name, self._steps)}"
            )
            return None
        if not field or field == "*":
            self.problems.append(
                f"{where}: selector {selector!r} must name one output, as "
                f"in '$steps.{step_name}.<output>'"
            )
            return None
        step_type = self._steps[step_name]["type"]
        aliases = FIELD_ALIASES.get(unit_name_for(step_type), {})
        if isinstance(step_type, str) and step_type in self._block_types:
            aliases = {}
        return f"{step_name}:{aliases.get(field, field)}"

    def _edge(self, src: str, dst: str, where: str) -> None:
        self.edges.append({"from": src, "to": dst})
        loc = self.locations.get(dst.split(":", 1)[0])
        if loc is not None:
            self.locations[f"{src} -> {dst}"] = loc

    def _where(self, what: str, name: str) -> str:
        """``what`` followed by where ``name`` is declared in the file, if found."""
        self._locate(name)
        loc = self.locations.get(name)
        return f"{what} ({loc})" if loc is not None else what

    def _locate(self, name: str) -> None:
        loc = json_key_location(self.text, "name", name, self.path)
        if loc is not None:
            self.locations[name] = loc


def _is_selector(value: object) -> bool:
    return isinstance(value, str) and value.startswith("$")
