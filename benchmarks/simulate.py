"""Seconds per simulated case, single-threaded, at 21x256x256 and 21x512x512 (target: <= 2 s at 512).

Each size runs one warm-up case and then ``--cases`` timed cases with consecutive seeds and the cohort
disease mix, and prints mean / median / max wall seconds per case, the mean CPU seconds of this process (the
figure to trust on a shared machine, where wall time includes waiting for a core) and a per-stage split.

    .venv/bin/python benchmarks/simulate.py --cases 10 --sizes 256,512
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def stage_split(size: int, seed: int) -> dict[str, float]:
    """Seconds per pipeline stage of one case (same code path as ``simulate_case``)."""
    import numpy as np

    from ffasora.simulate.acquisition import acquire, sample_camera
    from ffasora.simulate.case import _prepare
    from ffasora.simulate.render import render
    from ffasora.simulate.sampling import make_schedule

    t0 = time.perf_counter()
    prep = _prepare(seed, size, None, None, ())
    t1 = time.perf_counter()
    schedule = make_schedule("canonical", prep.streams["sched"], prep.timing.arm_retina_s, 21)
    frames, _ = render(prep.scene, schedule.times)
    t2 = time.perf_counter()
    acquire(frames, sample_camera(np.random.default_rng(seed)), np.random.default_rng(seed))
    t3 = time.perf_counter()
    return {"plan+anatomy+lesions+layers": t1 - t0, "kinetics+composite": t2 - t1, "camera": t3 - t2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    from ffasora.simulate import simulate_case

    print(
        f"{'size':>12} {'mean s':>8} {'median s':>9} {'max s':>7} {'cpu s':>7}  cases={args.cases}, 21 frames, 1 thread"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        simulate_case(args.seed - 1, size=size, frames=21)  # warm-up (imports, caches)
        times, cpu = [], []
        for k in range(args.cases):
            t, c = time.perf_counter(), time.process_time()
            simulate_case(args.seed + k, size=size, frames=21)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        label = f"21x{size}x{size}"
        print(
            f"{label:>12} {statistics.mean(times):8.3f} {statistics.median(times):9.3f} {max(times):7.3f}"
            f" {statistics.mean(cpu):7.3f}"
        )
        split = stage_split(size, args.seed)
        print("             " + ", ".join(f"{k} {v:.3f} s" for k, v in split.items()))


if __name__ == "__main__":
    # one core, as the target states; set before numpy/scipy load their thread pools
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = "1"
    main()
