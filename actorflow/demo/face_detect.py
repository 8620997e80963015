"""Face detection on a moving astronaut: build a video, run the MTCNN graph, check it.

1. Writes ``out/demo/astronaut.avi`` (MJPG): scikit-image's astronaut photo, translated
   along a Lissajous path, one position per frame.
2. Runs ``graphs/face_detect.toml`` (the dict twin from ``actorflow.flowunits.mtcnn.graph``
   when the file is not there, e.g. in an installed package): video -> MTCNN -> an
   annotated video and a JSON-lines file of boxes.
3. Checks every frame: exactly the moved face, IoU >= 0.5 against its known position
   (``[179, 60, 89, 113]`` x, y, w, h in the photo). Prints a statistics table and
   exits 1 if any frame misses the face or an output file does not open. Other boxes
   (MTCNN finds a face-like patch on the suit in a few frames) are counted and shown.

With ``--dashboard [HOST:]PORT`` (``make demo DASHBOARD=1``) a ``dashboard`` sink shows
the annotated video live, the video plays at its frame rate (300 frames unless
``--frames`` says otherwise), the page's URL is printed first, and the page stays up
after the check until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
import structlog

from actorflow.flowunits.detection.detections import box_iou
from actorflow.flowunits.mtcnn.graph import face_detect_graph
from actorflow.graph import EdgeSpec, Graph, NodeSpec, PortRef, load_graph
from actorflow.runtime import Flow, Status

FACE_XYWH = (179, 60, 89, 113)
"""The astronaut's face in ``skimage.data.astronaut()`` (MTCNN reference result)."""
GRAPH_FILE = Path("graphs/face_detect.toml")


@dataclass(frozen=True)
class Check:
    """The outcome of one frame."""

    seq: int
    expected: tuple[float, float, float, float]
    found: int
    iou: float

    @property
    def ok(self) -> bool:
        """A face overlaps the known position by IoU >= 0.5."""
        return self.iou >= 0.5


def motion(index: int, frames: int) -> tuple[int, int]:
    """Shift (dx, dy) of frame ``index``: a Lissajous path within +-60 x +-30 pixels."""
    phase = 2 * math.pi * index / frames
    return round(60 * math.sin(phase)), round(30 * math.sin(2 * phase))


def write_input_video(path: Path, frames: int, fps: float) -> None:
    """Write the astronaut, moving, as MJPG frames (BGR)."""
    import skimage.data

    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)  # type: ignore[no-untyped-call]
    height, width = photo.shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height)
    )
    if not writer.isOpened():
        msg = f"cannot open an MJPG writer for {path}"
        raise OSError(msg)
    try:
        for i in range(frames):
            dx, dy = motion(i, frames)
            shift = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
            writer.write(
                cv2.warpAffine(photo, shift, (width, height), borderMode=cv2.BORDER_CONSTANT)
            )
    finally:
        writer.release()


def load_demo_graph(out: Path, fps: float) -> Graph:
    """The graph file with its paths pointed at ``out``, or the dict twin."""
    paths = {
        "video": str(out / "astronaut.avi"),
        "writer": str(out / "annotated.avi"),
        "jsonl": str(out / "faces.jsonl"),
    }
    if GRAPH_FILE.is_file():
        graph = load_graph(GRAPH_FILE)
        keys = {"video": "uri", "writer": "path", "jsonl": "path"}
        nodes = tuple(
            n.with_(params={**n.params, keys[n.id]: paths[n.id]}) if n.id in paths else n
            for n in graph.nodes
        )
        return Graph(graph.name, nodes, graph.edges, graph.base_dir, graph.source)
    doc = face_detect_graph(
        video=paths["video"], annotated=paths["writer"], boxes=paths["jsonl"], fps=fps
    )
    return load_graph(doc)


def with_dashboard(graph: Graph, fps: float) -> Graph:
    """The demo graph paced at ``fps`` with a ``dashboard`` sink after the labels."""
    nodes = tuple(
        n.with_(params={**n.params, "fps": fps}) if n.unit == "video_source" else n
        for n in graph.nodes
    )
    live = NodeSpec("live", unit="dashboard", params={"title": "astronaut.avi (annotated)"})
    edge = EdgeSpec(PortRef("label", "image"), PortRef("live", "image"))
    return Graph(graph.name, (*nodes, live), (*graph.edges, edge), graph.base_dir, graph.source)


async def run_with_dashboard(
    graph: Graph, timeout: float, address: tuple[str, int], after: Any
) -> int:
    """Serve the dashboard, run the flow, report with ``after``, keep the page up.

    ``after(flow, status, elapsed)`` returns the exit code. The page stays up until
    SIGINT or SIGTERM; one during the run stops the flow (and then the page).
    """
    from actorflow.dashboard import serve_dashboard

    flow = Flow(graph)
    interrupted = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_interrupts, flow, interrupted)
        async with serve_dashboard(flow, *address) as url:
            print(f"dashboard: {url}", flush=True)
            started = time.perf_counter()
            await flow.run_async()
            status = await flow.wait(timeout)
            code: int = after(flow, status, time.perf_counter() - started)
            if not interrupted.is_set():
                print(f"the dashboard stays up at {url}: press Ctrl-C to exit", flush=True)
                await interrupted.wait()
        tg.cancel_scope.cancel()
    return code


async def _interrupts(flow: Flow, interrupted: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            interrupted.set()
            await flow.stop()


async def run_flow(graph: Graph, timeout: float) -> tuple[Flow, Status, float]:
    """Run the graph to the end of the video."""
    flow = Flow(graph)
    started = time.perf_counter()
    await flow.run_async()
    status = await flow.wait(timeout)
    return flow, status, time.perf_counter() - started


def check(jsonl: Path, frames: int) -> list[Check]:
    """Compare each frame's boxes with the moved known face."""
    records = [json.loads(line) for line in jsonl.read_text().splitlines() if line]
    by_seq = {r["seq"]: r["data"] for r in records}
    checks = []
    x, y, w, h = FACE_XYWH
    for seq in range(frames):
        dx, dy = motion(seq, frames)
        expected = (x + dx, y + dy, x + dx + w, y + dy + h)
        faces = by_seq.get(seq, [])
        iou = max(
            (float(box_iou(np.array([f["box"]]), np.array([expected]))[0, 0]) for f in faces),
            default=0.0,
        )
        checks.append(Check(seq, expected, len(faces), iou))
    return checks


def video_frames(path: Path) -> int:
    """How many frames OpenCV reads back from ``path`` (0 if it does not open)."""
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.isOpened():
        ok, _ = cap.read()
        if not ok:
            break
        count += 1
    cap.release()
    return count


def report(flow: Flow, checks: list[Check], elapsed: float, out: Path) -> None:
    """Print per-node statistics and the check summary."""
    from rich.console import Console
    from rich.table import Table

    stats = flow.statistics()
    table = Table(
        title=f"face_detect: {len(checks)} frames in {elapsed:.2f} s "
        f"({len(checks) / elapsed:.1f} frames/s)"
    )
    for column in ("node", "unit", "received", "emitted", "batches", "failed", "busy ms"):
        table.add_column(column, justify="left" if column in ("node", "unit") else "right")
    for node in stats.nodes.values():
        table.add_row(
            node.node,
            node.unit,
            str(node.received),
            str(node.emitted),
            str(node.batches),
            str(node.failed),
            f"{node.busy_s * 1000:.0f}",
        )
    console = Console()
    console.print(table)
    ious = [c.iou for c in checks]
    bad = [c for c in checks if not c.ok]
    extra = sum(max(0, c.found - 1) for c in checks)
    console.print(
        f"IoU vs known face: min {min(ious):.3f}, median {np.median(ious):.3f}; "
        f"frames missing the face (IoU < 0.5): {len(bad)}; other boxes: {extra}"
    )
    for c in bad[:10]:
        console.print(
            f"  frame {c.seq}: {c.found} faces, best IoU {c.iou:.3f}, expected {c.expected}"
        )
    console.print(f"outputs: {out / 'annotated.avi'}, {out / 'faces.jsonl'}")


def main(argv: list[str] | None = None) -> int:
    """Build the input, run the graph, check and report; 0 on success."""
    parser = argparse.ArgumentParser(
        prog="python -m actorflow.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--frames", type=int, default=None, help="60 (300 with --dashboard)")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--dashboard",
        metavar="[HOST:]PORT",
        default=None,
        help="watch it live at http://HOST:PORT/dashboard (kept up until Ctrl-C)",
    )
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings
    out: Path = args.out.resolve()
    frames: int = args.frames or (300 if args.dashboard else 60)
    write_input_video(out / "astronaut.avi", frames, args.fps)
    graph = load_demo_graph(out, args.fps)

    def finish(flow: Flow, status: Status, elapsed: float) -> int:
        return _verdict(flow, status, elapsed, out, frames)

    if args.dashboard is not None:
        from actorflow.dashboard import parse_address

        try:
            address = parse_address(args.dashboard)
        except ValueError as exc:
            parser.error(str(exc))
        return anyio.run(
            run_with_dashboard, with_dashboard(graph, args.fps), args.timeout, address, finish
        )
    flow, status, elapsed = anyio.run(run_flow, graph, args.timeout)
    return finish(flow, status, elapsed)


def _verdict(flow: Flow, status: Status, elapsed: float, out: Path, frames: int) -> int:
    if status != Status.STOP:
        print(f"flow ended with {status.name}: {flow.exception!r}")
        return 1
    checks = check(out / "faces.jsonl", frames)
    report(flow, checks, elapsed, out)
    written = video_frames(out / "annotated.avi")
    problems: list[Any] = [c for c in checks if not c.ok]
    if written != frames:
        print(f"annotated video has {written} frames, expected {frames}")
        problems.append(written)
    print("demo OK" if not problems else "demo FAILED", flush=True)
    return 0 if not problems else 1
