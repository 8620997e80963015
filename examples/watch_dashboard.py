"""Watch a flow live: a dashboard sink in a Python-built flow, the page mounted in an app.

A camera-like source draws a moving box on each frame; a ``dashboard`` sink publishes the
frames; the dashboard is mounted in an aiohttp application next to your own routes. The
script reads the page's first messages and one frame, then stops (pass ``--forever`` to keep
the page up at http://127.0.0.1:8765/dashboard until Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
import cv2
import numpy as np
from aiohttp import web

import actorflow as af
from actorflow.dashboard import mount
from actorflow.flowunits.dashboard.sink import DashboardSink


@af.source(register=False)
async def camera(fps: float = 25.0) -> AsyncIterator[np.ndarray]:
    i = 0
    while True:
        image = np.full((240, 320, 3), 40, np.uint8)
        x = 20 + (7 * i) % 200
        cv2.rectangle(image, (x, 60), (x + 80, 160), (0, 155, 255), 3)
        yield image
        i += 1
        await asyncio.sleep(1 / fps)  # a camera's frame rate


async def main(forever: bool) -> None:
    source = camera()
    live = DashboardSink(title="camera 1")(source)
    flow = af.Flow([source], [live])
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="my service"))
    mount(app, flow)  # GET /dashboard, /dashboard/ws, /dashboard/mjpeg/{node}/{session}
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 8765 if forever else 0).start()
    port = runner.addresses[0][1]
    await flow.run_async()
    try:
        url = f"http://127.0.0.1:{port}/dashboard"
        print(f"dashboard: {url}")
        if forever:
            await flow.wait()
            return
        async with aiohttp.ClientSession() as http:
            await show_one_frame(http, url)
            async with http.get(url + "/streams") as response:
                for stream in await response.json():
                    print(f"{stream['title']}: MJPEG at http://127.0.0.1:{port}{stream['mjpeg']}")
    finally:
        await flow.stop()
        await runner.cleanup()


async def show_one_frame(http: aiohttp.ClientSession, url: str) -> None:
    async with http.ws_connect(url + "/ws") as ws:
        hello = await ws.receive_json()
        print("graph:", [n["id"] for n in hello["graph"]["nodes"]])
        while (msg := await ws.receive()).type is not aiohttp.WSMsgType.BINARY:
            pass
        size = int.from_bytes(msg.data[:4], "big")
        print("frame header:", msg.data[4 : 4 + size].decode())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--forever", action="store_true")
    asyncio.run(main(parser.parse_args().forever))
