"""Contact sheet layout: one tile per frame, captions and labels add height, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from ffasora.io.sheet import BACKGROUND, contact_sheet


def _rows(n: int, t: int, size: int = 32) -> list[np.ndarray]:
    return [np.full((t, size, size), 60 + 40 * i, np.uint8) for i in range(n)]


def test_grid_size_and_tiles():
    sheet = contact_sheet(_rows(3, 4), gap=4)
    assert sheet.size == (4 + 4 * 36, 4 + 3 * (4 + 32 + 8))
    pixels = np.asarray(sheet)
    # First tile of row 2 sits where the layout says, with the row's grey value.
    y0 = 4 + 2 * 44 + 2
    assert pixels[y0 + 16, 4 + 16] == 140
    assert pixels[2, 2] == BACKGROUND and sheet.mode == "L"


def test_labels_add_height_and_tiles_are_resized():
    rows = _rows(2, 3, size=64)
    plain = contact_sheet(rows, tile=32)
    labelled = contact_sheet(
        rows,
        ["case A  DR (PDR)  |  findings: MA, NPA, NVE", "case B  normal"],
        [["10.0 s", "20.0 s", "30.0 s"]] * 2,
        tile=32,
        title="demo",
    )
    assert plain.width == labelled.width == 4 + 3 * 36
    assert labelled.height > plain.height
    # Labels are drawn: some pixels are brighter than any tile or the background.
    assert np.asarray(labelled).max() > 140


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no rows"):
        contact_sheet([])
    with pytest.raises(ValueError, match="uint8"):
        contact_sheet([np.zeros((2, 8, 8), np.float32)])
    with pytest.raises(ValueError, match="row_labels"):
        contact_sheet(_rows(2, 2), ["only one"])
