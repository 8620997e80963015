from __future__ import annotations

import os
import struct
import sys
import threading
import zlib

import cv2
import numpy as np
import pytest

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.image.decode import DecodeError, ImageDecode, decode_image, image_size
from actorflow.flowunits.image.transform import (
    ColorConvert,
    Crop,
    Letterbox,
    Normalize,
    Resize,
    ToTensor,
    _renice,
    crop_boxes,
    floats,
    letterbox,
    normalize,
    to_tensor,
)
from actorflow.testing import UnitRunner


def encode(image: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


FRAME = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_image_size_reads_the_header(ext: str) -> None:
    assert image_size(encode(FRAME, ext))[1:] == (60, 40)


def test_decode_round_trips_png() -> None:
    assert np.array_equal(decode_image(encode(FRAME, ".png")), FRAME)


def test_decode_refuses_a_pixel_bomb_before_decoding() -> None:
    with pytest.raises(DecodeError, match=r"50000x50000 = 2500000000 pixels, over max_pixels"):
        decode_image(png_header_claiming(50_000, 50_000))


def test_decode_refuses_oversized_input() -> None:
    with pytest.raises(DecodeError, match="over max_bytes=10"):
        decode_image(encode(FRAME, ".png"), max_bytes=10)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"not an image at all", "unrecognised image data", id="garbage"),
        pytest.param(encode(FRAME, ".jpg")[:30], "corrupt", id="truncated-jpeg"),
        pytest.param(encode(FRAME, ".png")[:40], "corrupt png data", id="truncated-png"),
        pytest.param(b"", "unrecognised", id="empty"),
    ],
)
def test_decode_names_the_reason_for_corrupt_data(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_image(data)


def test_letterbox_keeps_aspect_and_reports_mapping() -> None:
    out, scale, px, py = letterbox(FRAME, 120, 120)
    assert out.shape == (120, 120, 3)
    assert (scale, px, py) == (2.0, 0, 20)
    assert (out[:20] == 114).all()


def test_normalize_and_to_tensor() -> None:
    out = normalize(FRAME, (10.0, 20.0, 30.0), (2.0, 2.0, 2.0))
    assert out.dtype == np.float32
    assert np.allclose(out, (FRAME.astype(np.float32) - [10, 20, 30]) / 2)
    tensor = to_tensor(FRAME, scale=1 / 255)
    assert tensor.shape == (3, 40, 60)
    assert tensor.dtype == np.float32
    assert tensor.flags.c_contiguous
    assert to_tensor(FRAME, batch_axis=True).shape == (1, 3, 40, 60)


def test_crop_boxes_one_per_box_clipped_and_resized() -> None:
    boxes = np.array([[0, 0, 10, 20], [50, 30, 80, 60], [100, 100, 120, 120]])
    crops = crop_boxes(FRAME, boxes)
    assert [c.shape for c in crops] == [(20, 10, 3), (10, 10, 3), (1, 1, 3)]
    assert np.array_equal(crops[0], FRAME[0:20, 0:10])
    assert [c.shape for c in crop_boxes(FRAME, boxes, size=(8, 8))] == [(8, 8, 3)] * 3


def test_inputs_are_never_modified() -> None:
    before = FRAME.copy()
    normalize(FRAME, (1.0,), (2.0,))
    letterbox(FRAME, 30, 30)
    crop_boxes(FRAME, np.array([[0, 0, 5, 5]]))
    assert np.array_equal(FRAME, before)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        pytest.param(
            lambda: Resize(width=0, height=3), "width and height must be > 0", id="resize-size"
        ),
        pytest.param(
            lambda: Resize(width=3, height=3, interpolation="bogus"),
            "interpolation must be one of",
            id="resize-interp",
        ),
        pytest.param(lambda: Normalize(std="1,0,1"), "std must not contain 0", id="std-zero"),
        pytest.param(lambda: ColorConvert(code="bgr2lab2"), "code must be one of", id="colour"),
        pytest.param(
            lambda: Resize(width=3, height=3, nice=-1), "nice must be within 0..19", id="nice"
        ),
    ],
)
def test_bad_parameters_fail_at_build(factory: object, message: str) -> None:
    with pytest.raises(UnitConfigError, match=message):
        factory()  # type: ignore[operator]


def test_floats_accepts_graph_text() -> None:
    assert floats("0.5, 0.25,1", "mean") == (0.5, 0.25, 1.0)
    assert floats(2, "std") == (2.0,)


# -- units in a running flow -------------------------------------------------------------


@pytest.mark.anyio
async def test_corrupt_image_fails_that_packet_and_the_flow_goes_on() -> None:
    runner = UnitRunner(ImageDecode, max_pixels=10_000_000)
    good = encode(FRAME, ".png")
    out = await runner.run(
        {
            "data": [
                good,
                b"\x89PNG\r\n\x1a\n garbage",
                good,
                png_header_claiming(50_000, 50_000),
                good,
            ]
        }
    )
    assert [p.seq for p in out["image"]] == [0, 2, 4]
    assert all(np.array_equal(p.data, FRAME) for p in out["image"])
    reasons = {e.seq: str(e.error.__cause__) for e in runner.errors}
    assert sorted(reasons) == [1, 3]
    assert reasons[1].startswith("node 'unit': corrupt image header (16 bytes)")
    assert "over max_pixels=10000000; refused before decoding" in reasons[3]


@pytest.mark.anyio
async def test_crop_expands_one_child_per_box_in_order() -> None:
    boxes = Detections(np.array([[0, 0, 10, 20], [50, 30, 60, 40]], np.float32))
    out = await UnitRunner(Crop, width=8, height=8).run(
        {"image": [FRAME, FRAME], "boxes": [boxes, Detections.empty()]}
    )
    assert [(p.seq, p.lineage) for p in out["crop"]] == [(0, (0,)), (0, (1,))]
    assert all(p.data.shape == (8, 8, 3) for p in out["crop"])


@pytest.mark.anyio
async def test_transform_chain_units() -> None:
    resized = (await UnitRunner(Resize, width=30, height=20).run({"image": [FRAME]}))["image"]
    assert resized[0].data.shape == (20, 30, 3)
    boxed = (await UnitRunner(Letterbox, width=64, height=64).run({"image": [FRAME]}))["image"]
    assert boxed[0].data.shape == (64, 64, 3)
    rgb = (await UnitRunner(ColorConvert, code="bgr2rgb").run({"image": [FRAME]}))["image"]
    assert np.array_equal(rgb[0].data, FRAME[..., ::-1])
    norm = (
        await UnitRunner(Normalize, mean="127.5", std="127.5", chw=True).run({"image": [FRAME]})
    )["tensor"]
    assert norm[0].data.shape == (3, 40, 60)
    assert float(norm[0].data.max()) <= 1.0
    tensor = (await UnitRunner(ToTensor, scale=1 / 255).run({"image": [FRAME]}))["tensor"]
    assert tensor[0].data.dtype == np.float32


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread niceness is Linux")
def test_renice_lowers_only_the_calling_thread() -> None:
    seen: list[int] = []

    def work() -> None:
        _renice(7)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [before + 7] or seen == [min(19, before + 7)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


@pytest.mark.anyio
async def test_resize_with_nice_runs_in_a_flow() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    out = await UnitRunner(Resize, width=64, height=48, nice=1).run({"image": [frame]})
    assert out["image"][0].data.shape == (48, 64, 3)
