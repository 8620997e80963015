"""A wrapper as a node of a graph: threads, replicas, sessions, errors."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from actorflow.errors import FlowFailed, NodeFailed, UnitConfigError
from actorflow.graph import graph_from_dict
from actorflow.runtime import Flow
from actorflow.testing import UnitRunner
from actorflow.wrapper import (
    DataEnd,
    DataListCls,
    IntegerParamField,
    Response,
    ResponseData,
    StringBodyField,
    WrapperBase,
    WrapperExecError,
)
from actorflow.wrapper._unit import SessionCall, WrapperUnit

pytestmark = pytest.mark.anyio


def _graph(**node: Any) -> dict[str, Any]:
    return {
        "name": "wrapped",
        "nodes": {
            "input": {"type": "input"},
            "recognise": {"flowunit": "wrapper", **node},
            "output": {"type": "output"},
        },
        "edges": ["input -> recognise", "recognise -> output"],
    }


async def _run(flow: Flow, requests: list[Any]) -> list[Any]:
    with anyio.fail_after(20):
        async with flow:
            session = flow.create_external_data_map()
            for request in requests:
                await session.send("input", request)
            await session.close()
            return [result async for result in session]


class Concurrent(WrapperBase):
    """Every exec waits until ``width`` execs run at once: proof of concurrency."""

    width = 4
    barrier = threading.Barrier(4, timeout=10)
    events: ClassVar[list[str]] = []
    threads: ClassVar[set[str]] = set()

    class requestCls:
        text = StringBodyField("text")
        n = IntegerParamField("n", value=0)

    def wrapperInit(self, config: dict[str, Any]) -> int:
        self.events.append(f"init {config}")
        return 0

    def wrapperOnceExec(self, params: dict[str, Any], reqData: DataListCls) -> Response:
        self.threads.add(threading.current_thread().name)
        self.barrier.wait()
        if params["n"] == 13:
            return self.response_err(13)
        text = str(reqData.list[0].data, "utf-8").upper()
        return Response([ResponseData("text", text, len(text))])

    def wrapperFini(self) -> int:
        self.events.append("fini")
        return 0

    def wrapperError(self, code: int) -> str:
        return f"unlucky {code}"


def _reset() -> None:
    Concurrent.barrier = threading.Barrier(4, timeout=10)
    Concurrent.events = []
    Concurrent.threads = set()


async def test_replicas_run_execs_concurrently_on_node_threads() -> None:
    _reset()
    flow = Flow(_graph(wrapper=Concurrent, replicas=4, config={"k": 1}))
    results = await _run(flow, [f"w{i}" for i in range(8)])
    assert sorted(r.data.list[0].data for r in results) == [f"W{i}" for i in range(8)]
    assert all(r.ok for r in results)
    assert Concurrent.threads == {f"actorflow-recognise-{i}" for i in range(4)}
    assert Concurrent.events == ["init {'k': 1}", "fini"]  # shared: init once, fini once


async def test_one_instance_per_replica_when_not_shared() -> None:
    _reset()
    flow = Flow(_graph(wrapper=Concurrent, replicas=4, shared=False))
    await _run(flow, [f"w{i}" for i in range(4)])
    assert Concurrent.events.count("fini") == 4
    assert sum(e.startswith("init") for e in Concurrent.events) == 4


async def test_error_code_is_emitted_with_the_wrapper_error_text() -> None:
    Concurrent.barrier = threading.Barrier(1)
    out = await UnitRunner(WrapperUnit, wrapper=Concurrent).run(
        {"in": [{"parameter": {"n": 13}, "payload": {"text": "x"}}, "ok"]}
    )
    first, second = (p.data for p in out["out"])
    assert (first.error_code, first.message) == (13, "unlucky 13")
    assert second.list[0].data == "OK"


async def test_error_code_fails_the_packet_when_asked() -> None:
    Concurrent.barrier = threading.Barrier(1)
    flow = Flow(_graph(wrapper=Concurrent, on_error="raise"))
    results = await _run(flow, [{"parameter": {"n": 13}, "payload": {"text": "x"}}])
    (result,) = results
    assert not result.ok
    cause = result.error.__cause__
    assert isinstance(cause, WrapperExecError)
    assert (cause.code, cause.message) == (13, "unlucky 13")


async def test_wrapper_file_path_resolves_from_the_graph(echo_file: Path) -> None:
    flow = Flow(graph_from_dict(_graph(path=echo_file.name), base_dir=echo_file.parent))
    request = {
        "parameter": {"mode": "music"},
        "payload": {"data": base64.b64encode(b"abc").decode()},
    }
    (result,) = await _run(flow, [request])
    assert result.ok, result.error
    assert result.data.list[0].data == "echo music 2 3"


def test_bad_parameters_are_refused_at_build() -> None:
    with pytest.raises(UnitConfigError, match="give path="):
        WrapperUnit()
    with pytest.raises(UnitConfigError, match="mode must be 'once' or 'session'"):
        WrapperUnit(wrapper=Concurrent, mode="stream")  # type: ignore[arg-type]


class Streaming(WrapperBase):
    """Session hooks: accumulates chunks per handle, answers with the running text."""

    calls: ClassVar[list[str]] = []

    class requestCls:
        text = StringBodyField("text")

    def wrapperInit(self, config: dict[str, Any]) -> int:
        self.buffers: dict[str, list[str]] = {}
        return 0

    def wrapperCreate(self, params: dict[str, Any], sid: str) -> str:
        handle = f"h{len(self.buffers)}"
        self.buffers[handle] = []
        self.calls.append(f"create {handle}")
        return handle

    def wrapperWrite(self, handle: str, reqData: DataListCls, sid: str) -> int:
        node = reqData.list[0]
        self.buffers[handle].append(f"{str(node.data, 'utf-8')}:{node.status}")
        return 0

    def wrapperRead(self, handle: str, sid: str) -> Response:
        return Response([ResponseData("text", " ".join(self.buffers[handle]))])

    def wrapperDestroy(self, handle: str) -> int:
        self.calls.append(f"destroy {handle}")
        return 0

    def wrapperFini(self) -> int:
        return 0


async def test_session_hooks_map_to_flow_sessions() -> None:
    Streaming.calls = []
    flow = Flow(_graph(wrapper=Streaming, mode="session"))
    with anyio.fail_after(20):
        async with flow:
            a, b = flow.create_external_data_map(), flow.create_external_data_map()
            await a.send("input", "a1")
            await b.send("input", "b1")
            await a.send("input", {"payload": {"text": "a2"}, "status": DataEnd})
            await a.close()
            await b.close()
            got_a = [r.data.list[0].data async for r in a]
            got_b = [r.data.list[0].data async for r in b]
    assert got_a == ["a1:0", "a1:0 a2:2"]
    assert got_b == ["b1:0"]
    assert Streaming.calls[:2] == ["create h0", "create h1"]
    assert sorted(Streaming.calls[2:]) == ["destroy h0", "destroy h1"]  # b's at close()


class FailingInit(WrapperBase):
    class requestCls:
        text = StringBodyField("text")

    def wrapperInit(self, config: dict[str, Any]) -> int:
        return 2001

    def wrapperError(self, code: int) -> str:
        return "model file missing"


async def test_failed_init_fails_the_node_with_the_wrapper_error_text() -> None:
    flow = Flow(_graph(wrapper=FailingInit, replicas=2))
    with anyio.fail_after(20), pytest.raises(FlowFailed) as info:
        async with flow:
            pass
    failure = info.value.exceptions[0]
    assert isinstance(failure, NodeFailed)
    assert (failure.node, failure.phase) == ("recognise", "open")
    assert isinstance(failure.__cause__, WrapperExecError)
    assert str(failure.__cause__) == "wrapperInit returned error 2001: model file missing"


async def _call(flow: Flow, call: SessionCall) -> Any:
    session = flow.create_external_data_map()
    await session.send("input", call)
    await session.close()
    (result,) = [result async for result in session]
    return result


async def test_session_calls_reach_any_replica_and_leftovers_are_destroyed_at_fini() -> None:
    Streaming.calls = []
    flow = Flow(_graph(wrapper=Streaming, replicas=3))
    with anyio.fail_after(20):
        async with flow:
            for sid in ("s1", "s2"):
                assert (await _call(flow, SessionCall("create", sid))).error is None
            writes = [
                await _call(flow, SessionCall("write", sid, payload={"text": f"{sid}-{i}"}))
                for i in range(3)
                for sid in ("s1", "s2")
            ]
            assert (await _call(flow, SessionCall("destroy", "s1"))).error is None
            assert (await _call(flow, SessionCall("destroy", "s1"))).error is None  # nothing
            assert Streaming.calls == ["create h0", "create h1", "destroy h0"]
    assert [w.data.list[0].data for w in writes[-2:]] == [
        "s1-0:1 s1-1:1 s1-2:1",
        "s2-0:1 s2-1:1 s2-2:1",
    ]
    assert Streaming.calls == ["create h0", "create h1", "destroy h0", "destroy h1"]


async def test_session_calls_are_refused_by_a_node_that_does_not_share_its_wrapper() -> None:
    Streaming.calls = []
    flow = Flow(_graph(wrapper=Streaming, shared=False))
    with anyio.fail_after(20):
        async with flow:
            result = await _call(flow, SessionCall("create", "s1"))
    assert isinstance(result.error.__cause__, UnitConfigError)
    assert "shared = true" in str(result.error.__cause__)
    assert Streaming.calls == []
