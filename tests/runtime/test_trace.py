"""Chrome-trace export of actor spans (``Flow(trace=True)``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.units import AddOne, Collect, Numbers

import actorflow as af
from actorflow.runtime._trace import Tracer

pytestmark = pytest.mark.anyio


@af.flowunit(register=False)
def blocking_double(x: int) -> int:
    return 2 * x


@af.flowunit(register=False)
async def triple(x: int) -> int:
    return 3 * x


async def test_trace_has_a_span_per_call_on_named_tracks(tmp_path: Path) -> None:
    src = Numbers(count=12)
    sink = Collect()(AddOne()(triple()(blocking_double()(src))))
    flow = af.Flow([src], [sink], trace=True)
    await flow.run_async()
    await flow.wait(5)
    path = flow.write_trace(tmp_path / "trace.json")
    doc = json.loads(path.read_text())
    tracks = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M"}
    spans: dict[str, list[dict[str, Any]]] = {}
    for event in doc["traceEvents"]:
        if event["ph"] == "X":
            spans.setdefault(tracks[event["tid"]], []).append(event)
    assert len(spans["triple/0"]) == 12  # the fast path of async function units
    assert len(spans["add_one/0"]) == 12  # class units
    assert len(spans["collect/0"]) == 12
    assert len(spans["actorflow-blocking_double-0"]) == 12  # the executor thread's calls
    assert all(e["dur"] >= 0 for s in spans.values() for e in s)
    assert [e["args"]["seq"] for e in spans["add_one/0"]] == list(range(12))
    assert doc["otherData"]["dropped_spans"] == 0


async def test_write_trace_needs_tracing_enabled(tmp_path: Path) -> None:
    src = Numbers(count=1)
    flow = af.Flow([src], [Collect()(src)])
    with pytest.raises(af.FlowStateError, match=r"Flow\(\.\.\., trace=True\)"):
        flow.write_trace(tmp_path / "t.json")


def test_tracer_keeps_at_most_its_limit() -> None:
    tracer = Tracer(limit=3)
    for i in range(5):
        tracer.span("n/0", "process", float(i), float(i) + 0.5)
    assert (len(tracer), tracer.dropped) == (3, 2)
