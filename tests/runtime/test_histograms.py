"""Per-node latency and batch-size histograms in ``flow.statistics()``."""

from __future__ import annotations

import pytest
from support.units import Collect, Numbers

import actorflow as af
from actorflow.runtime import HistogramSnapshot


def test_quantiles_interpolate_inside_buckets_like_prometheus() -> None:
    snap = HistogramSnapshot((1.0, 2.0, 4.0), (10, 10, 0, 0), 25.0)
    assert snap.count == 20
    assert snap.quantile(0.25) == pytest.approx(0.5)
    assert snap.quantile(0.5) == pytest.approx(1.0)
    assert snap.quantile(0.75) == pytest.approx(1.5)
    assert HistogramSnapshot().quantile(0.5) == 0.0
    beyond = HistogramSnapshot((1.0, 2.0), (0, 0, 3), 30.0)
    assert beyond.quantile(0.99) == 2.0  # the +Inf bucket reports the top bound


@pytest.mark.anyio
async def test_function_units_are_timed_per_packet_in_bursts() -> None:
    @af.flowunit(register=False)
    async def double(x: int) -> int:
        return 2 * x

    src = Numbers(count=300)
    node = double()(src)
    flow = af.Flow([src], [node])
    await flow.run_async()
    await flow.wait(30)
    assert flow.graph is not None
    stats = flow.statistics().nodes[flow.graph.nodes[-1].id]
    assert stats.latency.count == stats.processed == 300
    assert 0 < stats.latency.sum <= stats.busy_s * (1 + 1e-9)  # bursts of markers add busy only


@pytest.mark.anyio
async def test_every_process_call_is_one_latency_observation() -> None:
    src = Numbers(count=50)
    sink = Collect()(src)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    await flow.wait(30)
    node = flow.statistics().nodes["collect"]
    assert node.latency.count == node.processed == 50
    assert node.latency.sum == pytest.approx(node.busy_s)
    assert 0 < node.latency.quantile(0.5) <= node.latency.quantile(0.95)
    assert node.batch_sizes.count == 0
    source = flow.statistics().nodes["numbers"]
    assert source.latency.count == 0  # sources are not timed
