"""``ffasora prepare`` with a paired colour fundus photograph per row (the index's ``image`` column).

Pairs come from the simulator (``simulate_case(..., photo=True)``: the angiogram and the photograph of one eye,
registered to each other), exported as a clinic would: the video as an mp4 or a frame folder in a wider frame
with black borders, the photograph at twice the size in its own black-bordered frame, one as a JPEG with EXIF
and a camera overlay (name and date) burned in outside the field.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from prepare_corpus import _dicom_base, write_frames, write_video
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.deid import pseudonym
from ffasora.data.format import image_path, load_image_file, read_manifest, video_path
from ffasora.data.photos import photo_disc, read_photo
from ffasora.data.prepare import PrepareConfig, prepare_dataset
from ffasora.data.standardise import disc_mask
from ffasora.data.validate import validate_dataset
from ffasora.simulate import simulate_case

SIZE, FRAMES = 64, 5
CFG = PrepareConfig(size=SIZE, frames=FRAMES, min_vessel_ratio=0.0)
OVERLAY = "SMITH JOHN 2024-03-01"
EXIF_ARTIST = "Dr Jane Doe"
SEEDS = {
    "png": 2,
    "jpeg": 4,
    "mirrored": 5,
    "offset": 6,
    "corrupt": 7,
    "missing": 8,
    "folder": 9,
    "escape": 10,
    "inside": 11,
}
runner = CliRunner()


def _frame_canvas(frames: np.ndarray) -> np.ndarray:
    """(T, S, S) frames centred in a (T, 1.25 S, 1.5 S) black frame, as the angiography camera exports them."""
    t, side, _ = frames.shape
    out = np.zeros((t, side * 5 // 4, side * 3 // 2), frames.dtype)
    top, left = side // 8, side // 4
    out[:, top : top + side, left : left + side] = frames
    return out


def _photo_canvas(photo: np.ndarray) -> np.ndarray:
    """The (S, S, 3) photograph at twice the size in the same framing: a (2.5 S, 3 S, 3) black frame."""
    side = 2 * photo.shape[0]
    big = np.asarray(Image.fromarray(photo).resize((side, side), Image.Resampling.BICUBIC))
    out = np.zeros((side * 5 // 4, side * 3 // 2, 3), np.uint8)
    top, left = side // 8, side // 4
    out[top : top + side, left : left + side] = big
    return out


def _jpeg_with_exif_and_overlay(path: Path, photo: np.ndarray) -> None:
    image = Image.fromarray(photo)
    draw = ImageDraw.Draw(image)
    h, w = photo.shape[:2]
    side = min(h, w) * 4 // 5  # the field's side in this canvas (see _photo_canvas)
    left, top = (w - side) // 2, (h - side) // 2
    draw.text((2, 2), OVERLAY, fill=(255, 255, 255))  # in the black border
    # In the corner of the square crop around the field: inside the crop, outside the circle.
    draw.rectangle((left, top, left + side // 8, top + side // 8), fill=(255, 255, 230))
    exif = Image.Exif()
    exif[0x013B] = EXIF_ARTIST  # Artist
    exif[0x010F] = "FundusCam"  # Make
    image.save(path, format="JPEG", quality=95, exif=exif.tobytes())


def _truth_side(case) -> str:
    xs = np.nonzero(case.masks["disc"])[1]
    return "right" if xs.mean() > (case.masks["disc"].shape[1] - 1) / 2 else "left"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("pairs")
    videos = root / "exports"
    (videos / "photos").mkdir(parents=True)
    cases = {name: simulate_case(seed, size=SIZE, frames=FRAMES, photo=True) for name, seed in SEEDS.items()}
    rows = []
    for name, case in cases.items():
        frames = _frame_canvas(case.frames).astype(np.float32) / 255.0
        if name == "png":
            video = f"P{name}/OD_angio.mp4"
            write_video(videos / video, frames)
        else:
            video = f"P{name}/frames"
            write_frames(videos / video, frames)
        photo = _photo_canvas(case.photo)
        image = f"photos/{name}_cam_20240301.png"
        if name == "png":
            Image.fromarray(photo).save(videos / image)
        elif name == "jpeg":
            image = f"photos/{name}_cam_20240301.jpg"
            _jpeg_with_exif_and_overlay(videos / image, photo)
        elif name == "mirrored":  # the other eye's photograph, or a flipped export
            Image.fromarray(np.ascontiguousarray(photo[:, ::-1])).save(videos / image)
        elif name == "offset":  # another framing: the field shifted right by a fifth of the width
            shifted = np.zeros_like(photo)
            shift = photo.shape[1] // 5
            shifted[:, shift:] = photo[:, :-shift]
            Image.fromarray(shifted).save(videos / image)
        elif name == "corrupt":
            (videos / image).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
        elif name == "folder":
            image = "photos"
        elif name == "escape":
            image = "../elsewhere/photo.png"
        elif name == "inside":  # in the video's own frame folder: one of its frames, no photograph
            image = f"{video}/cfp.png"
            Image.fromarray(photo).save(videos / image)
        rows.append(
            {
                "video": video,
                "patient_id": f"H00{SEEDS[name]}1234",
                "eye": case.eye,
                "image": image,
                "report": "Normal fluorescein angiogram.",
            }
        )
    index = root / "index.csv"
    with open(index, "w", newline="") as f:
        table = csv.DictWriter(f, fieldnames=list(rows[0]))
        table.writeheader()
        table.writerows(rows)
    return {
        "videos": videos,
        "index": index,
        "cases": cases,
        "rows": {n: r for n, r in zip(SEEDS, rows, strict=True)},
    }


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("prepared") / "ds"
    summary = prepare_dataset(corpus["videos"], corpus["index"], out, CFG)
    key = bytes.fromhex((out.with_name("ds.private") / "key").read_text().strip())
    ids = {name: pseudonym(corpus["rows"][name]["video"], key, "v-") for name in SEEDS}
    records = {r.id: r for r in read_manifest(out)}
    pairs = {d["video"]: d for d in _jsonl(summary.pairs_path)}
    inventory = {d["file"]: d for d in _jsonl(summary.inventory_path)}
    return {
        "out": out,
        "summary": summary,
        "ids": ids,
        "records": records,
        "pairs": pairs,
        "inventory": inventory,
    }


def _detail_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the green channels' detail (minus a blur) inside the field."""
    from scipy import ndimage

    def detail(x: np.ndarray) -> np.ndarray:
        green = x[..., 1].astype(float)
        return (green - ndimage.gaussian_filter(green, 3))[disc_mask(SIZE, margin=4)]

    return float(np.corrcoef(detail(a), detail(b))[0, 1])


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_paired_photographs_are_standardised_and_registered_to_their_video(corpus, prepared) -> None:
    for name in ("png", "jpeg"):
        vid = prepared["ids"][name]
        record = prepared["records"][vid]
        assert record.image == "cfp" and record.extra["pair"]["status"] == "paired"
        image = load_image_file(image_path(prepared["out"], vid))
        assert image.shape == (SIZE, SIZE, 3)
        # Registered: the stored photograph's detail (vessels, disc, lesions) lines up with the simulator's own
        # photograph of the eye, cropped to the same field, and not with its mirror image.
        reference = corpus["cases"][name].photo
        same, flipped = _detail_correlation(image, reference), _detail_correlation(image, reference[:, ::-1])
        assert same > 0.5 > 0.2 > flipped, (name, same, flipped)
        pair = prepared["pairs"][corpus["rows"][name]["video"]]
        truth = _truth_side(corpus["cases"][name])
        assert pair["status"] == "paired" and pair["mismatch"] == []
        assert pair["photo_disc"] == pair["video_disc"] == photo_disc(image).side == truth
        for key in ("cx", "cy", "r"):
            assert pair["photo_field"][key] == pytest.approx(pair["video_field"][key], abs=0.02)


def test_exif_overlay_and_photo_paths_never_reach_the_dataset(corpus, prepared) -> None:
    out = prepared["out"]
    vid = prepared["ids"]["jpeg"]
    source = Image.open(corpus["videos"] / corpus["rows"]["jpeg"]["image"])
    assert source.getexif()[0x013B] == EXIF_ARTIST  # the source did carry them
    with Image.open(image_path(out, vid)) as stored:
        assert not stored.getexif() and "exif" not in stored.info and not getattr(stored, "text", {})
        pixels = np.asarray(stored)
    assert not pixels[~disc_mask(SIZE)].any()  # the overlay in the crop's corner is gone with everything else
    for record in prepared["records"].values():
        if record.image:
            assert not load_image_file(image_path(out, record.id))[~disc_mask(SIZE)].any()
    leaks = (b"Jane", b"FundusCam", b"SMITH", b"photos", b"_cam_", b"20240301")
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [leak for leak in leaks if leak in data], path
            assert "cam" not in path.name


def test_mismatched_pairs_are_reported_and_kept_by_default(corpus, prepared) -> None:
    expected = {"mirrored": "disc_side", "offset": "field"}
    for name, code in expected.items():
        row = corpus["rows"][name]
        pair = prepared["pairs"][row["video"]]
        assert pair["status"] == "mismatched" and pair["mismatch"] == [code], pair
        assert ("optic disc on the" if code == "disc_side" else "field circle differs") in pair["reason"]
        record = prepared["records"][prepared["ids"][name]]
        assert record.image == "cfp" and image_path(prepared["out"], record.id).is_file()
        assert record.extra["pair"]["mismatch"] == [code]
        line = prepared["inventory"][row["image"]]
        assert (
            line["status"] == "kept"
            and line["source"] == row["video"]
            and code.split("_")[0] in line["reason"]
        )
    assert prepared["summary"].pairs == {"paired": 2, "mismatched": 2, "failed": 4}


def test_unusable_photographs_cost_only_the_photograph(corpus, prepared) -> None:
    reasons = {"corrupt": "not a readable image", "missing": "no such file", "folder": "a folder"}
    for name, reason in reasons.items():
        row = corpus["rows"][name]
        record = prepared["records"][prepared["ids"][name]]
        assert record.image is None and not image_path(prepared["out"], record.id).exists()
        assert video_path(prepared["out"], record.id).is_file()
        pair = prepared["pairs"][row["video"]]
        assert pair["status"] == "failed" and reason in pair["reason"] and "Traceback" not in pair["reason"]
        assert str(corpus["videos"]) not in pair["reason"]
    corrupt = corpus["rows"]["corrupt"]["image"]
    assert prepared["inventory"][corrupt]["status"] == "failed"
    assert "not a readable image" in prepared["inventory"][corrupt]["reason"]
    # The photographs folder is no frame folder, and every photograph is accounted for.
    assert not [d for d in prepared["inventory"].values() if d["reason"] == "file without an index row"]
    # A path leaving --videos is a bad row, as a bad video path is: the row fails at the index stage.
    errors = _jsonl(prepared["summary"].errors_path)
    escape = corpus["rows"]["escape"]
    [error] = [e for e in errors if e["video"] == escape["video"] and e["row"] is not None]
    assert (
        error["stage"] == "index"
        and "image '../elsewhere/photo.png' must be a path inside" in error["reason"]
    )
    assert prepared["ids"]["escape"] not in prepared["records"]
    # A photograph inside a row's frame folder is one of its frames (here of another size: the video fails).
    inside = corpus["rows"]["inside"]
    assert "lies in the video source Pinside/frames" in prepared["pairs"][inside["video"]]["reason"]
    assert prepared["inventory"][inside["image"]]["source"] == inside["video"]
    assert validate_dataset(prepared["out"]) == []


def test_resume_keeps_the_pair_report(corpus, prepared) -> None:
    summary = prepare_dataset(corpus["videos"], corpus["index"], prepared["out"], CFG)
    assert {d["video"]: d for d in _jsonl(summary.pairs_path)} == prepared["pairs"]
    assert {d["file"]: d for d in _jsonl(summary.inventory_path)} == prepared["inventory"]


def test_drop_mismatched_pairs_drops_the_photograph_not_the_video(corpus, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    args = ["prepare", "--videos", str(corpus["videos"]), "--index", str(corpus["index"]), "--out", str(out)]
    args += [
        "--size",
        str(SIZE),
        "--frames",
        str(FRAMES),
        "--min-vessel-ratio",
        "0",
        "--drop-mismatched-pairs",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "photographs: dropped 2, failed 4, paired 2" in result.output
    pairs = {d["video"]: d for d in _jsonl(tmp_path / "ds.private" / "pairs.jsonl")}
    inventory = {d["file"]: d for d in _jsonl(tmp_path / "ds.private" / "inventory.jsonl")}
    records = read_manifest(out)
    assert len(records) == 7
    for name in ("mirrored", "offset"):
        row = corpus["rows"][name]
        assert pairs[row["video"]]["status"] == "dropped"
        assert inventory[row["image"]]["status"] == "dropped"
    assert sum(r.image == "cfp" for r in records) == 2 == len(list((out / "images").glob("*.png")))
    assert validate_dataset(out) == []


def test_read_photo_formats(tmp_path: Path) -> None:
    photo = simulate_case(3, size=32, frames=5, photo=True).photo
    import tifffile

    tifffile.imwrite(tmp_path / "deep.tif", photo.astype(np.uint16) * 257)
    assert np.allclose(read_photo(tmp_path / "deep.tif").pixels, photo / 255.0, atol=1e-6)
    ds = _dicom_base("1.2.840.10008.5.1.4.1.1.77.1.5.1")  # ophthalmic photography, 8 bit
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.Rows, ds.Columns, ds.PixelData = 32, 32, photo.tobytes()
    ds.save_as(tmp_path / "photo.dcm", enforce_file_format=True)
    read = read_photo(tmp_path / "photo.dcm")
    assert np.allclose(read.pixels, photo / 255.0, atol=1e-6)
    assert {("NAME", "Jane Doe"), ("ID", "MRN12345678")} <= set(read.identifiers)  # for the report scrubber
    Image.fromarray(photo[..., 1]).save(tmp_path / "red_free.png")
    with pytest.raises(ValueError, match="red_free.png: a grey image"):
        read_photo(tmp_path / "red_free.png")
