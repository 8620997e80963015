"""videoflow compatibility: seed 001's example runs with only its imports changed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from actorflow import GraphCycleError
from actorflow.compat.videoflow.consumers import VoidConsumer
from actorflow.compat.videoflow.core import REALTIME, Flow
from actorflow.compat.videoflow.core.node import ConsumerNode, ProcessorNode, ProducerNode
from actorflow.compat.videoflow.processors import IdentityProcessor, JoinerProcessor
from actorflow.compat.videoflow.producers import IntProducer

SEED_EXAMPLE = """
from actorflow.compat.videoflow.core import Flow
from actorflow.compat.videoflow.producers import IntProducer
from actorflow.compat.videoflow.processors import IdentityProcessor
from actorflow.compat.videoflow.consumers import CommandlineConsumer

A = IntProducer(0, 40, 0.001)
B = IdentityProcessor()(A)
C = CommandlineConsumer()(B)
flow = Flow([A], [C])
flow.run()
flow.join()
"""


class Keep(ConsumerNode):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[Any] = []

    def consume(self, item: Any) -> None:
        self.items.append(item)


def quiet_env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_seed_example_runs_with_only_imports_changed() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SEED_EXAMPLE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=quiet_env(),
    )
    numbers = [int(line) for line in out.stdout.split() if line.isdigit()]
    assert numbers == list(range(41))


def test_calling_a_node_twice_raises_runtime_error() -> None:
    a = IntProducer(0, 3)
    b = IdentityProcessor()(a)
    with pytest.raises(RuntimeError, match="already called"):
        b(a)


def test_a_cycle_raises_value_error() -> None:
    a, b = IdentityProcessor(), IdentityProcessor()
    a(b)
    b(a)
    with pytest.raises(ValueError, match="cycle") as info:
        Flow([], [VoidConsumer()(a)])
    assert isinstance(info.value, GraphCycleError)


def test_joiner_with_several_tasks_keeps_order() -> None:
    producer = IntProducer(0, 30)
    left = IdentityProcessor(nb_tasks=3)(producer)
    right = IdentityProcessor(nb_tasks=2)(left)
    joined = JoinerProcessor()(left, right)
    sink = Keep()(joined)
    flow = Flow([producer], [sink])
    flow.run()
    flow.join()
    assert sink.items == [(i, i) for i in range(31)]


def test_several_producers_are_supported() -> None:
    one, two = IntProducer(0, 4, name="one"), IntProducer(10, 12, name="two")
    a, b = Keep()(one), Keep()(two)
    flow = Flow([one, two], [a, b])
    flow.run()
    flow.join()
    assert (a.items, b.items) == ([0, 1, 2, 3, 4], [10, 11, 12])


def test_stop_ends_an_endless_flow() -> None:
    producer = IntProducer(0, None, 0.001)
    sink = Keep()(IdentityProcessor()(producer))
    flow = Flow([producer], [sink], flow_type=REALTIME)
    flow.run()
    while len(sink.items) < 5:
        time.sleep(0.01)
    flow.stop()
    flow.join()
    assert sink.items[:5] == [0, 1, 2, 3, 4]
    assert flow.native.state == "stopped"


def test_custom_nodes_and_failures_surface_from_join() -> None:
    class Ten(ProducerNode):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def next(self) -> int:
            self.n += 1
            if self.n > 10:
                raise StopIteration
            return self.n

    class Invert(ProcessorNode):
        def process(self, x: int) -> float:
            return 1 / (x - 5)

    producer = Ten()
    sink = Keep()(Invert()(producer))
    flow = Flow([producer], [sink])
    flow.run()
    flow.join()  # one failure is within the restart policy: the flow goes on
    assert len(sink.items) == 9
    assert flow.native.statistics().nodes["invert"].failed == 1


def test_ctrl_c_during_join_stops_gracefully() -> None:
    code = textwrap.dedent("""
        import sys
        from actorflow.compat.videoflow.core import Flow
        from actorflow.compat.videoflow.producers import IntProducer
        from actorflow.compat.videoflow.consumers import VoidConsumer
        flow = Flow([p := IntProducer(0, None, 0.001)], [VoidConsumer()(p)])
        flow.run()
        print("running", flush=True)
        flow.join()
        print("state", flow.native.state, flush=True)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        stderr=subprocess.DEVNULL,
        env=quiet_env(),
    )
    assert proc.stdout is not None
    while "running" not in proc.stdout.readline():
        pass
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "state stopped" in out
    assert proc.returncode == 0
