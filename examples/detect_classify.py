"""Images over a socket to a detect -> classify service, with actorflow.

A popular blog-post design sends pickled frames over ``multiprocessing.connection``
to a server whose threads polled shared queues with sleeps, one image at a time; its
author measured 300 ms per image. Here:

* **Protocol**: length-prefixed frames on plain TCP, no pickle: a 4-byte big-endian
  header length, a JSON header (``{"id": 7, "encoding": "jpeg"}``), a 4-byte payload
  length, then the raw JPEG bytes. Responses use the same framing with the faces as
  JSON. Sizes are capped before anything is allocated (``MAX_HEADER``/``MAX_PAYLOAD``).
* **Service**: an actorflow graph per process: ``image_decode`` (limits checked before
  decoding) -> ``color_convert`` -> MTCNN *detect* (P-Net over the pyramid) -> *classify*
  (R-Net and O-Net on batched candidate crops). One session per connection: results
  come back in order, and backpressure reaches the socket (a slow service stops reading).
* **Client**: pipelined, a window of requests in flight; measures per-image latency
  (send to answer) and throughput.

Run ``python examples/detect_classify.py`` (prints JSON); ``--compare`` also runs that
multiprocessing design, re-implemented in ``benchmarks/seed003_baseline.py``, on the same
images.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import struct
import time
from typing import Any

import anyio
import cv2
import numpy as np

from actorflow.flowunits.mtcnn.graph import mtcnn_nodes
from actorflow.runtime import Flow

MAX_HEADER = 64 * 1024
MAX_PAYLOAD = 16 * 1024 * 1024
HOST = "127.0.0.1"


# -- protocol ------------------------------------------------------------------------


def encode_message(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """One frame: header length, JSON header, payload length, payload."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + struct.pack(">I", len(payload)) + payload


async def read_message(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    """Read one frame; raises ``asyncio.IncompleteReadError`` at end of stream.

    Raises:
        ValueError: a length over the caps (the connection should be dropped).
    """
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    if size > MAX_HEADER:
        raise ValueError(f"header of {size} bytes is over {MAX_HEADER}")
    header = json.loads(await reader.readexactly(size))
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    if size > MAX_PAYLOAD:
        raise ValueError(f"payload of {size} bytes is over {MAX_PAYLOAD}")
    return header, await reader.readexactly(size)


# -- service ---------------------------------------------------------------------------


def service_graph() -> dict[str, Any]:
    """input (JPEG bytes) -> decode -> RGB -> detect (P-Net) -> classify (R/O-Net) -> output."""
    nodes, edges, detections = mtcnn_nodes("rgb:image", device="cpu")
    return {
        "name": "detect_classify",
        "nodes": {
            "input": {"type": "input"},
            "decode": {"flowunit": "image_decode", "max_pixels": 20_000_000},
            "rgb": {"flowunit": "color_convert", "code": "bgr2rgb"},
            **nodes,
            "output": {"type": "output"},
        },
        "edges": [
            "input -> decode:data",
            "decode:image -> rgb:image",
            *edges,
            f"{detections} -> output",
        ],
    }


async def handle(flow: Flow, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection = one session; answers go back in request order."""
    session = flow.create_external_data_map()
    ids: list[Any] = []

    async def pump() -> None:
        try:
            while True:
                header, payload = await read_message(reader)
                ids.append(header.get("id"))
                await session.send("input", payload)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            await session.close()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            async for result in session:
                answer: dict[str, Any] = {"id": ids[result.seq]}
                if result.ok:
                    answer["faces"] = result.data.to_json()
                else:
                    answer["error"] = str(result.error.__cause__ or result.error)
                writer.write(encode_message(answer))
                await writer.drain()
    finally:
        writer.close()


async def serve(port: int, ready: Any) -> None:
    """Run the flow and the TCP server until cancelled."""
    flow = Flow(service_graph())
    await flow.run_async()
    server = await asyncio.start_server(lambda r, w: handle(flow, r, w), HOST, port)
    ready.put(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def serve_process(port: int, ready: Any) -> None:
    """Entry point of the service process."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    asyncio.run(serve(port, ready))


# -- client --------------------------------------------------------------------------


async def client(port: int, images: list[bytes], window: int) -> dict[str, Any]:
    """Send every image with ``window`` requests in flight; collect latencies."""
    reader, writer = await asyncio.open_connection(HOST, port)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    faces: list[int] = []
    slots = asyncio.Semaphore(window)

    async def sender() -> None:
        for i, data in enumerate(images):
            await slots.acquire()
            sent_at[i] = time.perf_counter()
            writer.write(encode_message({"id": i, "encoding": "jpeg"}, data))
            await writer.drain()
        writer.write_eof()

    started = time.perf_counter()
    task = asyncio.create_task(sender())
    for _ in images:
        header, _ = await read_message(reader)
        latencies.append(time.perf_counter() - sent_at[header["id"]])
        faces.append(len(header.get("faces", [])))
        slots.release()
    elapsed = time.perf_counter() - started
    await task
    writer.close()
    return summary(latencies, elapsed, faces)


def summary(latencies: list[float], elapsed: float, faces: list[int]) -> dict[str, Any]:
    """Latency percentiles (ms), throughput (images/s) and faces found."""
    ordered = sorted(latencies)
    return {
        "images": len(latencies),
        "throughput_ips": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(ordered) * 1000, 1),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
            "max": round(ordered[-1] * 1000, 1),
        },
        "faces_total": sum(faces),
    }


def make_images(count: int) -> list[bytes]:
    """JPEG-encoded photos from scikit-image (faces and non-faces), cycled."""
    import skimage.data

    photos = [
        skimage.data.astronaut(),
        np.stack([skimage.data.camera()] * 3, axis=-1),
        skimage.data.coffee(),
        skimage.data.chelsea(),
    ]
    encoded = []
    for photo in photos:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        assert ok
        encoded.append(buf.tobytes())
    return [encoded[i % len(encoded)] for i in range(count)]


def run_actorflow(images: list[bytes], windows: list[int]) -> dict[str, Any]:
    """Start the service process, run the client once per window size."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    proc = ctx.Process(target=serve_process, args=(0, ready), daemon=True)
    proc.start()
    try:
        port = ready.get(timeout=120)
        asyncio.run(client(port, images[:4], 4))  # warm-up
        return {f"window_{w}": asyncio.run(client(port, images, w)) for w in windows}
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run the multiprocessing design (benchmarks/seed003_baseline.py)",
    )
    args = parser.parse_args()
    images = make_images(args.images)
    report: dict[str, Any] = {"actorflow": run_actorflow(images, [1, 8])}
    if args.compare:
        import importlib
        import sys
        from pathlib import Path

        # importable by name, so that its spawned processes can import it too
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
        baseline = importlib.import_module("seed003_baseline")
        report["seed003_baseline"] = baseline.run_baseline(images)
        ours, theirs = report["actorflow"]["window_8"], report["seed003_baseline"]
        report["ratio_throughput"] = round(ours["throughput_ips"] / theirs["throughput_ips"], 2)
        report["ratio_p50_latency_lockstep"] = round(
            theirs["latency_ms"]["p50"] / report["actorflow"]["window_1"]["latency_ms"]["p50"], 2
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
