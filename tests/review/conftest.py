"""Tiny studies for the review tests: 5-frame 32x32 clips, synthetic as mp4/gif files, real as a dataset folder."""

from __future__ import annotations

import pytest
from review_fixtures import FINDINGS, make_sources

from ffasora.review.study import StudyOptions, create_study


@pytest.fixture(scope="session")
def study_factory(tmp_path_factory: pytest.TempPathFactory):
    """Builds a small study: 4 synthetic + 2 real videos (share 1/3), 3 raters, findings checklist."""

    def build(raters: tuple[str, ...] = ("ana", "ben", "chen"), **kw):
        root = tmp_path_factory.mktemp("study")
        syn, real = make_sources(root)
        options = StudyOptions(real_share=kw.pop("real_share", 1 / 3), findings=FINDINGS, seed=3, **kw)
        return create_study(root / "study", [syn], list(raters), real=[real], options=options)

    return build
