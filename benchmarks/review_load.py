"""Load test of the rating app on loopback: many raters submitting at once for a bounded time.

Each rater is a thread with its own HTTP connection that posts the rating form (the same request a browser
sends, CSRF token included) as fast as the server answers, cycling through its list, so ratings are also
*changed* under load. Afterwards the database is read back: every acknowledged submission must be in the
audit log (``rating_events``) and each rater's final answers must be exactly what it last sent.

    .venv/bin/python benchmarks/review_load.py --raters 20 --seconds 30

The server is ``ffasora review serve`` in its own process (one uvicorn worker, as a study would run it).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from ffasora.review import media
from ffasora.review.store import Store
from ffasora.review.study import StudyOptions, create_study


@dataclass
class RaterLoad:
    token: str
    submitted: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    last: dict[int, int] = field(default_factory=dict)


def make_study(root: Path, raters: int, videos: int = 10, size: int = 64) -> tuple[Path, dict[str, str]]:
    """A study of ``videos`` random 5-frame clips, every rater rating all of them."""
    src = root / "videos"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(videos):
        media.write_mp4(src / f"v{i:03d}.mp4", rng.integers(0, 255, (5, size, size), dtype=np.uint8), fps=7)
    names = [f"rater{j:02d}" for j in range(raters)]
    created = create_study(
        root / "study", [src], names, options=StudyOptions(findings=(("MA", "microaneurysms"),))
    )
    return created.path, created.tokens


def serve(study: Path, port: int) -> subprocess.Popen[bytes]:
    """``ffasora review serve`` in its own process; returns once it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ffasora", "review", "serve", str(study), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def _rater(base: str, load: RaterLoad, stop_at: float, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30) as client:
        info = client.get(f"/api/r/{load.token}/progress").json()
        total, csrf = info["total"], info["csrf"]
        position = 1
        while time.monotonic() < stop_at:
            quality = rng.randint(1, 5)
            form = {"csrf": csrf, "quality": str(quality), "finding": ["MA"] if quality < 3 else []}
            start = time.perf_counter()
            try:
                response = client.post(f"/r/{load.token}/item/{position}", data=form)
            except httpx.TransportError:
                load.errors += 1
                continue
            load.latencies.append(time.perf_counter() - start)
            if response.status_code == 303:
                load.submitted += 1
                load.last[position] = quality
            else:
                load.errors += 1
            position = position % total + 1


def run_load(base: str, study: Path, tokens: dict[str, str], seconds: float) -> dict[str, float]:
    """Run every rater for ``seconds`` and compare what was acknowledged with what the database holds."""
    loads = [RaterLoad(t) for t in tokens.values()]
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=_rater, args=(base, ld, stop_at, n)) for n, ld in enumerate(loads)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    st = Store(study)
    stored = st.table("SELECT COUNT(*) AS n FROM rating_events")[0]["n"]
    final = st.table(
        "SELECT ra.name, a.position, r.quality FROM ratings r JOIN raters ra ON ra.id = r.rater_id "
        "JOIN assignments a ON a.rater_id = r.rater_id AND a.video_id = r.video_id"
    )
    by_token = dict(zip(tokens.values(), tokens.keys(), strict=True))
    expected = {(by_token[ld.token], p): q for ld in loads for p, q in ld.last.items()}
    actual = {(r["name"], r["position"]): r["quality"] for r in final}
    latencies = np.array([x for ld in loads for x in ld.latencies]) * 1000
    submitted = sum(ld.submitted for ld in loads)
    return {
        "raters": len(loads),
        "seconds": elapsed,
        "submitted": submitted,
        "stored": stored,
        "final_mismatches": sum(actual.get(k) != v for k, v in expected.items())
        + len(set(actual) - set(expected)),
        "errors": sum(ld.errors for ld in loads),
        "throughput_per_s": submitted / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)) if latencies.size else float("nan"),
        "p95_ms": float(np.percentile(latencies, 95)) if latencies.size else float("nan"),
        "max_ms": float(latencies.max()) if latencies.size else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study, tokens = make_study(Path(tmp), args.raters)
        proc = serve(study, args.port)
        try:
            result = run_load(f"http://127.0.0.1:{args.port}", study, tokens, args.seconds)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    print(
        "| raters | seconds | submitted | stored | final mismatches | errors | req/s | p50 ms | p95 ms | max ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    r = result
    print(
        f"| {r['raters']} | {r['seconds']:.1f} | {r['submitted']} | {r['stored']} | {r['final_mismatches']} | "
        f"{r['errors']} | {r['throughput_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} |"
    )
    if r["submitted"] != r["stored"] or r["final_mismatches"] or r["errors"]:
        sys.exit("FAILED: stored ratings differ from acknowledged submissions")


if __name__ == "__main__":
    main()
