"""Frame-time samplers: when the frames of a simulated series are taken (design reference §1.4, §1.5).

* ``canonical``    the G21 grid: 12 frames anchored to the arm-retina time, 9 at absolute times; other
                   lengths resample G21 over its index, so the phase coverage stays the same.
* ``clinical``     an irregular clinical series: a transit burst every 1-3 s, then stills at widening
                   intervals to 10 min, all jittered.
* ``index_linear`` FFA-Sora's standardisation: a clinical series of its natural length is rendered and then
                   linearly interpolated over frame *index* to the requested length, so the output frames
                   are cross-fades without a physical time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ffasora.models.vae_shapes import check_frames

SAMPLERS = ("canonical", "clinical", "index_linear")
G21_EARLY = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 15.0, 20.0)
G21_LATE = (45.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 450.0, 600.0)


@dataclass(frozen=True)
class Schedule:
    """Times (s) to render, and for ``index_linear`` how output frames blend rendered ones.

    ``times`` (M,) strictly increasing render times; ``blend`` (N, 3) rows (i, j, a): output frame =
    (1 - a) * rendered[i] + a * rendered[j]; ``out_times`` (N,) the time each output frame is labelled with.
    """

    times: np.ndarray
    out_times: np.ndarray
    blend: np.ndarray | None = None


def g21(arm_retina_s: float) -> np.ndarray:
    early = arm_retina_s + np.array(G21_EARLY)
    late = np.array(G21_LATE)
    late = np.maximum(late, early[-1] + np.arange(1, len(late) + 1) * 5.0)  # a very late T_ar keeps order
    return np.concatenate([early, late])


def canonical(arm_retina_s: float, n: int) -> np.ndarray:
    grid = g21(arm_retina_s)
    if n == len(grid):
        return grid
    if n == 1:
        return grid[[9]]  # a single frame: the late-AV view
    return np.interp(np.linspace(0, len(grid) - 1, n), np.arange(len(grid)), grid)


def clinical(rng: np.random.Generator, arm_retina_s: float, n: int) -> np.ndarray:
    """n irregular times: ~55 % in the transit burst, the rest as stills out to ~10 min (§1.4)."""
    if n == 1:
        return np.array([arm_retina_s + rng.uniform(5, 15)])
    n_burst = max(1, int(round(0.55 * n)))
    gaps = rng.uniform(1.0, 3.0, n_burst)
    burst = arm_retina_s - rng.uniform(1.0, 3.0) + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    n_late = n - n_burst
    if n_late:
        late = np.geomspace(max(burst[-1] + 8.0, 40.0), rng.uniform(480, 660), n_late)
        late = late * rng.uniform(0.95, 1.05, n_late)
        times = np.concatenate([burst, np.sort(late)])
    else:
        times = burst
    return _strictly_increasing(times)


def _strictly_increasing(t: np.ndarray, eps: float = 0.1) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64).copy()
    for k in range(1, len(t)):
        t[k] = max(t[k], t[k - 1] + eps)
    return t


def make_schedule(sampler: str, rng: np.random.Generator, arm_retina_s: float, n: int) -> Schedule:
    """The render times of one case for sampler ``sampler`` and output length n (1 + 4k)."""
    check_frames(n, "a simulated case")
    if sampler == "canonical":
        t = canonical(arm_retina_s, n)
        return Schedule(t, t)
    if sampler == "clinical":
        t = clinical(rng, arm_retina_s, n)
        return Schedule(t, t)
    if sampler == "index_linear":
        m = int(rng.integers(10, 31))  # natural series length of one eye's posterior-pole stills
        src = clinical(rng, arm_retina_s, m)
        pos = np.linspace(0.0, m - 1, n)
        i = np.minimum(np.floor(pos).astype(int), m - 2)
        a = pos - i
        out_t = (1 - a) * src[i] + a * src[i + 1]
        return Schedule(src, out_t, np.stack([i, i + 1, a], axis=1))
    raise ValueError(f"sampler {sampler!r}: expected one of {SAMPLERS}")


def apply_blend(frames: np.ndarray, blend: np.ndarray | None) -> np.ndarray:
    """Interpolate rendered frames (M, ...) over index to the schedule's output frames (N, ...)."""
    if blend is None:
        return frames
    i, j = blend[:, 0].astype(int), blend[:, 1].astype(int)
    a = blend[:, 2].reshape(-1, *([1] * (frames.ndim - 1)))
    out = (1 - a) * frames[i].astype(np.float32) + a * frames[j].astype(np.float32)
    return np.round(out).astype(frames.dtype) if frames.dtype == np.uint8 else out.astype(frames.dtype)


def nearest_source(blend: np.ndarray | None, n: int) -> np.ndarray:
    """Index of the rendered frame nearest each output frame (for labels and masks)."""
    if blend is None:
        return np.arange(n)
    return np.where(blend[:, 2] < 0.5, blend[:, 0], blend[:, 1]).astype(int)
