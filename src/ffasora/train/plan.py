"""Memory and time of a DiT training run before it starts (``ffasora plan dit``; ``train dit`` checks it on GPU).

Memory per GPU is counted from the model's parameter shapes and the data shapes:

* weights: fp32 master weights for full fine-tuning (plus the bf16 copies autocast makes of them for the
  forward), or the frozen base in its own dtype plus fp32 adapters under LoRA;
* gradients (4 B), AdamW moments (8 B) and the EMA (4 B) of the *trained* parameters only; FSDP divides
  these and the weights by the number of GPUs (under LoRA the frozen base is sharded with the adapters) and
  holds about two gathered blocks on top;
* activations per sample: autograd's saved tensors of one block, ``c_sd * S * D + c_ld * L * D`` bytes for S
  video tokens, L text tokens and width D, calibrated on CPU (``benchmarks/plan_calibration.py``); without
  checkpointing every block keeps them, with checkpointing every block keeps only its input and one block is
  recomputed at a time;
* the cached report states of a batch (the text encoder itself never runs in training: ``ffasora latents``
  writes its states into the latent cache once).

10 % of the GPU is held back for the CUDA context, the allocator and kernel workspaces. Time is counted FLOPs
(:func:`ffasora.models.dit_cost.count_flops`) over an assumed throughput: an estimate, never a measurement.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.dit_cost import count_flops
from ffasora.models.lora import LoRAConfig
from ffasora.train.dit_task import DiTTaskConfig

GiB = 2**30
RESERVE = 0.10  # of GPU memory: CUDA context, allocator fragmentation, kernel workspaces
H100_BF16_TFLOPS = 989.0  # dense bf16 peak, NVIDIA H100 SXM datasheet
# Bytes of activations per block at the peak of a training step, per (token x width) and per (text token x
# width). Two steps of calibration (benchmarks/plan_calibration.py): autograd's saved tensors of one block,
# fitted on 7 CPU cases (widths 60-240, 32-256 tokens, dense and Skiparse; residuals within 5 %), gave
# 96.5 / 14.8 (fp32) and 64.9 / 11.7 (bf16 autocast); measured peaks of un-checkpointed fp32 training steps
# are 0.857 of that (saved views of one storage are counted once there), so both pairs are scaled by it.
# Autocast also keeps bf16 copies of fp32 weights, 25.5 bytes per width² per block (12 D² weights).
SAVED_FP32 = (82.7, 12.7)
SAVED_BF16 = (55.6, 10.0)
AUTOCAST_COPIES_PER_D2 = 25.5
# With checkpointing the recomputed block's backward holds its activation gradients beside its activations:
# a quarter of a block more at the peak (fitted on the checkpointed cases of the same calibration).
RECOMPUTE_PEAK = 1.25


@dataclass(frozen=True)
class DataShape:
    """Latent grid (frames, height, width) of one sample, report tokens, and videos per epoch."""

    latent: tuple[int, int, int] = (6, 64, 64)  # 21x512x512 through the WF-VAE (4x8x8)
    text_tokens: int = 512
    videos: int = 2900


@dataclass(frozen=True)
class Hardware:
    gpus: int = 1
    gpu_gib: float = 80.0
    tflops: float = H100_BF16_TFLOPS  # per GPU, dense bf16 peak
    mfu: float = 0.4  # assumed share of the peak a training step reaches


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per GPU by item; ``per_sample_*`` scale with the per-GPU batch."""

    weights: float
    gradients: float
    optimizer: float
    ema: float
    per_sample_plain: float
    per_sample_checkpointed: float
    per_sample_text: float
    trained_params: int
    total_params: int
    checkpointing: bool
    batch: int
    budget: float
    fixed: float = field(init=False)
    total: float = field(init=False)
    max_batch: int = field(init=False)

    def __post_init__(self) -> None:
        fixed = self.weights + self.gradients + self.optimizer + self.ema
        per = self.per_sample + self.per_sample_text
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "total", fixed + self.batch * per)
        object.__setattr__(self, "max_batch", max(0, math.floor((self.budget - fixed) / per)))

    @property
    def per_sample(self) -> float:
        return self.per_sample_checkpointed if self.checkpointing else self.per_sample_plain

    @property
    def fits(self) -> bool:
        return self.total <= self.budget


@dataclass(frozen=True)
class TimePlan:
    flops_forward: float  # one sample
    flops_step: float  # one optimizer step on one GPU (batch x grad_accum samples)
    step_s: float
    epoch_s: float
    steps_per_epoch: int


def _param_counts(config: DiTConfig, lora: LoRAConfig) -> tuple[int, int]:
    """(all parameters, trained parameters) of the DiT, adapters included under LoRA; built on the meta device."""
    with torch.device("meta"):
        model = DiT(config)
    total = sum(p.numel() for p in model.parameters())
    if not lora.enabled:
        return total, total
    import re

    wanted = re.compile(lora.target_pattern())
    adapters = sum(
        lora.rank * (m.in_features + m.out_features)
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and wanted.fullmatch(n)
    )
    return total + adapters, adapters


def saved_bytes_per_block(
    config: DiTConfig, tokens: int, text_tokens: int, bf16: bool, fp32_weights: bool
) -> float:
    """Bytes autograd keeps for one block's backward pass, one sample (see the module docstring)."""
    c_sd, c_ld = SAVED_BF16 if bf16 else SAVED_FP32
    d = config.hidden_size
    copies = AUTOCAST_COPIES_PER_D2 * d * d if bf16 and fp32_weights else 0.0
    return c_sd * tokens * d + c_ld * text_tokens * d + copies


def plan_memory(
    config: DiTConfig,
    data: DataShape,
    hardware: Hardware,
    lora: LoRAConfig,
    batch: int,
    bf16: bool,
    checkpointing: bool,
    fsdp: bool = False,
    ema: bool = True,
    base_bf16: bool | None = None,
) -> MemoryPlan:
    """Per-GPU memory of one training step. ``bf16``: autocast compute; ``base_bf16`` (LoRA): frozen base kept in
    bf16 (default: as ``bf16``)."""
    total, trained = _param_counts(config, lora)
    t, h, w = data.latent
    tokens = config.num_tokens(t, h, w)
    if lora.enabled:
        base = total - trained
        base_bytes = 2 if (bf16 if base_bf16 is None else base_bf16) else 4
        weights = base * base_bytes + 4.0 * trained
        fp32_weights = base_bytes == 4
    else:
        weights = 4.0 * total
        fp32_weights = True
    shard = hardware.gpus if fsdp else 1
    gathered = 2 * weights / config.num_layers if shard > 1 else 0.0  # FSDP unshards ~2 blocks at a time
    block = saved_bytes_per_block(config, tokens, data.text_tokens, bf16, fp32_weights)
    copies = AUTOCAST_COPIES_PER_D2 * config.hidden_size**2 if bf16 and fp32_weights else 0.0
    # Outside the blocks the copies are not per sample: count them once with the weights.
    weights += config.num_layers * copies
    block -= copies
    stream = (2 if bf16 else 4) * tokens * config.hidden_size  # a block's input, kept when checkpointing
    return MemoryPlan(
        weights=weights / shard + gathered,
        gradients=4.0 * trained / shard,
        optimizer=8.0 * trained / shard,
        ema=(4.0 * trained / shard) if ema else 0.0,
        per_sample_plain=config.num_layers * block,
        per_sample_checkpointed=config.num_layers * stream + RECOMPUTE_PEAK * block,
        per_sample_text=4.0 * data.text_tokens * config.text_dim,
        trained_params=trained,
        total_params=total,
        checkpointing=checkpointing,
        batch=batch,
        budget=hardware.gpu_gib * GiB * (1 - RESERVE),
    )


def plan_time(
    config: DiTConfig,
    data: DataShape,
    hardware: Hardware,
    lora: LoRAConfig,
    batch: int,
    grad_accum: int,
    checkpointing: bool,
) -> TimePlan:
    """FLOPs and estimated seconds per optimizer step and per epoch (all GPUs together).

    A training step costs the forward plus the backward: 2 forwards' worth for activation and weight gradients
    (3x in all), 1 under LoRA where the frozen base needs no weight gradients (2x), plus 1 with checkpointing.
    """
    t, h, w = data.latent
    fwd = float(count_flops(config, t, h, w, data.text_tokens))
    factor = (2 if lora.enabled else 3) + (1 if checkpointing else 0)
    per_gpu_samples = batch * grad_accum
    step_flops = factor * fwd * per_gpu_samples
    step_s = step_flops / (hardware.tflops * 1e12 * hardware.mfu)
    steps = max(1, math.ceil(data.videos / (per_gpu_samples * hardware.gpus)))
    return TimePlan(fwd, step_flops, step_s, steps * step_s, steps)


def with_rank(lora: LoRAConfig, rank: int | None) -> LoRAConfig:
    """``lora`` with another rank (``--lora RANK``); None leaves it as it is."""
    return lora if rank is None else dataclasses.replace(lora, rank=rank)


@dataclass(frozen=True)
class DiTPlan:
    memory: MemoryPlan
    time: TimePlan
    data: DataShape
    hardware: Hardware
    lora: LoRAConfig
    data_source: str  # where the data shape came from


def data_shape_from_cache(cache: str) -> tuple[DataShape, str] | None:
    """The latent grid, report length and train-video count recorded by ``ffasora latents``, if readable."""
    from pathlib import Path

    from ffasora.train.latents import read_cache_info

    if not cache or not (Path(cache) / "cache.json").is_file():
        return None
    info = read_cache_info(cache)
    shape = info.get("latent_shape")
    if not shape:
        return None
    spec = info.get("text_encoder", {}).get("spec") or {}
    text = int(spec.get("max_tokens") or DataShape.text_tokens)
    videos = int(info.get("counts", {}).get("train") or DataShape.videos)
    return DataShape((int(shape[1]), int(shape[2]), int(shape[3])), text, videos), f"latent cache {cache}"


def plan_dit(
    cfg: DiTTaskConfig,
    hardware: Hardware,
    lora_rank: int | None = None,
    data: DataShape | None = None,
) -> DiTPlan:
    """The plan of a DiT training preset: data shape from ``data``, else the preset's latent cache, else the
    official clip (21x512x512, 512 mT5 tokens, 2,900 videos)."""
    lora = with_rank(cfg.lora, lora_rank)
    source = "given"
    if data is None:
        found = data_shape_from_cache(cfg.data.cache)
        data, source = (
            found if found is not None else (DataShape(), "default: 21x512x512 clips, 512 text tokens")
        )
    tc = cfg.train
    bf16 = tc.precision in ("bf16", "auto")  # "auto" is bf16 on every GPU this plans for
    base_bf16 = lora.base_dtype == "bf16" or (lora.base_dtype == "auto" and tc.precision == "bf16")
    memory = plan_memory(
        cfg.model, data, hardware, lora, tc.batch_size, bf16, tc.grad_checkpointing,
        fsdp=tc.parallel == "fsdp", ema=tc.ema.enabled, base_bf16=base_bf16,
    )  # fmt: skip
    time = plan_time(cfg.model, data, hardware, lora, tc.batch_size, tc.grad_accum, tc.grad_checkpointing)
    return DiTPlan(memory, time, data, hardware, lora, source)


def describe(plan: DiTPlan) -> list[str]:
    """The plan as lines of text (what ``ffasora plan dit`` prints)."""
    m, t, d, hw = plan.memory, plan.time, plan.data, plan.hardware
    g = 1 / GiB
    lora = (
        f"LoRA rank {plan.lora.rank} on {len(plan.lora.targets)} linears per block"
        if plan.lora.enabled
        else "all weights"
    )
    other = m.per_sample_plain if m.checkpointing else m.per_sample_checkpointed
    batch_other = max(0, math.floor((m.budget - m.fixed) / (other + m.per_sample_text)))
    lines = [
        f"hardware: {hw.gpus} GPU(s) x {hw.gpu_gib:g} GiB ({m.budget * g:.1f} GiB usable after a {RESERVE:.0%} "
        "reserve for the CUDA context, allocator and workspaces)",
        f"model: {m.total_params / 1e6:,.1f} M parameters; trained: {m.trained_params / 1e6:,.2f} M ({lora})",
        f"data: latent {'x'.join(map(str, d.latent))}, {d.text_tokens} report tokens, {d.videos} videos "
        f"({plan.data_source}); report states come cached, the text encoder is not loaded",
        "memory per GPU (GiB, estimates):",
        f"  weights              {m.weights * g:8.2f}",
        f"  gradients            {m.gradients * g:8.2f}",
        f"  optimizer (AdamW)    {m.optimizer * g:8.2f}",
        f"  EMA                  {m.ema * g:8.2f}",
        f"  activations/sample   {m.per_sample_plain * g:8.2f} without checkpointing, "
        f"{m.per_sample_checkpointed * g:.2f} with (in use: {'with' if m.checkpointing else 'without'})",
        f"  report states/sample {m.per_sample_text * g:8.3f}",
        f"  total at batch {m.batch:<5} {m.total * g:8.2f} of {m.budget * g:.1f}: "
        + ("fits" if m.fits else "DOES NOT FIT"),
        f"largest batch per GPU: {m.max_batch} ({'with' if m.checkpointing else 'without'} checkpointing), "
        f"{batch_other} ({'without' if m.checkpointing else 'with'})",
        f"compute: {t.flops_forward / 1e12:.3g} TFLOP per sample forward; {t.flops_step / 1e12:.3g} TFLOP per "
        f"optimizer step per GPU",
        f"time (estimate at {hw.mfu:.0%} of {hw.tflops:g} TFLOP/s per GPU, assumed): {t.step_s:.3g} s per step, "
        f"{t.steps_per_epoch} steps and {t.epoch_s / 3600:.3g} h per epoch",
    ]
    return lines


def refusal(plan: DiTPlan) -> str:
    """Why a plan does not fit and what to change; empty when it fits."""
    m = plan.memory
    if m.fits:
        return ""
    hints = []
    if not m.checkpointing:
        hints.append("train.grad_checkpointing=true")
    if not plan.lora.enabled:
        hints.append("LoRA (--lora 16 / [lora] rank = 16)")
    if m.max_batch >= 1:
        hints.append(f"train.batch_size={m.max_batch} with more train.grad_accum")
    return f"needs {m.total / GiB:.1f} GiB per GPU, {m.budget / GiB:.1f} GiB usable; try " + (
        ", ".join(hints) or "a larger GPU or FSDP over more GPUs"
    )
