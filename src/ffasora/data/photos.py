"""Paired colour fundus photographs in ``ffasora prepare``: read, standardise like the video, check the pair.

An index row's ``image`` cell names the colour fundus photograph (CFP) of the same eye. It is read (PNG, JPEG,
TIFF, BMP or a single-frame DICOM object), standardised by the video's own code - ``standardise.detect_field``
on its three channels (the field is found on their maximum, the red channel in a fundus photograph: bright
inside the field, black outside) and ``standardise.crop_to_field``, which zeroes everything outside the field
(camera overlays with name and date included) before and after resizing - and written as a plain PNG by
``format.png_bytes``, so no EXIF, ICC or text chunk of the source survives.

The pair check compares the two images where they should agree (docs/prepare.md, "Paired photographs"):

- the field circle, relative to each image's own size (centre as a fraction of width and height, radius as a
  fraction of the shorter side): the same camera framing gives the same numbers at any resolution;
- the optic-disc side: the disc is the brightest disc-sized blob beside the centre, whitest in the photograph
  (minimum over the channels: the disc is white, the fundus red-orange, exudates yellow) and bright in the
  angiogram from the arterial phase on (maximum over the first third of the frames, before late leakage
  grows). A bright macular lesion can outshine the disc in either image, so sides that differ count only when
  neither image is bright where the other has its disc.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from ffasora.data.deid import dicom_identifiers
from ffasora.data.ingest import is_dicom_file
from ffasora.data.standardise import Circle, crop_to_field, detect_field, disc_mask, resize, to_uint8

IMAGE_KIND = "cfp"  # the VideoRecord.image kind of a paired colour fundus photograph
# Field circles of a pair may differ by this much (fractions of the image side) before the pair is flagged.
FIELD_TOLERANCE = 0.1
# Sides that differ count only where each image's blob response at the other's disc is below this share of
# its own disc's response (a bright macular lesion taken for the disc in one image is then no mismatch).
DISC_ECHO = 0.5
ANALYSIS_SIZE = 128  # disc search grid, whatever the output size
DISC_SIGMA = 0.06  # blob scale as a fraction of the field radius (the disc's radius is about 0.07-0.13)


@dataclasses.dataclass(frozen=True)
class Photo:
    """A source photograph: (H, W, 3) float32 RGB in [0, 1] and its DICOM identifiers (for the scrubber)."""

    pixels: np.ndarray
    identifiers: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class FieldShape:
    """A field circle relative to its image: centre as fractions of width and height, radius of the shorter
    side."""

    cx: float
    cy: float
    r: float

    @classmethod
    def of(cls, circle: Circle, shape: tuple[int, ...]) -> FieldShape:
        h, w = shape[0], shape[1]
        return cls(cx=(circle.cx + 0.5) / w, cy=(circle.cy + 0.5) / h, r=circle.r / min(h, w))

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class Disc:
    """The optic disc found in one standardised image: its side and the blob response map it was found on."""

    side: str  # "left" or "right" of the image
    y: int
    x: int
    response: np.ndarray  # (ANALYSIS_SIZE, ANALYSIS_SIZE) blob response, z-scored within the field


@dataclasses.dataclass(frozen=True)
class PairCheck:
    """How a photograph agrees with its video; ``mismatch`` holds the codes ("field", "disc_side")."""

    video_field: FieldShape
    photo_field: FieldShape
    video_disc: str
    photo_disc: str
    mismatch: tuple[str, ...]
    reasons: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """The check as stored in the record's ``extra["pair"]`` and in pairs.jsonl (no path, no name)."""
        return {
            "mismatch": list(self.mismatch),
            "video_field": self.video_field.rounded(),
            "photo_field": self.photo_field.rounded(),
            "video_disc": self.video_disc,
            "photo_disc": self.photo_disc,
        }


def read_photo(path: Path) -> Photo:
    """A colour photograph as (H, W, 3) float32 in [0, 1]; ``ValueError`` naming the file and the problem.

    8- and 16-bit PNG/TIFF, JPEG and BMP (turned to the orientation their EXIF states), and single-frame
    colour DICOM. Grey images are refused: a red-free photograph or an angiogram frame is no colour photograph.
    """
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: a folder; expected a photograph file (PNG, JPEG, TIFF, BMP or DICOM)")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    if is_dicom_file(path):
        return _dicom_photo(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            pixels = _scaled(np.asarray(tifffile.imread(path)), path)
        else:
            with Image.open(path) as opened:
                image = ImageOps.exif_transpose(opened)
                if image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
                    raise ValueError(
                        f"{path}: a grey image (mode {image.mode}); expected a colour photograph"
                    )
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable image ({err})") from err
    return Photo(_colour(pixels, path))


def _scaled(array: np.ndarray, path: Path) -> np.ndarray:
    """An integer (H, W, C) array scaled by its type's maximum to [0, 1]; C = 3 or 4 (alpha dropped)."""
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(
            f"{path}: shape {array.shape}; expected a single (H, W, 3) colour photograph, not grey"
        )
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: {array.dtype} samples; expected 8- or 16-bit")
    return array[..., :3].astype(np.float32) / float(np.iinfo(array.dtype).max)


def _colour(pixels: np.ndarray, path: Path) -> np.ndarray:
    if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]):
        raise ValueError(f"{path}: a grey image; expected a colour photograph")
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _dicom_photo(path: Path) -> Photo:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        pixels = np.asarray(ds.pixel_array)  # pydicom converts YBR to RGB
    except Exception as err:  # pydicom raises several unrelated types for damaged files
        raise ValueError(f"{path}: not readable as a DICOM photograph ({err})") from err
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 3:
        raise ValueError(f"{path}: a grey DICOM image; expected a colour photograph")
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    if pixels.ndim != 3:
        raise ValueError(f"{path}: {len(pixels)} frames; expected a single photograph")
    array = np.clip(pixels.astype(np.float32) / float(2**bits - 1), 0, 1)
    return Photo(_colour(array, path), tuple(dicom_identifiers(ds)))


def photo_field(pixels: np.ndarray) -> Circle:
    """The field circle of an (H, W, 3) photograph, found as the video's is, on the maximum of the channels."""
    return detect_field(np.moveaxis(pixels, -1, 0))


def standardise_photo(pixels: np.ndarray, circle: Circle, size: int) -> np.ndarray:
    """(H, W, 3) in [0, 1] -> (size, size, 3) uint8: the video's crop, mask and resize, channel by channel."""
    cropped = crop_to_field(np.moveaxis(pixels, -1, 0), circle, size)
    return np.ascontiguousarray(np.moveaxis(to_uint8(cropped), 0, -1))


def find_disc(image: np.ndarray) -> Disc:
    """The optic disc of a standardised (S, S) image in [0, 1]: the strongest disc-sized bright blob in a band
    beside the centre (the disc sits a third to two thirds of the radius from the centre, near the horizontal
    meridian; the macula at the centre is left out)."""
    work = resize(image.astype(np.float32), ANALYSIS_SIZE)
    radius = ANALYSIS_SIZE / 2
    centre = (ANALYSIS_SIZE - 1) / 2
    field = disc_mask(ANALYSIS_SIZE, margin=0.12 * radius)  # the rim (flare, vignetting) is no disc
    sigma = DISC_SIGMA * radius
    blob = ndimage.gaussian_filter(work, sigma) - ndimage.gaussian_filter(work, 3 * sigma)
    inside = blob[field]
    response = (blob - np.median(inside)) / (inside.std() + 1e-6)
    yy, xx = np.mgrid[:ANALYSIS_SIZE, :ANALYSIS_SIZE]
    band = field & (np.abs(yy - centre) < 0.4 * radius) & (np.abs(xx - centre) > 0.15 * radius)
    y, x = np.unravel_index(int(np.argmax(np.where(band, response, -np.inf))), response.shape)
    return Disc("right" if x > centre else "left", int(y), int(x), response.astype(np.float32))


def video_disc(frames: np.ndarray) -> Disc:
    """The disc of standardised (T, S, S) frames: on the maximum of the first third (arterial to venous)."""
    return find_disc(frames[: max(2, len(frames) // 3)].max(axis=0))


def photo_disc(image: np.ndarray) -> Disc:
    """The disc of a standardised (S, S, 3) uint8 photograph: on its whiteness (minimum over the channels)."""
    return find_disc(image.min(axis=-1).astype(np.float32) / 255.0)


def check_pair(video_field: FieldShape, photo_field: FieldShape, video: Disc, photo: Disc) -> PairCheck:
    """Compare a pair's field circles (``FIELD_TOLERANCE``) and disc sides (``DISC_ECHO``)."""
    mismatch, reasons = [], []
    offsets = {
        "centre x": photo_field.cx - video_field.cx,
        "centre y": photo_field.cy - video_field.cy,
        "radius": photo_field.r - video_field.r,
    }
    off = {k: v for k, v in offsets.items() if abs(v) > FIELD_TOLERANCE}
    if off:
        mismatch.append("field")
        told = ", ".join(f"{k} {v:+.2f}" for k, v in off.items())
        reasons.append(
            f"field circle differs: {told} of the image side (photograph minus video; tolerance "
            f"{FIELD_TOLERANCE})"
        )
    if video.side != photo.side:
        video_echo = video.response[photo.y, photo.x] / max(float(video.response[video.y, video.x]), 1e-6)
        photo_echo = photo.response[video.y, video.x] / max(float(photo.response[photo.y, photo.x]), 1e-6)
        if max(video_echo, photo_echo) < DISC_ECHO:
            mismatch.append("disc_side")
            reasons.append(
                f"optic disc on the {photo.side} in the photograph and on the {video.side} in the video "
                "(the other eye, or a mirrored image)"
            )
    return PairCheck(video_field, photo_field, video.side, photo.side, tuple(mismatch), tuple(reasons))


@dataclasses.dataclass(frozen=True)
class Pairing:
    """What became of one row's photograph: the standardised image to write (None: none) and why.

    status: "paired", "mismatched" (kept, flagged), "dropped" (mismatched, left out on request) or "failed".
    reason: for pairs.jsonl, in the private folder (it may name the file). check: the stored summary.
    """

    status: str
    image: np.ndarray | None = None
    reason: str = ""
    check: PairCheck | None = None
    identifiers: tuple[tuple[str, str], ...] = ()

    def stored(self) -> dict[str, Any]:
        """``extra["pair"]`` of the record: the status and the check, never the reason (it may hold a path)."""
        return {"status": self.status, **(self.check.summary() if self.check else {})}


def pair_photo(
    path: Path,
    video_shape: tuple[int, int],
    video_circle: Circle,
    frames: np.ndarray,
    size: int,
    drop_mismatched: bool = False,
) -> Pairing:
    """Read, standardise and check one photograph against its standardised (T, size, size) video frames.

    video_shape and video_circle: the source frame size and the field found in it. Never raises: a photograph
    that cannot be used costs only the photograph, not the video.
    """
    try:
        photo = read_photo(path)
        circle = photo_field(photo.pixels)
        image = standardise_photo(photo.pixels, circle, size)
        check = check_pair(
            FieldShape.of(video_circle, video_shape),
            FieldShape.of(circle, photo.pixels.shape),
            video_disc(frames),
            photo_disc(image),
        )
    except ValueError as err:  # read_photo names the file itself; the field detection does not
        text = str(err) if str(err).startswith(str(path)) else f"{path}: {err}"
        return Pairing("failed", reason=f"photograph {text}")
    except Exception as err:  # a decoder failing in a way it does not document: still only the photograph
        return Pairing("failed", reason=f"photograph {path}: unexpected {type(err).__name__}: {err}")
    if not check.mismatch:
        return Pairing("paired", image, check=check, identifiers=photo.identifiers)
    reason = "; ".join(check.reasons)
    if drop_mismatched:
        return Pairing("dropped", None, reason + " (--drop-mismatched-pairs)", check, photo.identifiers)
    return Pairing("mismatched", image, reason, check, photo.identifiers)
