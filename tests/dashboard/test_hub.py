"""The frame hub and the ``dashboard`` sink, without a server: slots, encoding, ledgers."""

from __future__ import annotations

import asyncio

import anyio
import cv2
import numpy as np
import pytest
from structlog.testing import capture_logs
from support.frames import Frames, frame

import actorflow as af
from actorflow.errors import UnitConfigError
from actorflow.flowunits.dashboard.hub import (
    MAX_STREAMS,
    FrameHub,
    Viewer,
    encode_jpeg,
    pack_frame,
)
from actorflow.flowunits.dashboard.sink import DashboardSink

pytestmark = pytest.mark.anyio


async def test_a_viewer_slot_keeps_only_the_newest_frame_and_counts_what_it_replaced() -> None:
    viewer = Viewer()
    assert viewer.offer("cam/1", b"first")
    assert not viewer.offer("cam/1", b"second")
    assert not viewer.offer("cam/1", b"third")
    viewer.offer("stats", "old", frame=False)
    viewer.offer("stats", "new", frame=False)  # status messages are not frame drops
    assert viewer.dropped == 2
    assert viewer.pending() == 2
    assert await viewer.next() == ("cam/1", b"third")
    assert await viewer.next() == ("stats", "new")
    viewer.close()
    with pytest.raises(anyio.EndOfStream):
        await viewer.next()


def test_encode_scales_wide_frames_down_and_decodes_back() -> None:
    jpeg, width, height = encode_jpeg(frame(0, 1280, 720), 70, 640)
    assert (width, height) == (640, 360)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (360, 640, 3)
    message = pack_frame({"stream": "s/1"}, jpeg)
    size = int.from_bytes(message[:4], "big")
    assert message[4 : 4 + size] == b'{"stream":"s/1"}'
    assert message[4 + size :] == jpeg


@pytest.mark.parametrize(
    "params", [{"quality": 0}, {"quality": 101}, {"max_width": -1}, {"max_fps": -2}]
)
def test_bad_parameters_fail_at_build(params: dict[str, float]) -> None:
    with pytest.raises(UnitConfigError, match="must be"):
        DashboardSink(**params)  # type: ignore[arg-type]


async def test_nothing_is_encoded_while_nobody_watches(hub_name: str, frame_hub: FrameHub) -> None:
    src = Frames(count=40)
    sink = DashboardSink(hub=hub_name)(src)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    assert await flow.wait(30) is af.Status.STOP
    counts = frame_hub.counters()
    assert counts["published"] == 40
    assert counts["encoded"] == 0
    assert counts["skipped"] == 39  # the newest one waits for a viewer
    stream = frame_hub.streams["dashboard/1"]
    assert stream.status == "ended"
    assert stream.frame is not None
    node = flow.statistics().nodes["dashboard"]
    assert (node.processed, node.dropped, node.failed) == (40, 0, 0)
    assert flow.statistics().balanced


async def test_a_newcomer_gets_the_last_jpeg_and_the_counts_add_up(frame_hub: FrameHub) -> None:
    """published == encoded + skipped once nothing is pending; newcomers cost no encode."""
    stream = frame_hub.stream("cam", 1, "cam", {"max_fps": 0})
    for i in range(5):
        frame_hub.publish(stream, frame(i))
    async with anyio.create_task_group() as tg:
        tg.start_soon(frame_hub.run_encoder)
        with frame_hub.watch() as viewer:
            key, (message, _) = await viewer.next()
            assert key == "cam/1"
            header_size = int.from_bytes(message[:4], "big")
            assert b'"w":320' in message[4 : 4 + header_size]
            frame_hub.publish(stream, frame(5))
            await frame_hub.wait_handled(2)
            with frame_hub.watch() as second:  # the last JPEG at once, not encoded again
                assert await second.next() == ("cam/1", stream.last)
        tg.cancel_scope.cancel()
    assert (stream.published, stream.encoded, stream.skipped, stream.fresh) == (6, 2, 4, False)
    assert stream.published == stream.encoded + stream.skipped
    assert frame_hub.counters()["viewer_sent"] == 2


async def test_a_frame_that_cannot_be_encoded_is_skipped_and_the_encoder_goes_on(
    frame_hub: FrameHub,
) -> None:
    stream = frame_hub.stream("cam", 1, "", {"max_fps": 0})
    frame_hub.publish(stream, np.zeros((4, 4, 7), np.uint8))  # 7 channels: not a picture
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(frame_hub.run_encoder)
            with frame_hub.watch() as viewer:
                await frame_hub.wait_handled(1)
                frame_hub.publish(stream, frame(1))
                key, _ = await viewer.next()
            tg.cancel_scope.cancel()
    assert key == "cam/1"
    assert (stream.published, stream.encoded, stream.failed, stream.skipped) == (2, 1, 1, 0)
    assert [e["stream"] for e in logs if e["event"] == "dashboard_encode_failed"] == ["cam/1"]


async def test_only_the_streams_a_viewer_wants_are_encoded(frame_hub: FrameHub) -> None:
    one = frame_hub.stream("cam", 1, "", {"max_fps": 0})
    two = frame_hub.stream("cam", 2, "", {"max_fps": 0})
    async with anyio.create_task_group() as tg:
        tg.start_soon(frame_hub.run_encoder)
        with frame_hub.watch({"cam/2"}) as viewer:
            frame_hub.publish(one, frame(0))
            frame_hub.publish(two, frame(1))
            key, _ = await viewer.next()
            assert key == "cam/2"
            assert frame_hub.watched("cam/2")
            assert not frame_hub.watched("cam/1")
        tg.cancel_scope.cancel()
    assert (one.encoded, two.encoded) == (0, 1)
    assert one.fresh  # still waiting for a viewer


async def test_a_sink_given_something_else_than_an_image_fails_that_packet(hub_name: str) -> None:
    @af.source(register=False)
    async def things() -> object:
        yield frame(0)
        yield "not an image"
        yield frame(1)

    src = things()
    sink = DashboardSink(hub=hub_name)(src)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    await flow.wait(30)
    node = flow.statistics().nodes["dashboard"]
    assert (node.processed, node.failed) == (2, 1)
    assert flow.statistics().balanced


async def test_the_encoder_thread_ends_with_the_encoder(frame_hub: FrameHub) -> None:
    stream = frame_hub.stream("cam", 1, "", {"max_fps": 0})
    frame_hub.publish(stream, frame(0))
    async with anyio.create_task_group() as tg:
        tg.start_soon(frame_hub.run_encoder)
        with frame_hub.watch() as viewer:
            await viewer.next()
        tg.cancel_scope.cancel()
    await asyncio.sleep(0)
    # the autouse no_leaks fixture fails the test if actorflow-dashboard-encode outlives it


async def test_a_hub_remembers_a_bounded_number_of_streams(
    hub_name: str, frame_hub: FrameHub
) -> None:
    """A server where every request is a session: old streams are forgotten, oldest first."""
    sessions = MAX_STREAMS + 20
    for session in range(1, sessions + 1):
        frame_hub.publish(frame_hub.stream("live", session, "", {}), frame(session))
    assert len(frame_hub.streams) == MAX_STREAMS
    assert "live/1" not in frame_hub.streams
    assert f"live/{sessions}" in frame_hub.streams


async def test_the_workflow_dashboard_block_publishes_and_passes_the_image_on(
    hub_name: str, frame_hub: FrameHub
) -> None:
    from support.units import Collect

    from actorflow.flowunits.detection.dashboard import DashboardVisualization

    src = Frames(count=5)
    shown = DashboardVisualization(hub=hub_name, title="door")(src)
    sink = Collect()(shown)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    assert await flow.wait(30) is af.Status.STOP
    assert len(sink.items) == 5
    assert all(isinstance(item, np.ndarray) for item in sink.items)
    assert frame_hub.counters()["published"] == 5
    (stream,) = frame_hub.streams.values()
    assert stream.status == "ended"
