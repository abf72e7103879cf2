"""Physiology checks of videos generated for a known eye, inside that eye's own masks, beside three controls.

A video generated from a simulated test eye's colour photograph should share that eye's anatomy, so the
simulator's masks of the eye (``data.format.load_truth``) say where its arteries, veins, leaks and
non-perfused regions are, and the four checks of :mod:`ffasora.evaluate.physiology` can be asked of the
generated video in them. The same checks, in the same masks, are asked of three videos made from the true
ones, which say what the pass rates mean:

* ``reference``: the eye's true video. Right physiology, right anatomy: the ceiling (about 0.94 for
  arterial-before-venous on 128 px simulated videos, 1.0 for leakage; docs/evaluation.md).
* ``time_reversed``: the true video played backwards. Right anatomy, broken kinetics: it fails the ordering
  checks (arterial before venous, leakage grows); non-perfusion is spatial and survives it.
* ``other_anatomy``: another eye's true video judged in this eye's masks. Right physiology, wrong anatomy:
  what a generator that ignores the photograph reaches by chance placement. The donor is the next eye (in
  order, wrapping round) whose own masks make the same checks applicable and whose video has the same shape,
  so a leaking eye is compared with another leaking eye's video, not with a healthy one; where no eye has the
  same set, the one sharing most checks.

Counting: a check *applies* to a video when its eye's masks let it be measured (``physiology_checks`` gives
``None`` otherwise: no artery map, no leak, a lesion too small). A check that does not apply is neither a pass
nor a failure: it is left out of that check's rate. A video passes *overall* when it passes every check that
applies to it; videos to which no check applies are left out of the overall rate and counted as ``no_check``.

Everything here is arrays and masks in, numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ffasora.evaluate.physiology import CHECKS, physiology_checks

Result = Mapping[str, bool | None]
CONTROLS = ("reference", "time_reversed", "other_anatomy")


def applicable(result: Result) -> frozenset[str]:
    """The checks a result measured (not ``None``)."""
    return frozenset(c for c in CHECKS if result.get(c) is not None)


def overall(result: Result) -> bool | None:
    """True when every applicable check passed, ``None`` when none applies."""
    measured = [bool(v) for c, v in result.items() if c in CHECKS and v is not None]
    return all(measured) if measured else None


def check_videos(
    videos: Sequence[np.ndarray],
    masks: Sequence[Mapping[str, np.ndarray]],
    times: Sequence[Sequence[float] | np.ndarray | None],
) -> list[dict[str, bool | None]]:
    """The four checks of each (T, H, W) video inside the masks of its eye (aligned lists)."""
    if not len(videos) == len(masks) == len(times):
        raise ValueError(
            f"{len(videos)} videos, {len(masks)} mask sets and {len(times)} clocks: expected equal"
        )
    return [physiology_checks(v, t, m) for v, m, t in zip(videos, masks, times, strict=True)]


def other_anatomy_donors(
    checks: Sequence[frozenset[str]], shapes: Sequence[tuple[int, ...]]
) -> list[int | None]:
    """For each eye, the eye whose true video stands in as "other anatomy" (``None``: no other eye of the
    same video shape). ``checks``: each eye's applicable checks in its own masks (see the module docstring)."""
    if len(checks) != len(shapes):
        raise ValueError(f"{len(checks)} check sets for {len(shapes)} videos")
    n = len(checks)
    donors: list[int | None] = []
    for i in range(n):
        order = [(i + k) % n for k in range(1, n)]  # next eyes first, wrapping round
        same_shape = [j for j in order if shapes[j] == shapes[i]]
        if not same_shape:
            donors.append(None)
            continue
        # most shared checks first, then fewest extra ones; max() keeps the earliest among equals
        donors.append(
            max(same_shape, key=lambda j: (len(checks[i] & checks[j]), -len(checks[j] ^ checks[i])))
        )
    return donors


def control_videos(
    references: Sequence[np.ndarray], donors: Sequence[int | None]
) -> dict[str, list[np.ndarray | None]]:
    """The three control videos of each eye, aligned with ``references`` (``None``: no donor)."""
    return {
        "reference": list(references),
        "time_reversed": [np.ascontiguousarray(v[::-1]) for v in references],
        "other_anatomy": [references[d] if d is not None else None for d in donors],
    }


def rate(passed: int, n: int, confidence: float = 0.95) -> dict[str, Any]:
    """A pass rate with its exact (Clopper-Pearson) binomial interval; ``None`` rate when ``n`` is 0."""
    if n == 0:
        return {"n": 0, "passed": 0, "pass_rate": None, "ci95": None}
    from scipy.stats import binomtest

    ci = binomtest(passed, n).proportion_ci(confidence)
    return {"n": n, "passed": passed, "pass_rate": passed / n, "ci95": [float(ci.low), float(ci.high)]}


def pass_summary(results: Sequence[Result | None]) -> dict[str, Any]:
    """Per check and ``overall``: videos it applied to, passes, pass rate and 95 % interval; ``no_check``:
    videos to which no check applied. ``None`` entries (a missing control video) are skipped."""
    present = [r for r in results if r is not None]
    out: dict[str, Any] = {}
    for check in CHECKS:
        applied = [bool(r[check]) for r in present if r.get(check) is not None]
        out[check] = rate(sum(applied), len(applied))
    verdicts = [overall(r) for r in present]
    judged = [v for v in verdicts if v is not None]
    out["overall"] = rate(sum(judged), len(judged))
    out["no_check"] = len(verdicts) - len(judged)
    return out
