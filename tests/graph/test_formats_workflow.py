"""Workflow JSON: steps, selectors, outputs, and opt-in dynamic blocks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from actorflow.errors import CustomCodeDisabled, GraphValidationError
from actorflow.graph import PortRef, load_graph, validate
from actorflow.graph._formats._workflow import unit_name_for
from actorflow.unit import Context, FlowUnit, Input, Output, Packet, default_registry

pytestmark = pytest.mark.anyio


class WfScale(FlowUnit):
    name = "wf_scale"
    image = Input("image")
    out = Output("image")

    def __init__(self, *, factor: int = 1) -> None:
        self.factor = factor

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.out, packet.replace(packet.data * self.factor))


class WfDetect(FlowUnit):
    name = "wf_detect"
    images = Input("images")
    predictions = Output("predictions")

    def __init__(self, *, max_faces: int = 1, similarity_threshold: float = 0.5) -> None:
        pass

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.predictions, packet)


class WfDraw(FlowUnit):
    name = "wf_draw"
    image = Input("image")
    predictions = Input("predictions")
    out = Output("image")

    def __init__(self, **params: Any) -> None:
        self.params = params

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.out, packet)


def workflow(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": "1.0",
        "inputs": [
            {"type": "WorkflowImage", "name": "image"},
            {"type": "WorkflowParameter", "name": "factor", "default_value": 3},
        ],
        "steps": [
            {
                "type": "acme/wf_detect@v1",
                "name": "detect",
                "comments": None,
                "images": "$inputs.image",
                "max_faces": 10,
                "regions": None,
            },
            {
                "type": "core/wf_draw@v1",
                "name": "draw",
                "image": "$inputs.image",
                "predictions": "$steps.detect.predictions",
                "thickness": 2,
            },
            {
                "type": "wf_scale",
                "name": "scale",
                "image": "$steps.draw.image",
                "factor": "$inputs.factor",
            },
        ],
        "outputs": [
            {"type": "JsonField", "name": "faces", "selector": "$steps.detect.predictions"},
            {"type": "JsonField", "name": "picture", "selector": "$steps.scale.image"},
        ],
    }
    doc.update(overrides)
    return doc


def write(tmp_path: Path, doc: dict[str, Any], name: str = "wf.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.mark.parametrize(
    ("step_type", "unit"),
    [
        ("roboflow_core/bounding_box_visualization@v1", "box_visualization"),
        ("core/bounding_box_visualization@v1", "box_visualization"),
        ("core/label_visualization@v1", "label_visualization"),
        ("daoai/face_recognition_model@v1", "face_recognition_model"),
        ("resize", "resize"),
    ],
)
def test_step_types_map_to_unit_names(step_type: str, unit: str) -> None:
    assert unit_name_for(step_type) == unit


def test_steps_selectors_and_outputs_compile(tmp_path: Path) -> None:
    graph = load_graph(write(tmp_path, workflow()))
    assert graph.name == "wf"
    assert graph.inputs == ("image",)  # the parameter with a default is baked in
    assert sorted(graph.outputs) == ["faces", "picture"]
    assert graph.node("detect").unit == "wf_detect"
    assert dict(graph.node("detect").params) == {"max_faces": 10}  # nulls and comments dropped
    assert dict(graph.node("scale").params) == {"factor": 3}
    assert dict(graph.node("draw").params) == {"thickness": 2}
    edges = {(str(e.src), str(e.dst)) for e in graph.edges}
    assert edges == {
        ("image", "detect:images"),
        ("image", "draw:image"),
        ("detect:predictions", "draw:predictions"),
        ("draw:image", "scale:image"),
        ("detect:predictions", "faces"),
        ("scale:image", "picture"),
    }
    checked = validate(graph, default_registry)
    assert {e.src for e in checked.edges} >= {PortRef("image", "out")}


def test_locations_name_the_step(tmp_path: Path) -> None:
    path = write(tmp_path, workflow())
    loc = load_graph(path).node("draw").location
    assert loc is not None
    assert loc.path == str(path)
    assert path.read_text().splitlines()[loc.line - 1].strip() == '"name": "draw",'


def test_parameter_without_default_is_a_session_input(tmp_path: Path) -> None:
    doc = workflow(
        inputs=[
            {"type": "WorkflowImage", "name": "image"},
            {"type": "WorkflowParameter", "name": "factor"},
        ]
    )
    graph = load_graph(write(tmp_path, doc))
    assert sorted(graph.inputs) == ["factor", "image"]


def test_every_selector_problem_is_listed(tmp_path: Path) -> None:
    doc = workflow()
    doc["steps"][1]["predictions"] = "$steps.detekt.predictions"
    doc["steps"][2]["image"] = "$inputs.imgae"
    doc["steps"].append({"type": "wf_scale", "name": "x", "image": "$steps.detect"})
    doc["outputs"].append({"type": "JsonField", "name": "bad", "selector": "steps.scale.image"})
    doc["extra"] = 1
    with pytest.raises(GraphValidationError) as info:
        load_graph(write(tmp_path, doc))
    text = "\n".join(info.value.problems)
    assert "references step 'detekt', which is not a step; did you mean 'detect'?" in text
    assert re.search(r"step 'draw' \(.*wf\.json:\d+:\d+\) field 'predictions'", text)
    assert "selector '$inputs.imgae' names no workflow input; did you mean 'image'?" in text
    assert "must name one output, as in '$steps.detect.<output>'" in text
    assert "'steps.scale.image' is not a selector" in text
    assert "unknown workflow key 'extra'" in text
    assert len(info.value.problems) == 5


def test_unknown_step_type_gets_a_suggestion(tmp_path: Path) -> None:
    doc = workflow()
    doc["steps"][2]["type"] = "core/wf_scal@v1"
    graph = load_graph(write(tmp_path, doc))
    with pytest.raises(
        GraphValidationError,
        match=r"unknown unit 'wf_scal' for node 'scale' "
        r"\(.*wf\.json:\d+:\d+\); did you mean 'wf_scale'\?",
    ):
        validate(graph, default_registry)


def test_duplicate_and_clashing_names(tmp_path: Path) -> None:
    doc = workflow()
    doc["steps"].append(dict(doc["steps"][0]))
    doc["outputs"].append({"type": "JsonField", "name": "draw", "selector": "$steps.draw.image"})
    with pytest.raises(GraphValidationError) as info:
        load_graph(write(tmp_path, doc))
    text = "\n".join(info.value.problems)
    assert "duplicate step name 'detect'" in text
    assert "output 'draw' has the name of a step or input" in text


# -- dynamic blocks -----------------------------------------------------------------------


def dynamic_workflow(sentinel: Path, *, init: bool = True) -> dict[str, Any]:
    run_code = (
        "import pathlib\n"
        f"pathlib.Path({str(sentinel)!r}).write_text('module ran')\n"
        "CALLS = []\n\n"
        "def run(self, prediction, url) -> BlockResult:\n"
        "    CALLS.append(prediction)\n"
        "    return {'message': f'{url}: {prediction}', 'count': len(CALLS),\n"
        "            'seen': self._init_results}\n"
    )
    code: dict[str, Any] = {"type": "PythonCode", "run_function_code": run_code}
    if init:
        code["init_function_code"] = "def init():\n    return {'ready': True}\n"
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {
                "type": "Handler",
                "name": "handler",
                "url": "http://127.0.0.1:9",
                "prediction": "$inputs.image",
            }
        ],
        "outputs": [
            {"type": "JsonField", "name": "message", "selector": "$steps.handler.message"},
            {"type": "JsonField", "name": "count", "selector": "$steps.handler.count"},
            {"type": "JsonField", "name": "seen", "selector": "$steps.handler.seen"},
        ],
        "dynamic_blocks_definitions": [
            {
                "type": "DynamicBlockDefinition",
                "manifest": {
                    "type": "ManifestDescription",
                    "block_type": "Handler",
                    "inputs": {
                        "prediction": {"type": "DynamicInputDefinition"},
                        "url": {"type": "DynamicInputDefinition"},
                    },
                    "outputs": {"message": {}, "count": {}, "seen": {}},
                },
                "code": code,
            }
        ],
    }


def test_dynamic_blocks_are_refused_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTORFLOW_ALLOW_CUSTOM_CODE", raising=False)
    sentinel = tmp_path / "sentinel"
    path = write(tmp_path, dynamic_workflow(sentinel))
    with pytest.raises(
        CustomCodeDisabled,
        match=r"dynamic block 'Handler' carries Python "
        r"code.*allow_custom_code=True.*ACTORFLOW_ALLOW_CUSTOM_CODE=1",
    ) as info:
        load_graph(path)
    assert (info.value.block_type, info.value.path) == ("Handler", str(path))
    assert not sentinel.exists()  # nothing of the block's code ran


def test_argument_false_beats_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTORFLOW_ALLOW_CUSTOM_CODE", "1")
    with pytest.raises(CustomCodeDisabled):
        load_graph(write(tmp_path, dynamic_workflow(tmp_path / "s")), allow_custom_code=False)


def test_environment_variable_enables_custom_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTORFLOW_ALLOW_CUSTOM_CODE", "1")
    sentinel = tmp_path / "sentinel"
    graph = load_graph(write(tmp_path, dynamic_workflow(sentinel)))
    assert graph.node("handler").unit == "Handler"
    assert not sentinel.exists()  # loading compiles nothing into a module: code runs at open


class _Ctx(Context):
    """A minimal context: emits are collected, blocking calls run in a worker thread."""

    def __init__(self) -> None:
        self.node, self.unit, self.replica, self.device, self.deviceid = "h", "Handler", 0, "cpu", 0
        import structlog

        self.log = structlog.get_logger("test")
        self.emitted: list[tuple[str, Any]] = []

    async def emit(self, port: Any, packet: Packet[Any]) -> None:
        self.emitted.append((getattr(port, "name", port), packet.data))

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    def fail(self, packet: Packet[Any], error: Exception) -> None:
        raise error

    def resolve_path(self, path: str | Path) -> Path:
        return Path(path)


async def test_enabled_block_runs_as_a_unit(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    graph = load_graph(write(tmp_path, dynamic_workflow(sentinel)), allow_custom_code=True)
    validate(graph, default_registry)
    node = graph.node("handler")
    cls = default_registry.get(node.unit)
    assert [p.name for p in cls.inputs] == ["prediction"]
    assert [p.name for p in cls.outputs] == ["message", "count", "seen"]
    unit = cls(**node.params)
    ctx = _Ctx()
    await unit.open(ctx)
    assert sentinel.read_text() == "module ran"
    for item in ("a", "b"):
        await unit.process(ctx, Packet(item))
    assert ctx.emitted == [
        ("message", "http://127.0.0.1:9: a"),
        ("count", 1),
        ("seen", {"ready": True}),
        ("message", "http://127.0.0.1:9: b"),
        ("count", 2),
        ("seen", {"ready": True}),
    ]  # module-level state (CALLS) persisted between packets


async def test_block_returning_undeclared_keys_fails_the_packet(tmp_path: Path) -> None:
    doc = dynamic_workflow(tmp_path / "s", init=False)
    doc["dynamic_blocks_definitions"][0]["code"]["run_function_code"] = (
        "def run(self, prediction, url):\n    return {'message': 1, 'oops': 2}\n"
    )
    graph = load_graph(write(tmp_path, doc), allow_custom_code=True)
    unit = default_registry.get(graph.node("handler").unit)(**graph.node("handler").params)
    ctx = _Ctx()
    await unit.open(ctx)
    with pytest.raises(ValueError, match=r"returned \['oops'\], which the manifest does not"):
        await unit.process(ctx, Packet("x"))


def test_block_errors_are_listed(tmp_path: Path) -> None:
    doc = dynamic_workflow(tmp_path / "s")
    block = doc["dynamic_blocks_definitions"][0]
    block["code"]["run_function_code"] = "def run(self, prediction, url:\n    pass\n"
    with pytest.raises(GraphValidationError, match=r"run_function_code: syntax error at line 1"):
        load_graph(write(tmp_path, doc), allow_custom_code=True)
    block["code"]["run_function_code"] = "def handle(self):\n    return {}\n"
    with pytest.raises(GraphValidationError, match=r"defines no function 'run'"):
        load_graph(write(tmp_path, doc), allow_custom_code=True)
    block["code"]["run_function_code"] = "def run(self, **kw):\n    return {}\n"
    doc["steps"][0]["urll"] = "x"
    with pytest.raises(GraphValidationError, match=r"has no input 'urll'; did you mean 'url'"):
        load_graph(write(tmp_path, doc), allow_custom_code=True)


class _Prediction:
    def __init__(self, names: list[str]) -> None:
        import numpy as np

        self.data = {"class_name": np.array(names)}


class WfFaces(FlowUnit):
    name = "wf_faces"
    images = Input("images")
    predictions = Output("predictions")

    def __init__(self, *, max_faces: int = 10) -> None:
        self.max_faces = max_faces

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        names = ["alice", "bob"] if packet.data == "known" else ["unknown"]
        await ctx.emit(self.predictions, packet.replace(_Prediction(names)))


SEED_004_RUN = """\
import numpy as np


def run(self, prediction, url) -> BlockResult:
    class_names = prediction.data['class_name']
    message = "no one detected"
    identity = ""
    if class_names is not None and len(class_names) > 0:
        class_list = [str(c) for c in class_names]
        if np.any(np.char.lower(class_names.astype(str)) == "unknown"):
            message = "no match in the identity library"
            identity = "unknown"
        else:
            identity = ", ".join(sorted(set(class_list)))
            message = f"recognised: {identity}"
    return {"message": message, "identity": identity, "status_code": 200,
            "debug_message": url}
"""


async def test_seed_004_shaped_workflow_runs_when_enabled(tmp_path: Path) -> None:
    """Steps wired by selectors, a dynamic block, JsonField outputs: end to end."""
    from actorflow.runtime import Flow

    doc = {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {
                "type": "daoai/wf_faces@v1",
                "name": "faces",
                "images": "$inputs.image",
                "max_faces": 10,
            },
            {
                "type": "Face_handler",
                "name": "handler",
                "url": "http://127.0.0.1:9000",
                "prediction": "$steps.faces.predictions",
            },
        ],
        "outputs": [
            {"type": "JsonField", "name": "message", "selector": "$steps.handler.message"},
            {"type": "JsonField", "name": "identity", "selector": "$steps.handler.identity"},
        ],
        "dynamic_blocks_definitions": [
            {
                "type": "DynamicBlockDefinition",
                "manifest": {
                    "type": "ManifestDescription",
                    "block_type": "Face_handler",
                    "inputs": {"prediction": {}, "url": {}},
                    "outputs": {
                        "message": {},
                        "identity": {},
                        "status_code": {},
                        "debug_message": {},
                    },
                },
                "code": {"type": "PythonCode", "run_function_code": SEED_004_RUN},
            }
        ],
    }
    doc["outputs"] += [
        {"type": "JsonField", "name": n, "selector": f"$steps.handler.{n}"}
        for n in ("status_code", "debug_message")
    ]
    path = write(tmp_path, doc)
    with pytest.raises(CustomCodeDisabled, match="'Face_handler'"):
        Flow(path)
    flow = Flow()
    flow.init(path, allow_custom_code=True)
    with anyio.fail_after(10):
        async with flow:
            session = flow.create_external_data_map()
            for item in ("known", "stranger"):
                await session.send("image", item)
            await session.close()
            results = [r async for r in session]
    got = {(r.seq, r.port): r.data for r in results}
    assert got[(0, "message")] == "recognised: alice, bob"
    assert got[(1, "identity")] == "unknown"
    assert got[(0, "debug_message")] == "http://127.0.0.1:9000"
    assert all(r.ok for r in results)
