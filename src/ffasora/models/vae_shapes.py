"""The WF-VAE's shape rules, in one place: compression factors, legal frame counts, latent shapes.

The released WF-VAE compresses 4x in time and 8x in height and width, and its causal time axis encodes frame
0 alone, so a clip has ``1 + 4k`` frames and ``1 + k`` latent frames. Everything else in ffasora (the
pipeline, training, data preparation and checks, the command line) asks this module instead of re-deriving
the rule. It imports nothing (not even torch), so the data tools can ask without loading a model.
"""

from __future__ import annotations

TEMPORAL_COMPRESSION = 4
SPATIAL_COMPRESSION = 8
EXAMPLES = "1, 5, 9, ..., 21, ..."


def is_legal_frames(frames: int) -> bool:
    """Whether a clip of ``frames`` frames can be encoded: ``1 + 4k``, k >= 0."""
    return frames >= 1 and (frames - 1) % TEMPORAL_COMPRESSION == 0


def legal_frames_below(frames: int) -> int:
    """The largest legal frame count <= ``frames`` (``frames`` >= 1): what trimming keeps."""
    return 1 + TEMPORAL_COMPRESSION * ((frames - 1) // TEMPORAL_COMPRESSION)


def legal_frames_above(frames: int) -> int:
    """The smallest legal frame count >= ``frames``: what padding makes."""
    return 1 + TEMPORAL_COMPRESSION * -(-max(frames - 1, 0) // TEMPORAL_COMPRESSION)


def frame_count_problem(frames: int) -> str | None:
    """None for a legal frame count, else the rule and the legal counts nearest to ``frames``."""
    if is_legal_frames(frames):
        return None
    near = [legal_frames_below(frames)] if frames > 1 else []
    near.append(legal_frames_above(frames))
    use = " or ".join(str(n) for n in near)
    return f"the WF-VAE makes 1 + {TEMPORAL_COMPRESSION}k frames ({EXAMPLES}); use {use}"


def check_frames(frames: int, what: str = "input") -> None:
    """``ValueError`` naming ``what``, the count and the nearest legal counts unless ``frames`` is 1 + 4k."""
    problem = frame_count_problem(frames)
    if problem is not None:
        raise ValueError(f"{what} has {frames} frames: {problem}")


def latent_frames(frames: int) -> int:
    """Latent frames for a clip of ``frames`` (legal) frames: ``1 + (frames - 1) / 4``."""
    check_frames(frames)
    return 1 + (frames - 1) // TEMPORAL_COMPRESSION


def pixel_frames(latent_frames: int) -> int:
    """Frames decoded from ``latent_frames`` latent frames: ``1 + 4 (t - 1)``."""
    return 1 + TEMPORAL_COMPRESSION * (latent_frames - 1)


def latent_shape(frames: int, height: int, width: int) -> tuple[int, int, int]:
    """``(t, h, w)`` of the latent of a ``frames x height x width`` clip; ``ValueError`` for a shape the VAE
    cannot encode."""
    for name, value in (("height", height), ("width", width)):
        if value < SPATIAL_COMPRESSION or value % SPATIAL_COMPRESSION:
            raise ValueError(f"{name}={value}: the WF-VAE needs a multiple of {SPATIAL_COMPRESSION}")
    return latent_frames(frames), height // SPATIAL_COMPRESSION, width // SPATIAL_COMPRESSION
