"""Step time and samples/s of the training engine on a tiny model: 1 process vs 2 data-parallel processes.

    .venv/bin/python benchmarks/train.py                       # CPU, gloo, the defaults below
    .venv/bin/python benchmarks/train.py --width 512 --steps 80 --global-batch 128

Every configuration trains the same MLP (tests/train/tiny_train_task.py) through the real command line
(``ffasora train`` under ``torchrun``) with the same global batch, and reads ``metrics.jsonl``; the first
``--warmup`` steps are left out and the median over the rest is reported. On CPU the fair comparison
gives both sides the same cores: 1 process x 2 threads against 2 processes x 1 thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "train" / "run_tiny.py"


def run(nproc: int, threads: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    run_dir = workdir / f"p{nproc}t{threads}"
    preset = workdir / "preset.toml"
    preset.write_text(
        f"[model]\nin_dim = {args.in_dim}\nwidth = {args.width}\n[data]\nsize = {args.samples}\n"
        f'[train]\nmax_steps = {args.steps}\nbatch_size = {args.global_batch // nproc}\nprecision = "fp32"\n'
        f"[train.checkpoint]\nevery = {10 * args.steps}\n"
        "[train.loader]\nnum_workers = 0\npin_memory = false\n[train.logging]\nevery = 1\n"
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd += [
        str(SCRIPT),
        "train",
        "tiny",
        "--config",
        str(preset),
        "--run-dir",
        str(run_dir),
        "--device",
        "cpu",
    ]
    start = time.perf_counter()
    out = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}
    )
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "event" not in r and r["step"] > args.warmup]
    step_time = statistics.median(r["step_time_s"] for r in rows)
    return {"step_ms": 1e3 * step_time, "samples_per_s": args.global_batch / step_time, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--in-dim", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--global-batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    configs = [(1, 1), (1, 2), (2, 1)]
    print(
        f"tiny MLP {args.in_dim}->{args.width}->1, global batch {args.global_batch}, {args.steps} steps "
        f"(median after {args.warmup}), CPU, os.cpu_count()={os.cpu_count()}"
    )
    print(f"{'processes':>9} {'threads':>7} {'step ms':>9} {'samples/s':>10} {'wall s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for nproc, threads in configs:
            r = run(nproc, threads, args, Path(tmp))
            print(
                f"{nproc:>9} {threads:>7} {r['step_ms']:>9.2f} {r['samples_per_s']:>10.0f} {r['wall_s']:>7.1f}"
            )


if __name__ == "__main__":
    main()
