"""Workflow JSON: steps, selectors, outputs, and opt-in dynamic blocks."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from actorflow.errors import CustomCodeDisabled, GraphValidationError
from actorflow.graph import PortRef, load_graph, validate
from actorflow.graph._formats._workflow import unit_name_for
from actorflow.unit import (
    Context,
    FlowUnit,
    Input,
    Output,
    Packet,
    block_unit_class,
    default_registry,
)

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
        ("daoai/face_recognition_model@v1", "face_recognition"),
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
    node = graph.node("handler")
    assert node.block is not None
    cls = block_unit_class(node.block)
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
    node = graph.node("handler")
    assert node.block is not None
    unit = block_unit_class(node.block)(**node.params)
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


# -- dynamic blocks: the seed's snippets, scoping, imports -------------------------------

DATA = Path(__file__).resolve().parents[1] / "data"


def snippet_workflow(code: str, block_type: str = "Snippet") -> dict[str, Any]:
    """A workflow whose only step is a pasted ``run(self)`` snippet (no inputs)."""
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [{"type": block_type, "name": "snippet"}],
        "outputs": [
            {"type": "JsonField", "name": "message", "selector": "$steps.snippet.message"},
            {"type": "JsonField", "name": "status_code", "selector": "$steps.snippet.status_code"},
        ],
        "dynamic_blocks_definitions": [
            {
                "type": "DynamicBlockDefinition",
                "manifest": {
                    "type": "ManifestDescription",
                    "block_type": block_type,
                    "inputs": {},
                    "outputs": {"message": {}, "status_code": {}},
                },
                "code": {"type": "PythonCode", "run_function_code": code},
            }
        ],
    }


async def run_workflow(path: Path, items: list[Any]) -> list[dict[str, Any]]:
    from actorflow.runtime import Flow

    runs: list[dict[str, Any]] = [{} for _ in items]
    async with Flow(load_graph(path, allow_custom_code=True)) as flow:
        session = flow.session()
        for item in items:
            await session.send("image", item)
        await session.close()
        async for result in session:
            assert result.error is None, result.error
            runs[result.seq][result.port] = result.data
    return runs


@pytest.mark.usefixtures("no_leftover_tasks")
async def test_the_seed_http_snippet_runs_once_per_image(tmp_path: Path) -> None:
    from aiohttp import web

    received: list[Any] = []

    async def event(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/event", event)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        code = (DATA / "seed004_http_snippet.py.txt").read_text(encoding="utf-8")
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")  # "按需修改": the url
        runs = await run_workflow(write(tmp_path, snippet_workflow(code)), ["a", "b", "c"])
    finally:
        await runner.cleanup()
    assert len(received) == 3  # one POST per workflow run
    assert [r["status_code"] for r in runs] == [200, 200, 200]
    for payload, outputs in zip(received, runs, strict=True):
        assert outputs["message"] == f"sent timestamp_ms {payload['timestamp']}"


@pytest.mark.usefixtures("no_leftover_tasks")
async def test_the_seed_websocket_snippet_runs_once_per_image(tmp_path: Path) -> None:
    from aiohttp import WSMsgType, web

    received: list[str] = []

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:  # the snippet sends one frame, then drops the TCP
            if message.type == WSMsgType.TEXT:
                received.append(message.data)
        return socket

    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        code = (DATA / "seed004_ws_snippet.py.txt").read_text(encoding="utf-8")
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        runs = await run_workflow(write(tmp_path, snippet_workflow(code)), ["a", "b"])
    finally:
        await runner.cleanup()
    assert [r["status_code"] for r in runs] == [0, 0]
    assert sorted(r["message"] for r in runs) == sorted(f"sent timestamp_ms {t}" for t in received)


async def test_same_named_blocks_of_two_workflows_run_their_own_code(tmp_path: Path) -> None:
    """Loading workflow B must not make workflow A run B's block (it did: one registry)."""
    a_code = "def run(self) -> BlockResult:\n    return {'message': 'A', 'status_code': 1}\n"
    b_code = "def run(self) -> BlockResult:\n    return {'message': 'B', 'status_code': 2}\n"
    a = write(tmp_path, snippet_workflow(a_code, "Same"), "a.json")
    b = write(tmp_path, snippet_workflow(b_code, "Same"), "b.json")
    graph_a = load_graph(a, allow_custom_code=True)
    graph_b = load_graph(b, allow_custom_code=True)  # loaded after A, same block name
    from actorflow.runtime import Flow

    async def messages(graph: Any) -> list[str]:
        async with Flow(graph) as flow:
            session = flow.session()
            await session.send("image", 0)
            await session.close()
            return [r.data async for r in session if r.port == "message"]

    assert await messages(graph_a) == ["A"]
    assert await messages(graph_b) == ["B"]
    assert await messages(load_graph(a, allow_custom_code=True)) == ["A"]
    assert "Same" not in default_registry.names()  # nothing leaked into the registry


async def test_a_block_importing_a_missing_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actorflow.errors import FlowFailed
    from actorflow.runtime import Flow

    monkeypatch.setitem(sys.modules, "requests", None)  # as if requests were not installed
    code = (DATA / "seed004_http_snippet.py.txt").read_text(encoding="utf-8")
    graph = load_graph(write(tmp_path, snippet_workflow(code)), allow_custom_code=True)
    with pytest.raises(FlowFailed) as info:
        async with Flow(graph):
            pass
    text = repr(info.value.exceptions) + repr([e.__cause__ for e in info.value.exceptions])
    assert "imports 'requests', which is not installed" in text
    assert "pip install requests" in text


def test_a_block_with_no_wired_input_needs_an_image_input(tmp_path: Path) -> None:
    doc = snippet_workflow("def run(self):\n    return {}\n")
    doc["inputs"] = []
    with pytest.raises(GraphValidationError, match=r"runs once per workflow run.*WorkflowImage"):
        load_graph(write(tmp_path, doc), allow_custom_code=True)


def test_an_unknown_vendor_block_lists_the_supported_ones(tmp_path: Path) -> None:
    from actorflow.runtime import Flow

    doc = workflow()
    doc["steps"][0]["type"] = "daoai/people_counter@v2"
    flow = Flow(load_graph(write(tmp_path, doc)))
    with pytest.raises(GraphValidationError) as info:
        flow.build()
    text = str(info.value)
    assert "unknown unit 'people_counter'" in text
    assert "daoai/face_recognition_model@v1" in text
    assert "name = 'people_counter'" in text


def test_roboflow_field_names_map_to_ports(tmp_path: Path) -> None:
    doc = {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {
                "type": "daoai/face_recognition_model@v1",
                "name": "faces",
                "images": "$inputs.image",
                "gallery": "people.npz",
            },
            {
                "type": "core/bounding_box_visualization@v1",
                "name": "boxes",
                "image": "$inputs.image",
                "predictions": "$steps.faces.predictions",
            },
        ],
        "outputs": [{"type": "JsonField", "name": "out", "selector": "$steps.boxes.image"}],
    }
    graph = load_graph(write(tmp_path, doc))
    edges = {(str(e.src), str(e.dst)) for e in graph.edges}
    assert ("faces:detections", "boxes:detections") in edges
    assert ("image", "faces:image") in edges


async def test_same_named_blocks_run_their_own_code_at_the_same_time(tmp_path: Path) -> None:
    from actorflow.runtime import Flow

    results: dict[str, list[str]] = {}

    async def run_one(label: str) -> None:
        code = f"def run(self) -> BlockResult:\n    return {{'message': {label!r}}}\n"
        path = write(tmp_path, snippet_workflow(code, "Same"), f"{label}.json")
        async with Flow(load_graph(path, allow_custom_code=True)) as flow:
            session = flow.session()
            for i in range(5):
                await session.send("image", i)
            await session.close()
            results[label] = [r.data async for r in session if r.port == "message"]

    async with anyio.create_task_group() as tg:
        for label in ("A", "B", "C"):
            tg.start_soon(run_one, label)
    assert results == {label: [label] * 5 for label in ("A", "B", "C")}


async def test_a_block_named_like_a_builtin_unit_shadows_it_in_its_workflow_only(
    tmp_path: Path,
) -> None:
    from actorflow.flowunits.image.transform import Resize

    code = "def run(self) -> BlockResult:\n    return {'message': 'block'}\n"
    graph = load_graph(write(tmp_path, snippet_workflow(code, "resize")), allow_custom_code=True)
    assert await run_workflow(write(tmp_path, snippet_workflow(code, "resize")), [1]) == [
        {"message": "block", "status_code": None}
    ]
    assert graph.node("snippet").block is not None
    assert default_registry.get("resize") is Resize
