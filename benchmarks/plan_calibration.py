"""The planner's memory against measured peaks of small CPU training steps (docs/scaling.md, #22).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plan_calibration.py          # the table
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plan_calibration.py --saved  # re-fit the per-block constants

Each case runs in a fresh process: build the DiT (optionally with LoRA adapters), then two optimizer steps
(forward, backward, AdamW, EMA) in fp32. Peak = the process's maximum resident set size after the steps
(``getrusage`` ``ru_maxrss``) minus its resident size just before them (``/proc/self/statm``); glibc is told
to serve every allocation over 64 KiB with ``mmap`` so freed tensors leave the resident set at once. A tiny training step runs
first so that code the first kernels map into memory is in the baseline too. The
model's weights are in the baseline, so the planner's figure compared is gradients + optimizer + EMA +
batch x activations.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.lora import LoRAConfig, add_lora
from ffasora.train.ema import EMA
from ffasora.train.plan import DataShape, Hardware, plan_memory

CASES = [  # width, heads, layers, latent (t, h, w), text tokens, batch, lora rank, checkpointing
    (240, 4, 4, (4, 32, 32), 64, 2, 0, False),
    (240, 4, 4, (4, 32, 32), 64, 2, 0, True),
    (240, 4, 4, (4, 32, 32), 64, 2, 8, False),
    (240, 4, 4, (4, 32, 32), 64, 2, 8, True),
    (360, 6, 6, (4, 24, 24), 128, 1, 0, False),
    (360, 6, 6, (4, 24, 24), 128, 1, 16, False),
    (120, 2, 8, (4, 48, 48), 32, 1, 4, False),
    (120, 2, 8, (4, 48, 48), 32, 1, 0, True),
]


def _config(width: int, heads: int, layers: int) -> DiTConfig:
    return DiTConfig(
        in_channels=8, out_channels=8, num_layers=layers, num_heads=heads, head_dim=width // heads,
        text_dim=64, sparse_n=1,
    )  # fmt: skip


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _warm_up(config: DiTConfig, rank: int, ckpt: bool) -> None:
    """One tiny training step first: the kernels' code and thread pools the first call maps into memory (about
    40 MiB on this CPU) are then in the baseline, not in the peak."""
    model = DiT(config)
    if rank:
        add_lora(model, LoRAConfig(rank=rank))
    model.set_gradient_checkpointing(ckpt)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x, text = torch.randn(1, 8, 2, 8, 8), torch.randn(1, 4, 64)
    model(x, torch.full((1,), 500.0), text, torch.ones(1, 4, dtype=torch.bool)).square().mean().backward()
    opt.step()
    EMA(model, 0.99).update(model)


def measure(case: tuple) -> dict[str, float]:
    """Run in the child process: the peak bytes of two training steps above the resident set before them."""
    width, heads, layers, latent, text_len, batch, rank, ckpt = case
    _warm_up(_config(width, heads, 1), rank, ckpt)
    torch.manual_seed(0)
    model = DiT(_config(width, heads, layers))
    if rank:
        add_lora(model, LoRAConfig(rank=rank))
    model.set_gradient_checkpointing(ckpt)
    x = torch.randn(batch, 8, *latent)
    text, mask = torch.randn(batch, text_len, 64), torch.ones(batch, text_len, dtype=torch.bool)
    t = torch.full((batch,), 500.0)
    params = [p for p in model.parameters() if p.requires_grad]
    before = _rss()
    opt = torch.optim.AdamW(params, lr=1e-4)
    ema = EMA(model, 0.99, trained_only=bool(rank))
    for _ in range(2):
        model(x, t, text, mask).square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak": float(peak - before)}


def planned(case: tuple) -> float:
    width, heads, layers, latent, text_len, batch, rank, ckpt = case
    plan = plan_memory(
        _config(width, heads, layers), DataShape(latent, text_len, 1), Hardware(gpu_gib=1000),
        LoRAConfig(rank=rank), batch=batch, bf16=False, checkpointing=ckpt,
    )  # fmt: skip
    return plan.gradients + plan.optimizer + plan.ema + batch * plan.per_sample


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(measure(CASES[args.case])))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
    print(
        "| width x layers | latent | text | batch | LoRA rank | checkpointing | planned MiB | measured MiB | planned / measured |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for i, case in enumerate(CASES):
        out = subprocess.run(
            [sys.executable, __file__, "--case", str(i)], capture_output=True, text=True, env=env, check=True
        )
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak"]
        plan = planned(case)
        width, heads, layers, latent, text_len, batch, rank, ckpt = case
        print(
            f"| {width} x {layers} | {'x'.join(map(str, latent))} | {text_len} | {batch} | {rank or '-'} | "
            f"{'yes' if ckpt else 'no'} | {plan / 2**20:.1f} | {peak / 2**20:.1f} | {plan / peak:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
