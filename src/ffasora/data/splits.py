"""Patient-level train/val/test splits, deterministic by seed and stratified by diagnosis.

Splitting by video would put a patient's two eyes (or repeat visits) on both sides of the train/test line and
inflate every score, so the unit is the patient. FFA Sora used 80/10/10 (2,851 / 387 / 387 videos).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping

import numpy as np

SPLITS = ("train", "val", "test")

log = logging.getLogger(__name__)


def assign_splits(
    patients: Mapping[str, str | None],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, str]:
    """Map each patient id to "train", "val" or "test".

    patients: patient id -> stratum (primary diagnosis code, or None when unknown).
    Within each stratum patients are shuffled by ``seed``; the strata are then laid end to end and dealt out
    by largest deficit (each patient goes to the split furthest below its target share so far). This is
    systematic sampling: every stratum, even one with a handful of patients, is spread in proportion, and the
    overall counts are within one of ``fractions * n``. The result depends only on the ids, strata and seed,
    not on the order of ``patients``.
    """
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1):
        raise ValueError(f"split fractions {fractions} must be three non-negative numbers summing to 1")
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for patient, stratum in patients.items():
        by_stratum["" if stratum is None else str(stratum)].append(patient)
    rng = np.random.default_rng(seed)
    ordered: list[str] = []
    for stratum in sorted(by_stratum):
        members = sorted(by_stratum[stratum])
        ordered.extend(members[i] for i in rng.permutation(len(members)))
    target = np.asarray(fractions, dtype=float)
    taken = np.zeros(len(SPLITS))
    result: dict[str, str] = {}
    for n, patient in enumerate(ordered, 1):
        choice = int(np.argmax(target * n - taken))  # ties go to the earlier split
        taken[choice] += 1
        result[patient] = SPLITS[choice]
    log.info(
        "patient split (seed %d, %d strata): %s",
        seed,
        len(by_stratum),
        ", ".join(f"{s} {int(c)}" for s, c in zip(SPLITS, taken, strict=True)),
    )
    return result
