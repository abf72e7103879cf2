"""The training engine: one loop for every task, on one device or data-parallel under ``torchrun``.

Reads top to bottom: ``setup`` builds modules, optimizers, EMA and the data stream (and resumes);
``fit`` runs steps, logs, checkpoints and stops cleanly on SIGTERM/SIGINT; ``train_step`` is one optimizer
step of gradient accumulation, gradient averaging, clipping, the non-finite guard and the EMA update.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ffasora.config import save_config
from ffasora.train import checkpoint as ckpt
from ffasora.train.config import OptimConfig, ScheduleConfig, TrainConfig, train_section
from ffasora.train.distributed import (
    DistInfo,
    any_across_ranks,
    average_gradients,
    barrier,
    broadcast_module,
    fsdp_wrap,
    full_tensor,
    gather_objects,
    init_distributed,
    mean_across_ranks,
)
from ffasora.train.ema import EMA
from ffasora.train.guard import Guard
from ffasora.train.metrics import MetricsLogger, environment, memory_mb
from ffasora.train.sampler import BatchStream
from ffasora.train.tasks import GroupSpec, Task

Progress = Callable[[int, int, dict[str, Any]], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    step: int
    status: str  # "finished" or "interrupted"
    skipped: int
    rollbacks: int
    checkpoint: Path | None


def lr_factor(step: int, max_steps: int, cfg: ScheduleConfig) -> float:
    """LR multiplier at ``step`` (0-based): linear warm-up to 1, then the configured decay to the floor."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.kind == "constant":
        return 1.0
    span = max(1, max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.kind == "cosine" else 1.0 - progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * shape


def build_optimizer(modules: list[nn.Module], cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices/kernels only: not on norms, biases or embeddings."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in modules:
        for sub in module.modules():
            for name, p in sub.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                embedding = isinstance(sub, nn.Embedding) or "embed" in name
                (no_decay if p.ndim < 2 or embedding else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps
    )


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware. Without AVX512-BF16 or AMX, torch converts every bf16
    operand to fp32 and back: a bf16 step of the bundled DiT took 28 s against 2.7 s in fp32 on an AVX2-only
    AMD EPYC."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


class Trainer:
    """Train ``task`` with config ``cfg`` (a task config with a ``train`` section) into ``run_dir``.

    Every rank constructs a Trainer with the same arguments; rank 0 alone writes logs and checkpoints.
    ``progress(step, max_steps, row)`` is called on rank 0 after every step with the newest metrics row.
    """

    def __init__(
        self,
        task: Task,
        cfg: Any,
        run_dir: str | Path,
        task_name: str = "",
        dist: DistInfo | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.task, self.cfg, self.tc = task, cfg, train_section(cfg)
        self.task_name = task_name
        self.run_dir = Path(run_dir)
        self.dist = dist or init_distributed()
        self.progress = progress
        self.step = 0
        self._stop_signal: int | None = None
        self._ready = False

    # ----- setup -----------------------------------------------------------------------------------------
    def setup(self) -> None:
        tc, device = self.tc, self.dist.device
        if (
            tc.precision == "bf16"
            and device.type == "cpu"
            and not cpu_has_native_bf16()
            and self.dist.is_main
        ):
            log.warning(
                "train.precision = 'bf16' on a CPU without bf16 instructions (AVX512-BF16 or AMX): torch emulates "
                "bf16 here, about 10x slower than fp32; --set train.precision=fp32 trains faster"
            )
        torch.manual_seed(tc.seed)  # identical initialisation on every rank
        self.models = self.task.build_models(self.cfg)
        self.groups: dict[str, GroupSpec] = self.task.optimizer_groups(self.cfg)
        self._check_models()
        if tc.parallel == "fsdp" and len(self.groups) > 1:
            # FSDP2 reshards and reduce-scatters in hooks that a backward restricted to one group's
            # parameters (``backward(inputs=...)``) does not run for the other groups.
            raise ValueError(
                f"train.parallel = 'fsdp' supports one optimizer group; this task has {sorted(self.groups)}: "
                "use train.parallel = 'ddp'"
            )
        self.trained = [m for spec in self.groups.values() for m in spec.modules]
        for name, module in self.models.items():
            module.to(device)
            switch = getattr(module, "set_gradient_checkpointing", None)
            if tc.grad_checkpointing and name in self.trained:
                # Small modules (a discriminator) may lack the switch; the published model must have it.
                if switch is None and name == "model":
                    raise ValueError(f"train.grad_checkpointing: {type(module).__name__} cannot checkpoint")
                if switch is not None:
                    switch(True)
            if name in self.trained:
                if tc.parallel == "fsdp" and self.dist.distributed:
                    fsdp_wrap(module)
                else:
                    broadcast_module(module)
        self.group_modules = {
            g: nn.ModuleDict({m: self.models[m] for m in spec.modules}) for g, spec in self.groups.items()
        }
        self.params = {
            g: [p for p in mods.parameters() if p.requires_grad] for g, mods in self.group_modules.items()
        }
        self.optim_cfg = {g: spec.optim or tc.optim for g, spec in self.groups.items()}
        self.optimizers = {
            g: build_optimizer(list(self.group_modules[g].values()), self.optim_cfg[g]) for g in self.groups
        }
        self.trained_only = self.task.frozen_from_init(self.cfg)
        self.ema = (
            EMA(self.models["model"], tc.ema.decay, tc.ema.warmup, trained_only=self.trained_only)
            if tc.ema.enabled
            else None
        )
        self.guard = Guard(tc.guard)
        self.stream = BatchStream(
            self.task.build_dataset(self.cfg, "train"),
            batch_size=tc.batch_size,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            seed=tc.seed,
            shuffle=tc.loader.shuffle,
            num_workers=tc.loader.num_workers,
            pin_memory=tc.loader.pin_memory and device.type == "cuda",
            collate_fn=self.task.collate_fn,
        )
        torch.manual_seed(tc.seed + 1 + self.dist.rank)  # per-rank randomness (noise, dropout) from here on
        self.resumed_from: Path | None = None
        self.skipped_checkpoints: list[tuple[Path, str]] = []
        if tc.checkpoint.resume:
            self._resume()
        self._ready = True

    def _checkpoint_contents(self) -> tuple[list[str], list[str]]:
        """What every checkpoint of this run must hold: weight files and optimizer groups."""
        weights = list(dict.fromkeys(["model", *self.trained])) + (["ema"] if self.ema is not None else [])
        return weights, list(self.optimizers)

    def _resume(self) -> None:
        """Continue from the newest checkpoint that reads completely. Newer damaged ones are named in the log
        with the reason and renamed ``*.damaged`` (kept, never deleted), after every rank has read."""
        found = ckpt.newest_intact_checkpoint(self.run_dir, *self._checkpoint_contents())
        if found is None:
            return
        path, state, damaged = found
        self.load_state(state)
        self.resumed_from, self.skipped_checkpoints = path, damaged
        barrier()  # every rank has chosen before rank 0 moves the damaged ones aside
        for bad, reason in damaged:
            kept = ckpt.set_aside(bad) if self.dist.is_main else bad
            if self.dist.is_main:
                log.warning(
                    "skipped %s: %s; kept as %s; resuming from %s", bad.name, reason, kept.name, path.name
                )
        barrier()

    def _check_models(self) -> None:
        if "model" not in self.models:
            raise ValueError(f"build_models must return a 'model' entry; got {sorted(self.models)}")
        owner: dict[str, str] = {}
        for g, spec in self.groups.items():
            for m in spec.modules:
                if m not in self.models:
                    raise ValueError(f"optimizer group {g!r} trains {m!r}, not in {sorted(self.models)}")
                if m in owner:
                    raise ValueError(f"module {m!r} is in optimizer groups {owner[m]!r} and {g!r}")
                owner[m] = g

    def global_batch(self) -> int:
        return self.tc.batch_size * self.tc.grad_accum * self.dist.world_size

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        device = self.dist.device
        p = self.tc.precision
        bf16 = p == "bf16" or (p == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
        if not bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    # ----- one optimizer step ----------------------------------------------------------------------------
    def _losses(self, batch: Any) -> Iterator[tuple[str, torch.Tensor]]:
        """Run the task under autocast one loss at a time (back-propagation happens outside autocast)."""
        with self.autocast():
            out = self.task.training_step(self.models, batch, self.step)
        items = iter(out.items()) if isinstance(out, Mapping) else iter(out)
        while True:
            with self.autocast():
                item = next(items, None)
            if item is None:
                return
            yield item

    def train_step(self) -> dict[str, Any]:
        """One optimizer step over ``grad_accum`` micro-batches; returns the scalars to log."""
        tc = self.tc
        logs: dict[str, float] = {}
        active: list[str] = []
        bad_loss = False
        for _ in range(tc.grad_accum):
            batch = to_device(next(self.stream), self.dist.device)
            for name, value in self._losses(batch):
                scalar = float(value.detach().float())
                key = f"loss/{name}" if name in self.groups else name
                logs[key] = logs.get(key, 0.0) + scalar / tc.grad_accum
                if name not in self.groups:
                    continue
                bad_loss |= not math.isfinite(scalar)
                # Only this group's parameters receive gradients: a generator loss flowing through the
                # discriminator must not move the discriminator (and vice versa).
                inputs = self.params[name] if len(self.groups) > 1 else None
                (value.float() / tc.grad_accum).backward(inputs=inputs)
                if name not in active:
                    active.append(name)
        norms = self._sync_and_clip(active)
        bad, stop = any_across_ranks(bad_loss or Guard.is_bad(*norms.values()), self._stop_signal is not None)
        stepped = [] if bad else active
        for g in stepped:
            lr = (
                self.optim_cfg[g].lr
                * lr_factor(self.step, tc.max_steps, tc.schedule)
                * self.guard.state.lr_scale
            )
            for pg in self.optimizers[g].param_groups:
                pg["lr"] = lr
            self.optimizers[g].step()
            logs[f"lr/{g}"] = lr
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        if self.ema is not None and any("model" in self.groups[g].modules for g in stepped):
            e = tc.ema
            if self.step >= e.start_step and self.step % e.every == 0:
                self.ema.update(self.models["model"])
        action = self.guard.record(bad)
        self.step += 1
        logs.update({f"grad_norm/{g}": n for g, n in norms.items()})
        return {"logs": logs, "action": action, "stop": stop}

    def _sync_and_clip(self, active: list[str]) -> dict[str, float]:
        norms = {}
        for g in active:
            if not (self.tc.parallel == "fsdp" and self.dist.distributed):
                average_gradients(self.params[g])
            clip = self.optim_cfg[g].grad_clip
            norm = torch.nn.utils.clip_grad_norm_(self.params[g], clip if clip > 0 else math.inf)
            norms[g] = float(full_tensor(norm))
        return norms

    # ----- checkpoints -----------------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write a checkpoint of the current state (collective: every rank calls; rank 0 writes)."""
        weights = {
            m: ckpt.module_state(self.models[m], trained_only=self.trained_only and m == "model")
            for m in dict.fromkeys(["model", *self.trained])
        }
        if self.ema is not None:
            weights["ema"] = self.ema.full_state_dict(self.models["model"])
        optimizer = {g: ckpt.optimizer_state(self.group_modules[g], o) for g, o in self.optimizers.items()}
        rng = gather_objects(ckpt.rng_state())
        path = None
        if self.dist.is_main:
            trainer = {
                "step": self.step,
                "data": self.stream.state_dict(),
                "guard": self.guard.state_dict(),
                "ema_updates": self.ema.updates if self.ema is not None else 0,
                "rng": rng,
                "world_size": self.dist.world_size,
                "task": self.task_name,
            }
            path = ckpt.write_checkpoint(
                self.run_dir, self.step, weights, optimizer, trainer, self.tc.checkpoint.keep_last
            )
        barrier()
        return path

    def load(self, path: Path, keep_guard: bool = False) -> None:
        """Restore everything a checkpoint holds (every rank reads it)."""
        self.load_state(ckpt.read_checkpoint(path, *self._checkpoint_contents()), keep_guard)

    def load_state(self, state: dict[str, Any], keep_guard: bool = False) -> None:
        """Restore a checkpoint's contents as :func:`ckpt.read_checkpoint` returns them."""
        for m, weights in state["weights"].items():
            if m != "ema":
                ckpt.load_module_state(self.models[m], weights, self.trained_only and m == "model")
        for g, opt in self.optimizers.items():
            ckpt.load_optimizer_state(self.group_modules[g], opt, state["optimizer"][g])
        t = state["trainer"]
        if self.ema is not None:
            self.ema.load_full_state_dict(
                self.models["model"], state["weights"]["ema"], int(t["ema_updates"])
            )
        self.step = int(t["step"])
        self.stream.load_state_dict(t["data"])
        if not keep_guard:
            self.guard.load_state_dict(t["guard"])
        if int(t["world_size"]) == self.dist.world_size:
            ckpt.set_rng_state(t["rng"][self.dist.rank])
        else:  # another world size: exact RNG continuation is impossible, keep the streams distinct
            torch.manual_seed(self.tc.seed + 1 + self.dist.rank + 7919 * self.step)

    def rollback(self) -> Path:
        """Restore the newest checkpoint and lower the LR (called after too many bad steps in a row)."""
        target = ckpt.latest_checkpoint(self.run_dir)
        if target is None:
            raise RuntimeError(
                f"{self.guard.state.consecutive} non-finite steps in a row and no checkpoint in "
                f"{self.run_dir} to roll back to; lower train.optim.lr or save checkpoints more often"
            )
        self.guard.rolled_back()
        self.load(target, keep_guard=True)
        return target

    # ----- the loop --------------------------------------------------------------------------------------
    def _write_run_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.run_dir / "config.json")
        import json

        info = {
            "task": self.task_name,
            "global_batch": self.global_batch(),
            "resumed_from": str(self.resumed_from),
            "skipped_checkpoints": [
                {"checkpoint": path.name, "reason": reason} for path, reason in self.skipped_checkpoints
            ],
        }
        env = environment(self.dist.world_size, self.dist.device)
        (self.run_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")
        (self.run_dir / "environment.json").write_text(json.dumps(env, indent=2) + "\n")

    def fit(self) -> TrainResult:
        if not self._ready:
            self.setup()
        tc = self.tc
        logger = None
        if self.dist.is_main:
            self._write_run_files()
            logger = MetricsLogger(self.run_dir, tensorboard=tc.logging.tensorboard)
        status, last = "finished", self.resumed_from
        saved_at = self.step if self.resumed_from is not None else -1  # don't rewrite what was just read
        window_time, window_steps = 0.0, 0
        row: dict[str, Any] = {}
        try:
            with self._signals():
                while self.step < tc.max_steps:
                    t0 = time.perf_counter()
                    out = self.train_step()
                    window_time += time.perf_counter() - t0
                    window_steps += 1
                    event = self._after_step(out, logger)
                    if event or self.step % tc.logging.every == 0 or self.step == tc.max_steps:
                        row = self._row(out["logs"], window_time, window_steps)
                        window_time, window_steps = 0.0, 0
                        if logger is not None:
                            logger.write(row)
                    if self.progress is not None and self.dist.is_main:
                        self.progress(self.step, tc.max_steps, row)  # the newest logged row
                    if out["stop"]:
                        status = "interrupted"
                        break
                    if self.step % tc.checkpoint.every == 0 and saved_at != self.step:
                        last, saved_at = self.save(), self.step
                if saved_at != self.step:
                    last = self.save()
        finally:
            if logger is not None:
                logger.close()
        return TrainResult(self.step, status, self.guard.state.skipped, self.guard.state.rollbacks, last)

    def _after_step(self, out: dict[str, Any], logger: MetricsLogger | None) -> bool:
        """Guard reporting and rollback; True when the step is an event worth its own log row."""
        action = out["action"]
        if action == "ok":
            return False
        event: dict[str, Any] = {"event": "skip", "step": self.step, "skipped": self.guard.state.skipped}
        event.update({k: v for k, v in out["logs"].items() if k.startswith(("loss/", "grad_norm/"))})
        if logger is not None:
            logger.write(event)
        if action == "rollback":
            bad_step = self.step
            target = self.rollback()
            if logger is not None:
                logger.write(
                    {
                        "event": "rollback",
                        "from_step": bad_step,
                        "to_step": self.step,
                        "checkpoint": target.name,
                        "lr_scale": self.guard.state.lr_scale,
                        "rollbacks": self.guard.state.rollbacks,
                    }
                )
        return True

    def _row(self, logs: dict[str, float], seconds: float, steps: int) -> dict[str, Any]:
        """One metrics.jsonl row (collective: per-rank losses are averaged over ranks)."""
        logs = mean_across_ranks(logs)  # a NaN on any rank stays NaN in the mean
        step_time = seconds / max(1, steps)
        samples = self.global_batch() / step_time if step_time > 0 else 0.0
        row: dict[str, Any] = {"step": self.step, **logs, "step_time_s": step_time, "samples_per_s": samples}
        tokens = self.task.tokens_per_sample(self.cfg)
        if tokens:
            row["tokens_per_s"] = samples * tokens
        row.update(
            epoch=self.stream.epoch,
            skipped=self.guard.state.skipped,
            memory_mb=memory_mb(self.dist.device),
        )
        return row

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT ask for a checkpoint and a clean exit after the current step."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self._stop_signal = signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def train(
    task: Task, cfg: Any, run_dir: str | Path, task_name: str = "", progress: Progress | None = None
) -> TrainResult:
    """Set up the process group from the environment (torchrun) and train."""
    return Trainer(task, cfg, run_dir, task_name=task_name, progress=progress).fit()


__all__ = ["TrainConfig", "TrainResult", "Trainer", "build_optimizer", "lr_factor", "train"]
