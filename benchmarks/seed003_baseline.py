"""Seed 003's design, re-implemented faithfully as the baseline for examples/detect_classify.py.

What the seed did (``../shared/seeds/003_*.txt``), kept here on purpose:

* client: a producer *process* JPEG-encodes images into a ``JoinableQueue``; a consumer
  process takes each one, ``pickle.dumps`` it, ``Client.send``s it over
  ``multiprocessing.connection`` and blocks on ``recv`` for the answer (lock-step);
* server: a ``Listener`` thread; a receive thread (``recv`` -> ``pickle.loads`` ->
  ``cv2.imdecode`` -> locked queue); a detect thread and a classify thread that *poll*
  their input queues with ``sleep(0.002)`` when empty (the seed's ``usleep(2000)``); a
  send thread that polls the result queue and sleeps 40 ms when it is empty.

The detector is the same MTCNN (``MtcnnDetector.propose`` = detect, ``classify`` =
classify), so the comparison measures the plumbing, not the model.

Run on its own: ``python benchmarks/seed003_baseline.py`` (prints JSON), or through
``python examples/detect_classify.py --compare``.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
import statistics
import threading
import time
from collections import deque
from multiprocessing.connection import Client, Listener
from typing import Any

import cv2
import numpy as np

ADDRESS = ("127.0.0.1", 0)
AUTHKEY = b"seed003"


def server(port_out: Any) -> None:
    """The seed's server: a listener thread and four polling threads around locked queues."""
    import structlog

    from actorflow.flowunits.mtcnn.detector import MtcnnDetector

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    detector = MtcnnDetector()
    images: deque[tuple[int, np.ndarray]] = deque()
    detected: deque[tuple[int, np.ndarray, np.ndarray]] = deque()
    results: deque[tuple[int, list[Any]]] = deque()
    lock_img, lock_det, lock_cls = threading.Lock(), threading.Lock(), threading.Lock()
    stop = threading.Event()

    def detect_loop() -> None:
        while not stop.is_set():
            if not images:
                time.sleep(0.002)  # usleep(2000)
                continue
            with lock_img:
                num, rgb = images.popleft()
            candidates = detector.propose(rgb)
            with lock_det:
                detected.append((num, rgb, candidates))

    def classify_loop() -> None:
        while not stop.is_set():
            if not detected:
                time.sleep(0.002)
                continue
            with lock_det:
                num, rgb, candidates = detected.popleft()
            faces = detector.classify(rgb, candidates)
            with lock_cls:
                results.append((num, faces.to_json()))

    for target in (detect_loop, classify_loop):
        threading.Thread(target=target, daemon=True).start()
    listener = Listener(ADDRESS, authkey=AUTHKEY)
    port_out.put(listener.address[1])
    while True:  # one connection at a time, as the seed's ListenerThread.run
        conn = listener.accept()
        empty_flag = threading.Event()  # the seed's interface_setEmptyFlag

        def receive_data(conn: Any = conn, empty_flag: threading.Event = empty_flag) -> None:
            while True:
                try:
                    obj = pickle.loads(conn.recv())  # the seed's design, on purpose
                except EOFError:
                    empty_flag.set()
                    return
                if obj["frame_num"] == 0:
                    empty_flag.set()
                    return
                bgr = cv2.imdecode(obj["image"], cv2.IMREAD_COLOR)
                with lock_img:
                    images.append((obj["frame_num"], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))

        def send_result(conn: Any = conn, empty_flag: threading.Event = empty_flag) -> None:
            while True:
                if not results:
                    if empty_flag.is_set():  # -2: "all data is classified"
                        return
                    time.sleep(0.04)  # -1: "queue is empty for now"
                    continue
                with lock_cls:
                    num, faces = results.popleft()
                try:
                    conn.send(pickle.dumps({"frame_num": num, "faces": faces}))
                except OSError:
                    return

        threads = [
            threading.Thread(target=receive_data, daemon=True),
            threading.Thread(target=send_result, daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        conn.close()


def producer(queue: Any, images: list[bytes]) -> None:
    """The seed's ``img_product``: encoded frames into a JoinableQueue, then an end marker."""
    for i, data in enumerate(images, start=1):
        queue.put({"frame_num": i, "image": np.frombuffer(data, np.uint8)})
    queue.put(None)
    queue.join()


def consumer(queue: Any, port: int, out: Any) -> None:
    """The seed's ``server_consumer``: pickle, send, block on recv; one image at a time."""
    client = Client(("127.0.0.1", port), authkey=AUTHKEY)
    latencies, faces = [], []
    started = time.perf_counter()
    while True:
        obj = queue.get()
        if obj is None:
            queue.task_done()
            break
        sent = time.perf_counter()
        client.send(pickle.dumps(obj))
        queue.task_done()
        answer = pickle.loads(client.recv())  # the seed's design, on purpose
        latencies.append(time.perf_counter() - sent)
        faces.append(len(answer["faces"]))
    elapsed = time.perf_counter() - started
    client.send(pickle.dumps({"frame_num": 0, "image": "end"}))
    client.close()
    out.put((latencies, elapsed, faces))


def run_baseline(images: list[bytes]) -> dict[str, Any]:
    """Start the server process, warm it up, run producer + consumer processes once."""
    ctx = multiprocessing.get_context("spawn")
    ports, out = ctx.Queue(), ctx.Queue()
    srv = ctx.Process(target=server, args=(ports,), daemon=True)
    srv.start()
    try:
        port = ports.get(timeout=120)
        result = None
        for batch in (images[:4], images):  # the first pass warms the server up
            queue = ctx.JoinableQueue()
            prod = ctx.Process(target=producer, args=(queue, batch))
            cons = ctx.Process(target=consumer, args=(queue, port, out), daemon=True)
            prod.start()
            cons.start()
            result = out.get(timeout=600)
            prod.join(30)
            cons.join(30)
        assert result is not None
        latencies, elapsed, faces = result
    finally:
        srv.terminate()
        srv.join(10)
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


def main() -> None:
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    example = importlib.import_module("detect_classify")
    print(json.dumps(run_baseline(example.make_images(60)), indent=2))


if __name__ == "__main__":
    main()
