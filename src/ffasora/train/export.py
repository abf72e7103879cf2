"""``ffasora export``: a training run's checkpoint -> the published model folder (EMA weights by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ffasora.config import from_dict
from ffasora.train.checkpoint import load_module_state, read_weights, resolve_checkpoint
from ffasora.train.tasks import Task, load_task

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def read_run(run_dir: str | Path) -> tuple[str, Task, Any]:
    """The task name, task and resolved config a run was started with."""
    run_dir = Path(run_dir)
    for name in ("run.json", "config.json"):
        if not (run_dir / name).is_file():
            raise ValueError(f"{run_dir} is not a training run folder: {name} is missing")
    task_name = json.loads((run_dir / "run.json").read_text())["task"]
    task = load_task(task_name)
    cfg: Any = from_dict(task.config_cls, json.loads((run_dir / "config.json").read_text()))
    return task_name, task, cfg


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    dtype: str = "bf16",
    checkpoint: str = "latest",
    use_ema: bool = True,
) -> Path:
    """Write ``out_dir`` (``config.json`` + ``model.safetensors`` via the task) from one checkpoint.

    dtype: "fp32", "bf16" or "fp16" for the published weights. use_ema: publish the EMA of "model" (the
    default, and what sampling should use); falls back to an error when the run kept no EMA.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}; expected one of {sorted(DTYPES)}")
    task_name, task, cfg = read_run(run_dir)
    path = resolve_checkpoint(run_dir, checkpoint)
    model = task.build_models(cfg)["model"]
    load_module_state(model, read_weights(path, "ema" if use_ema else "model"), task.frozen_from_init(cfg))
    model.eval()
    out = Path(task.export(model, cfg, Path(out_dir), DTYPES[dtype]))
    record = {"run": str(Path(run_dir).resolve()), "task": task_name, "checkpoint": path.name, "ema": use_ema}
    (out / "training_run.json").write_text(json.dumps({**record, "dtype": dtype}, indent=2) + "\n")
    return out
