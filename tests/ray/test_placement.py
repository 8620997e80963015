"""Ray placement on a real simulated cluster (issue 14): one head and two worker nodes.

One module-scoped ``ray.cluster_utils.Cluster`` serves every test (it takes tens of
seconds to start); it is shut down with its own API. Each test checks a promise of
DESIGN §11 as a hostile user would: same results in the same order as the all-local
graph, an actor killed mid-stream, stop and ``wait(timeout)`` with a remote node
blocked (and a ``close`` that never returns), and a fast source held back by a slow
remote node with bounded driver memory. Every ledger must close. No timing is
asserted; ``HANG_GUARD_S`` only keeps a broken build from hanging the suite.
"""

from __future__ import annotations

import importlib
import itertools
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import ray
from ray.cluster_utils import Cluster
from support.ray_units import Double, Frames, Gate, GatedAddOne, Mean, Watch, Where, rss_parts
from support.units import AddOne, Collect, Numbers, registry_with, run_session

import actorflow as af
from actorflow.dashboard._snapshot import _remote_replicas
from actorflow.serve._metrics import FlowCollector

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

TESTS = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 120.0
"""Only a guard against hanging forever; never a bound."""
MB = 1 << 20
STORE = 128 * MB
"""Object store of each simulated node."""
REGISTRY = registry_with(AddOne, Double, Where, GatedAddOne, Mean)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head (1 CPU) and two worker nodes (2 CPUs, resources ``node_a`` / ``node_b``).

    Workers get ``tests/`` on their ``PYTHONPATH`` to import the test units by name.
    """
    store = STORE
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": store, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=2, resources={"node_a": 100}, object_store_memory=store)
        cluster.add_node(num_cpus=2, resources={"node_b": 100}, object_store_memory=store)
        cluster.wait_for_nodes()
        ray.init(
            address=cluster.address,
            runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}},
            log_to_driver=False,
        )
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """``input -> n0 -> n1 ... -> output`` with the given node attributes."""
    names = ["input", *(f"n{i}" for i in range(len(nodes))), "output"]
    graph_nodes: dict[str, Any] = {"input": {"type": "input"}, "output": {"type": "output"}}
    graph_nodes.update({f"n{i}": attrs for i, attrs in enumerate(nodes)})
    edges = [f"{a} -> {b}" for a, b in itertools.pairwise(names)]
    return {"name": "placement", "nodes": graph_nodes, "edges": edges}


def local(graph: dict[str, Any]) -> dict[str, Any]:
    """The same graph with every node in-process."""
    nodes = {
        k: {a: v for a, v in attrs.items() if a not in ("placement", "resources", "window")}
        for k, attrs in graph["nodes"].items()
    }
    return {**graph, "nodes": nodes}


async def run(graph: dict[str, Any], items: list[Any], **options: Any) -> tuple[Any, Any]:
    """Results of one session through ``graph``, and the flow's final statistics."""
    flow = af.Flow(graph, registry=REGISTRY, **options)
    await flow.run_async()
    try:
        with anyio.fail_after(HANG_GUARD_S):
            results = await run_session(flow, items)
    finally:
        await flow.stop()
    stats = flow.statistics()
    assert stats.balanced, stats
    return [(r.seq, r.data if r.ok else str(r.error)) for r in results], stats


def node_ids(stats: Any, node: str) -> list[str]:
    return [row["node_id"] for row in stats.nodes[node].info["replicas"]]


async def test_one_remote_node_gives_the_local_results_in_order(cluster: Cluster) -> None:
    graph = chain({"unit": "double", "placement": "ray", "replicas": 2, "window": 3})
    items = list(range(40))
    remote, stats = await run(graph, items)
    expected, _ = await run(local(graph), items)
    assert remote == expected
    assert [seq for seq, _ in remote] == items
    assert sum("divisible by 7" in str(v) for _, v in remote) == 6  # 0, 7, ..., 35
    node = stats.nodes["n0"]
    assert (node.processed, node.failed) == (34, 6)
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(node_ids(stats, "n0")) <= alive
    assert sum(row["calls"] for row in node.info["replicas"]) == 40
    assert all(row["in_flight"] == 0 for row in node.info["replicas"])


async def test_a_batching_remote_node_keeps_order_and_batch_failures(cluster: Cluster) -> None:
    """Batches go to the actors whole and fail as they do locally: a ``process_batch``
    that raises fails every member (those it emitted before raising reach the session
    too, as locally). Where batches are cut depends on timing, so members vary."""
    node = {"unit": "double", "placement": "ray", "replicas": 2, "batch_size": 4}
    graph = chain({**node, "batch_timeout": 0.01})
    items = list(range(1, 30))
    remote, stats = await run(graph, items)
    first_seen = list(dict.fromkeys(seq for seq, _ in remote))
    assert first_seen == list(range(len(items)))  # in order, each item at least once
    failed = {items[seq] for seq, v in remote if isinstance(v, str)}
    assert {7, 14, 21, 28} <= failed
    assert all("divisible by 7" in v for _, v in remote if isinstance(v, str))
    assert all(v == 2 * items[seq] for seq, v in remote if not isinstance(v, str))
    assert stats.nodes["n0"].failed == len(failed)


async def test_mixed_chain_matches_all_local_and_frames_skip_the_driver(cluster: Cluster) -> None:
    graph = chain(
        {"unit": "addone"},
        {"unit": "double", "placement": "ray", "replicas": 2, "resources": "num_cpus=0.25"},
        {"unit": "addone", "placement": "ray", "resources": {"node_b": 1}},
        {"unit": "where"},
    )
    items = list(range(30))
    remote, stats = await run(graph, items)
    expected, _ = await run(local(graph), items)
    driver = os.getpid()
    assert [s for s, _ in remote] == items
    assert [v if isinstance(v, str) else v[0] for _, v in remote] == [
        v if isinstance(v, str) else v[0] for _, v in expected
    ]
    assert {v[1] for _, v in remote if not isinstance(v, str)} == {driver}  # n3 is local
    assert stats.nodes["n1"].info["objectref_ports"] == ["out"]  # n1 -> n2: both remote
    assert stats.nodes["n2"].info["objectref_ports"] == []  # n2 -> n3: n3 is local
    node_b = {n["NodeID"] for n in ray.nodes() if n["Alive"] and "node_b" in n["Resources"]}
    assert set(node_ids(stats, "n2")) == node_b  # custom resources pin the replica


async def test_killed_actor_fails_its_packets_and_is_restarted(cluster: Cluster) -> None:
    gate_name = f"gate-{uuid.uuid4().hex}"
    gate = Gate.options(name=gate_name).remote()  # type: ignore[attr-defined]
    graph = chain({"unit": "gatedaddone", "gate": gate_name, "placement": "ray", "window": 2})
    flow = af.Flow(graph, registry=REGISTRY)
    await flow.run_async()
    try:
        session = flow.session()
        results: list[af.Result] = []

        async def read() -> None:
            async for result in session:
                results.append(result)

        with anyio.fail_after(HANG_GUARD_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                for i in range(6):
                    await session.send("input", i)
                (actor,) = await gate.arrived.remote(1)  # item 0 is in process(), 1 queued
                ray.kill(actor, no_restart=True)
                gate.open.remote()
                await session.close()
        stats = flow.statistics()
    finally:
        await flow.stop()
    assert [r.seq for r in results] == list(range(6))
    assert [r.data for r in results[2:]] == [3, 4, 5, 6]
    for lost in results[:2]:
        assert isinstance(lost.error, af.NodeFailed)
        assert lost.error.node == "n0"
        assert "died" in str(lost.error)
    node = stats.nodes["n0"]
    assert (node.processed, node.failed, node.restarts) == (4, 2, 1)
    (replica,) = node.info["replicas"]
    assert (replica["restarts"], replica["failed"], replica["alive"]) == (1, 2, True)
    assert stats.sessions[session.id].balanced
    assert flow.statistics().balanced
    metrics = {  # the same figures on /metrics, one series per replica
        sample.name: sample.value
        for family in FlowCollector(lambda: stats).collect()
        if family.name.startswith("actorflow_ray_replica")
        for sample in family.samples
        if sample.labels["node"] == "n0"
    }
    assert metrics["actorflow_ray_replica_restarts_total"] == 1
    assert metrics["actorflow_ray_replica_failed_total"] == 2
    assert metrics["actorflow_ray_replica_in_flight"] == 0
    remote = _remote_replicas(node.info)  # what the dashboard's node card shows
    assert [(r["replica"], r["restarts"], r["alive"]) for r in remote] == [(0, 1, True)]


@pytest.mark.parametrize("how", ["stop", "wait"])
async def test_stop_and_wait_end_with_a_remote_node_blocked(cluster: Cluster, how: str) -> None:
    gate_name = f"gate-{uuid.uuid4().hex}"
    gate = Gate.options(name=gate_name).remote()  # type: ignore[attr-defined]
    blocked = {"unit": "gatedaddone", "gate": gate_name, "close_blocks": True}
    graph = chain({**blocked, "placement": "ray", "replicas": 2, "window": 2})
    flow = af.Flow(graph, registry=REGISTRY, stop_grace=0.2, close_timeout=0.5)
    await flow.run_async()
    session = flow.session()
    with anyio.fail_after(HANG_GUARD_S):
        for i in range(10):
            await session.send("input", i)
        actors = await gate.arrived.remote(2)  # both replicas are stuck in process()
        if how == "stop":
            await flow.stop()
            status = await flow.wait(None)
            assert status == af.Status.STOP
        else:
            assert await flow.wait(0.2) == af.Status.TIMEOUT
    assert flow.state == "stopped"
    stats = flow.statistics()
    node = stats.nodes["n0"]
    assert node.cancelled == 10  # 4 in flight (2 replicas x window 2) + 6 in the mailbox
    assert node.processed == 0
    assert stats.balanced, stats
    for actor in actors:  # close() never returned: the actors were killed
        # ray.kill returns before the actor is gone, so a quick call may still be
        # answered; a call that can only end with the actor (a close that blocks, queued
        # behind the blocked ones) fails once it is killed, and hangs if it never is.
        with anyio.fail_after(HANG_GUARD_S), pytest.raises(ray.exceptions.RayActorError):
            await actor.close.remote()
    gate.open.remote()


async def test_slow_remote_node_backpressures_a_fast_source(cluster: Cluster) -> None:
    shape, count, queue, window = (480, 640, 3), 300, 4, 2
    frame = 480 * 640 * 3
    made: list[int] = [0]
    seen: list[float] = []
    rss: list[dict[str, int]] = []
    ahead: list[int] = []
    source = Frames(count=count, shape=shape, made=made)
    mean = Mean().options(placement="ray", window=window, queue_size=queue)
    sink = Watch(made=made, seen=seen, rss=rss, ahead=ahead).options(queue_size=queue)
    flow = af.Flow([source], [sink(mean(source))])
    baseline = rss_parts()
    with anyio.fail_after(HANG_GUARD_S):
        await flow.run_async()
        status = await flow.wait(None)
    assert status == af.Status.STOP
    assert seen == [float(i % 251) for i in range(count)]
    # the source is held back by the credit window, not by memory: at most the two
    # mailboxes, the window and the items in hand (source and sink) are ahead
    assert max(ahead) <= 2 * queue + window + 2
    # the driver's own memory (anonymous + file pages) stays within the bound...
    own = max(r["RssAnon"] + r["RssFile"] for r in rss)
    assert own - baseline["RssAnon"] - baseline["RssFile"] <= (2 * queue + window) * frame + 60 * MB
    # ...and the pages of Ray's object store it touched putting frames there are
    # capped by the store's size (those pages are shared with the raylet)
    assert max(r["RssShmem"] for r in rss) <= STORE
    assert flow.statistics().balanced


async def test_resources_no_node_has_fail_the_start_naming_the_node(cluster: Cluster) -> None:
    """An infeasible actor would wait forever in Ray: the flow refuses to start instead."""
    graph = chain({"unit": "double", "placement": "ray", "resources": "num_gpus=1, node_a=1"})
    flow = af.Flow(graph, registry=REGISTRY)
    with anyio.fail_after(HANG_GUARD_S), pytest.raises(af.FlowFailed) as failed:
        await flow.run_async()
    text = str(failed.value)
    assert "node 'n0'" in text
    assert "num_gpus=1, node_a=1" in text
    assert "no node of the cluster has" in text
    assert flow.state == "failed"


async def test_a_unit_the_workers_cannot_import_is_named(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit importable here but not on the workers: the start fails with the fix."""
    name = f"only_here_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "import actorflow as af\n\n"
        "class Here(af.FlowUnit):\n"
        "    inp = af.Input('in')\n\n"
        "    async def process(self, ctx, packet):\n"
        "        pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    numbers = Numbers(count=3)
    here = module.Here().options(placement="ray")
    flow = af.Flow([numbers], [here(numbers)])
    with anyio.fail_after(HANG_GUARD_S), pytest.raises(af.FlowFailed) as failed:
        await flow.run_async()
    assert f"cannot import the unit of node 'here' (No module named '{name}')" in str(failed.value)
    assert "runtime_env" in str(failed.value)


def test_a_source_cannot_be_placed_on_ray() -> None:
    graph = {
        "nodes": {"src": {"unit": "numbers", "placement": "ray"}, "sink": {"unit": "collect"}},
        "edges": ["src -> sink"],
    }
    flow = af.Flow(graph, registry=registry_with(Numbers, Collect))
    with pytest.raises(af.UnitConfigError, match=r"'src'.*source.*placement=ray"):
        flow.build()


UNITS_MODULE = """
import actorflow as af


class Count(af.SourceUnit):
    name = "cli_count"
    out = af.Output("out")

    def __init__(self, *, n: int) -> None:
        self.n = n

    async def generate(self, ctx):
        for i in range(self.n):
            yield i


@af.flowunit(name="cli_square")
async def square(x: int) -> int:
    return x * x


class Save(af.FlowUnit):
    name = "cli_save"
    inp = af.Input("in")

    def __init__(self, *, path: str) -> None:
        self.path = path

    async def open(self, ctx):
        self.file = open(ctx.resolve_path(self.path), "w")

    async def process(self, ctx, packet):
        self.file.write(f"{packet.data}\\n")

    async def close(self, ctx):
        self.file.close()
"""

GRAPH_TOML = """\
[driver]
dir = ["units"]
[graph]
format = "graphviz"
graphconf = '''digraph cli {
  src[flowunit=cli_count, n=20]
  sq[flowunit=cli_square, placement=ray, replicas=2, resources="num_cpus=0.25"]
  save[flowunit=cli_save, path="out.txt"]
  src -> sq -> save
}'''
"""


async def test_cli_runs_a_graph_file_on_a_cluster_address(cluster: Cluster, tmp_path: Path) -> None:
    """A separate driver (``actorflow run --ray``) whose units only it can import: the
    units of its ``[driver] dir`` travel to the workers by value."""
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "cli_units.py").write_text(UNITS_MODULE)
    (tmp_path / "graph.toml").write_text(GRAPH_TOML)
    cmd = [sys.executable, "-m", "actorflow", "run", "graph.toml", "--ray", cluster.address]
    with anyio.fail_after(HANG_GUARD_S):
        done = await anyio.run_process(cmd, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert (tmp_path / "out.txt").read_text().split() == [str(i * i) for i in range(20)]
