"""A camera that goes away and comes back: ``video_source`` against a real RTSP server.

The server is GStreamer's rtsp-server on 127.0.0.1 (``tests/support/rtsp_server.py``,
run with Debian's Python, which the Makefile gives ``python3-gi`` and the rtsp-server
typelib). It is killed mid-stream, by its process id, and started again on the same
port; the source must reconnect, count the outage, and the flow's other stream must
not notice.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from support.units import registry_with

import actorflow as af
from actorflow.flowunits.video.sources import VideoSource

pytestmark = pytest.mark.anyio

SERVER = Path(__file__).parents[1] / "support" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


class RtspServer:
    """One rtsp-server process on a fixed port; ``start``/``kill`` by process id."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/test"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.proc = None


@pytest.fixture
def rtsp(monkeypatch: pytest.MonkeyPatch) -> Iterator[RtspServer]:
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    server = RtspServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Counter(af.FlowUnit):
    """Counts frames per stream and wakes waiters on every frame."""

    inp = af.Input("frame")
    seen: ClassVar[dict[str, int]] = {}
    tick: ClassVar[anyio.Event | None] = None

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        stream = packet.meta["stream"]
        Counter.seen[stream] = Counter.seen.get(stream, 0) + 1
        if Counter.tick is not None:
            Counter.tick.set()


class Ticks(af.SourceUnit):
    """A second, synthetic stream that never stops."""

    out = af.Output("frame")

    async def generate(self, ctx: af.Context) -> Any:
        i = 0
        while True:
            yield i
            i += 1
            await anyio.sleep(0.01)


async def frames_until(condition: Any) -> None:
    """Wait for frames until ``condition()`` holds (re-checked at every frame)."""
    with anyio.fail_after(60):  # a hang guard, not a bound under test
        while not condition():
            Counter.tick = anyio.Event()
            await Counter.tick.wait()


async def test_an_rtsp_source_reconnects_after_its_server_restarts(rtsp: RtspServer) -> None:
    Counter.seen = {}
    flow = af.Flow(
        {
            "nodes": {"frames": {"type": "input"}, "count": {"flowunit": "counter"}},
            "edges": ["frames -> count"],
        },
        registry=registry_with(Counter),
    )
    camera = VideoSource(uri=rtsp.url, backoff=0.2, backoff_max=0.5, timeout=1.0, max_reconnects=-1)
    async with flow:
        flow.add_source(camera, stream_id="cam")
        flow.add_source(Ticks(), stream_id="ticks")
        await frames_until(lambda: Counter.seen.get("cam", 0) >= 10)
        assert flow.statistics().streams["cam"].status == "live"

        rtsp.kill()
        await frames_until(lambda: camera.status == "reconnecting")
        cam_at_outage, ticks_at_outage = Counter.seen["cam"], Counter.seen["ticks"]
        await frames_until(lambda: Counter.seen["ticks"] >= ticks_at_outage + 20)
        assert camera.status == "reconnecting"  # the other stream flowed meanwhile

        rtsp.start()
        await frames_until(lambda: Counter.seen["cam"] >= cam_at_outage + 10)
        stats = flow.statistics().streams["cam"]
        assert stats.status == "live"
        assert camera.outages == 1
        assert camera.describe() == {"status": "live", "outages": 1}
    assert flow.statistics().balanced
