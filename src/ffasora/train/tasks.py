"""The task protocol and the registry of tasks that ``ffasora train <name>`` knows.

The engine is model-agnostic: a task says which modules exist, which optimizer trains which of them, where
the data come from and what the losses are. The registry stores ``"module:attr"`` strings, so listing the
tasks (and ``ffasora train --help``) imports nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffasora.train.config import OptimConfig

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

# name -> "module:attr"; attr is a Task subclass (instantiated without arguments) or an instance.
TASKS: dict[str, str] = {
    "vae": "ffasora.train.vae_task:VAETask",
    "dit": "ffasora.train.dit_task:DiTTask",
    "distill": "ffasora.train.distill_task:DistillTask",
    "refiner": "ffasora.train.refiner_task:RefinerTask",
}

StepLosses = Mapping[str, "torch.Tensor"] | Iterable[tuple[str, "torch.Tensor"]]


@dataclass(frozen=True)
class GroupSpec:
    """One optimizer: the entries of ``build_models`` it trains, and optionally its own AdamW settings."""

    modules: tuple[str, ...]
    optim: OptimConfig | None = None  # None: use ``train.optim``


class Task:
    """Base class of a training task. Subclasses set ``config_cls`` and implement the three builders.

    ``config_cls``: a frozen dataclass with the task's own sections (``model``, ``data``, ...) and a
    ``train: TrainConfig`` field shared with every other task.
    """

    config_cls: type = object
    collate_fn: Callable[[list[Any]], Any] | None = None

    def build_models(self, cfg: Any) -> dict[str, nn.Module]:
        """All modules of the task; ``"model"`` is the published one and the only one with an EMA."""
        raise NotImplementedError

    def build_dataset(self, cfg: Any, split: str) -> Dataset[Any]:
        raise NotImplementedError

    def optimizer_groups(self, cfg: Any) -> dict[str, GroupSpec]:
        """Optimizers by name, in the order their losses are back-propagated. Default: one, on ``model``."""
        return {"model": GroupSpec(modules=("model",))}

    def training_step(self, models: dict[str, nn.Module], batch: Any, step: int) -> StepLosses:
        """Losses of one micro-batch.

        Returns a mapping, or yields ``(name, tensor)`` pairs. A name that is an optimizer group is a scalar
        loss: the engine back-propagates it into that group's parameters only (other groups' gradients are
        untouched), so a generator loss that runs through a discriminator never moves the discriminator.
        Any other name is a detached scalar that is only logged. Yielding lets the engine free a group's
        graph before the next group's forward. A group that gets no loss in a step is not stepped (e.g. a
        discriminator before its start step). Losses of different groups must not share a graph.
        """
        raise NotImplementedError

    def frozen_from_init(self, cfg: Any) -> bool:
        """True when ``model``'s frozen parameters come unchanged from ``build_models`` (an adapter run):
        checkpoints and the EMA then hold only the trained parameters (and buffers), and a resume or an
        export rebuilds the rest from the config."""
        return False

    def tokens_per_sample(self, cfg: Any) -> int | None:
        """Tokens one sample contributes (for tokens/s in the logs); None when that has no meaning."""
        return None

    def export(self, model: nn.Module, cfg: Any, out_dir: Path, dtype: torch.dtype) -> Path:
        """Write the published model folder. Default: the model's own ``save_pretrained``."""
        save = getattr(model, "save_pretrained", None)
        if save is None:
            raise ValueError(f"{type(model).__name__} has no save_pretrained; override Task.export")
        return Path(save(out_dir, dtype=dtype))


def register_task(name: str, target: str) -> None:
    """Make ``ffasora train <name>`` find ``target`` (``"package.module:attr"``)."""
    if ":" not in target:
        raise ValueError(f"task target {target!r} must look like 'package.module:attr'")
    TASKS[name] = target


def load_task(name: str) -> Task:
    """Import and instantiate the task registered as ``name``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    module_name, attr = TASKS[name].split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise ValueError(f"task {name!r} points to {module_name}, which does not exist yet") from err
        raise
    obj = getattr(module, attr)
    return obj() if isinstance(obj, type) else obj
