"""A lesion's kinetic terms are named where they are built: positional numbers are refused."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.simulate.lesions import Additive, Leak, Pool


def test_kinetic_terms_take_keywords_only() -> None:
    source = np.ones((4, 4), np.float32)
    leak = Leak(source=source, onset_s=20.0, amp=0.35, rate=0.08, sigma0_mm=0.03, d_mm2_min=0.002)
    assert (leak.onset_s, leak.d_mm2_min) == (20.0, 0.002)
    with pytest.raises(TypeError):
        Leak(source, 20.0, 0.35, 0.08, 0.03, 0.002)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Pool(source > 0, np.zeros((4, 4)), 0.7, 0.03)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Additive(source, "cap", 3.0)  # type: ignore[misc]
