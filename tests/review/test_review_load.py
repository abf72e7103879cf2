"""The load test of benchmarks/review_load.py, shortened: 20 raters posting at once for 2 seconds.

Only correctness is asserted (every acknowledged submission stored, final answers exact); the timings are
reported by the benchmark itself.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from served_app import free_port

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "review_load.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("review_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_twenty_concurrent_raters_lose_no_rating(bench, tmp_path: Path) -> None:
    study, tokens = bench.make_study(tmp_path, raters=20, videos=4, size=32)
    port = free_port()
    proc = bench.serve(study, port)
    try:
        result = bench.run_load(f"http://127.0.0.1:{port}", study, tokens, seconds=2.0)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert result["submitted"] > 20  # every rater got through at least once
    assert result["stored"] == result["submitted"]
    assert result["final_mismatches"] == 0
    assert result["errors"] == 0
