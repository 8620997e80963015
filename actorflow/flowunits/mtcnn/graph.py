"""The MTCNN cascade as dict-form graph pieces (``graphs/face_detect.toml`` is the file form).

``mtcnn_nodes`` returns the nodes and edges that turn one RGB image port into a
``Detections`` port; embed them in any graph::

    nodes, edges, detections = mtcnn_nodes("rgb:image")
    graph = {"nodes": {"input": {"type": "input"}, **nodes, "output": {"type": "output"}},
             "edges": ["input -> rgb:image", *edges, f"{detections} -> output"]}
"""

from __future__ import annotations

from typing import Any

from actorflow.flowunits.mtcnn.units import MODELS

__all__ = ["face_detect_graph", "mtcnn_nodes"]


def mtcnn_nodes(
    image: str,
    *,
    prefix: str = "",
    min_face_size: int = 20,
    scale_factor: float = 0.709,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    batch_size: int = 32,
    batch_timeout: float = 0.002,
    device: str = "auto",
    intra_op_threads: int = 1,
) -> tuple[dict[str, dict[str, Any]], list[str], str]:
    """Nodes and edges of the cascade, reading RGB images from the port ``image``.

    Args:
        image: the port carrying RGB ``uint8`` images (``"rgb:image"``).
        prefix: prepended to every node id (several cascades in one graph).
        min_face_size: smallest face to find (the pyramid).
        scale_factor: ratio between pyramid levels.
        thresholds: P-Net, R-Net, O-Net score thresholds.
        batch_size: dynamic batching of the R-Net and O-Net nodes (1: off).
        batch_timeout: seconds a partial batch waits for more crops.
        device: ``auto``, ``cpu`` or ``cuda`` for the three inference nodes.
        intra_op_threads: onnxruntime threads per operator.

    Returns:
        (nodes, edges, the port that carries ``Detections``).
    """
    p = prefix
    pyramid = {"min_face_size": min_face_size, "scale_factor": scale_factor}

    def net(stage: str, batched: bool) -> dict[str, Any]:
        model, outputs = MODELS[stage]
        node: dict[str, Any] = {
            "flowunit": "onnx_inference",
            "model": model,
            "outputs": outputs,
            "device": device,
            "intra_op_threads": intra_op_threads,
        }
        if batched and batch_size > 1:
            node.update(batch_size=batch_size, batch_timeout=batch_timeout)
        return node

    nodes: dict[str, dict[str, Any]] = {
        f"{p}pyramid": {"flowunit": "mtcnn_pyramid", **pyramid},
        f"{p}pnet": net("pnet", batched=False),
        f"{p}proposals": {"flowunit": "mtcnn_pnet_boxes", "threshold": thresholds[0], **pyramid},
        f"{p}rcrop": {"flowunit": "mtcnn_crop", "size": 24},
        f"{p}rnet": net("rnet", batched=True),
        f"{p}refine": {"flowunit": "mtcnn_refine", "threshold": thresholds[1]},
        f"{p}ocrop": {"flowunit": "mtcnn_crop", "size": 48},
        f"{p}onet": net("onet", batched=True),
        f"{p}faces": {"flowunit": "mtcnn_finish", "threshold": thresholds[2]},
    }
    edges = [
        f"{image} -> {p}pyramid:image",
        f"{p}pyramid:level -> {p}pnet:in",
        f"{image} -> {p}proposals:image",
        f"{p}pnet:out -> {p}proposals:maps",
        f"{image} -> {p}rcrop:image",
        f"{p}proposals:boxes -> {p}rcrop:boxes",
        f"{p}rcrop:crop -> {p}rnet:in",
        f"{p}proposals:boxes -> {p}refine:boxes",
        f"{p}rnet:out -> {p}refine:scores",
        f"{image} -> {p}ocrop:image",
        f"{p}refine:boxes -> {p}ocrop:boxes",
        f"{p}ocrop:crop -> {p}onet:in",
        f"{p}refine:boxes -> {p}faces:boxes",
        f"{p}onet:out -> {p}faces:scores",
    ]
    return nodes, edges, f"{p}faces:detections"


def face_detect_graph(
    *, video: str, annotated: str, boxes: str, fps: float = 15.0, **options: Any
) -> dict[str, Any]:
    """The demo graph in dict form: the same nodes as ``graphs/face_detect.toml``.

    Video file -> BGR to RGB -> MTCNN -> (boxes drawn and labelled -> video file) and
    (detections -> JSON lines).
    """
    nodes, edges, detections = mtcnn_nodes("rgb:image", **options)
    return {
        "name": "face_detect",
        "nodes": {
            "video": {"flowunit": "video_source", "uri": video},
            "rgb": {"flowunit": "color_convert", "code": "bgr2rgb"},
            **nodes,
            "draw": {"flowunit": "box_visualization"},
            "label": {"flowunit": "label_visualization", "text": "{class_name} {confidence:.3f}"},
            "writer": {"flowunit": "video_writer_sink", "path": annotated, "fps": fps},
            "jsonl": {"flowunit": "json_lines_sink", "path": boxes},
        },
        "edges": [
            "video:frame -> rgb:image",
            *edges,
            "video:frame -> draw:image",
            f"{detections} -> draw:detections",
            "draw:image -> label:image",
            f"{detections} -> label:detections",
            "label:image -> writer:frame",
            f"{detections} -> jsonl:data",
        ],
    }
