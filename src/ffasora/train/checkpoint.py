"""Training checkpoints: atomic folders under ``<run>/checkpoints``, the newest ``keep_last`` kept.

Layout of ``checkpoints/step-00001000/``::

    <module>.safetensors   full fp32 weights of every trained module ("model", "disc", ...)
    ema.safetensors        EMA of "model" (when enabled)
    optimizer.pt           optimizer states by group (torch.save)
    trainer.pt             step, data position, guard, EMA update count, RNG states of every rank

A checkpoint is written into a hidden temporary folder and renamed into place only when complete, so a
process killed mid-write leaves the previous checkpoint as the newest readable one.

A checkpoint can still be damaged later (a full disk, a copy cut short). Resuming therefore takes the newest
checkpoint that verifies, every file present and loadable (:func:`newest_intact_checkpoint`); a damaged one
is never deleted: it is renamed ``step-XXXXXXXX.damaged`` (:func:`set_aside`), out of the way of the run's
later checkpoints and of the ``keep_last`` pruning, with the reason logged.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ffasora.train.distributed import full_tensor, shard_like

CHECKPOINTS = "checkpoints"
FORMAT_VERSION = 1
DAMAGED = ".damaged"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class DamagedCheckpoint(ValueError):
    """A checkpoint file is missing, empty, truncated or not what the trainer wrote; the message says which."""


def _step_dirs(run_dir: str | Path) -> list[Path]:
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if _STEP_DIR.match(p.name) and p.is_dir()), key=lambda p: p.name)


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders are ignored)."""
    return [p for p in _step_dirs(run_dir) if (p / "trainer.pt").is_file()]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def resolve_checkpoint(run_dir: str | Path, which: str = "latest") -> Path:
    """``"latest"``, a step number, or a checkpoint folder name -> the checkpoint folder."""
    if which == "latest":
        found = latest_checkpoint(run_dir)
        if found is None:
            raise ValueError(f"{run_dir} has no complete checkpoint under {CHECKPOINTS}/")
        return found
    name = f"step-{int(which):08d}" if which.isdigit() else which
    path = Path(run_dir) / CHECKPOINTS / name
    if not (path / "trainer.pt").is_file():
        known = [p.name for p in checkpoint_dirs(run_dir)]
        raise ValueError(f"checkpoint {which!r} not found in {run_dir}; complete ones: {known}")
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, no two entries sharing storage (safetensors refuses tied tensors).

    Tensors already on the CPU are cloned (a GPU tensor's ``.cpu()`` is a fresh copy already).
    """
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        t = t.detach()
        out[key] = (
            t.cpu().contiguous() if t.device.type != "cpu" else t.clone(memory_format=torch.contiguous_format)
        )
    return out


def write_checkpoint(
    run_dir: str | Path,
    step: int,
    weights: dict[str, dict[str, torch.Tensor]],
    optimizer: dict[str, Any],
    trainer: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write one checkpoint atomically (rank 0 only) and delete all but the newest ``keep_last``."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):  # left by a process killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir()
    for name, state in weights.items():
        save_file(_plain(state), str(tmp / f"{name}.safetensors"))
    torch.save(optimizer, tmp / "optimizer.pt")
    torch.save({"format_version": FORMAT_VERSION, **trainer}, tmp / "trainer.pt")  # last: marks completeness
    for f in tmp.iterdir():
        _fsync(f)
    if final.exists():  # a rollback re-reaching a saved step: replace the old folder
        old = root / f".tmp-old-{final.name}-{os.getpid()}"
        final.rename(old)
        shutil.rmtree(old)
    os.replace(tmp, final)
    _fsync(root)
    for old in checkpoint_dirs(run_dir)[:-keep_last]:
        shutil.rmtree(old)
    return final


def _load(file: Path) -> Any:
    """One checkpoint file, or :class:`DamagedCheckpoint` naming it and why it cannot be read."""
    if not file.is_file():
        raise DamagedCheckpoint(f"{file.name} is missing")
    if file.stat().st_size == 0:
        raise DamagedCheckpoint(f"{file.name} is empty")
    try:
        if file.suffix == ".safetensors":
            return load_file(str(file))
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - the readers fail in their own ways on a damaged file
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise DamagedCheckpoint(f"{file.name} cannot be read ({reason})") from None


def read_checkpoint(
    path: str | Path, weights: Iterable[str] = (), optimizers: Iterable[str] = ()
) -> dict[str, Any]:
    """``{"weights": {module: state}, "optimizer": {...}, "trainer": {...}}`` of one checkpoint folder.

    ``weights`` and ``optimizers`` name what must be there (the trainer's modules, EMA and optimizer groups);
    :class:`DamagedCheckpoint` says which file is missing or unreadable.
    """
    path = Path(path)
    try:
        trainer = _load(path / "trainer.pt")
        if not isinstance(trainer, dict) or "step" not in trainer:
            raise DamagedCheckpoint("trainer.pt does not hold the trainer state")
        if trainer.get("format_version") != FORMAT_VERSION:
            raise DamagedCheckpoint(f"trainer.pt has format_version {trainer.get('format_version')!r}")
        names = sorted({p.stem for p in path.glob("*.safetensors")} | set(weights))
        state = {name: _load(path / f"{name}.safetensors") for name in names}
        optimizer = _load(path / "optimizer.pt")
        missing = [g for g in optimizers if not isinstance(optimizer, dict) or g not in optimizer]
        if not isinstance(optimizer, dict) or missing:
            raise DamagedCheckpoint(f"optimizer.pt lacks the state of optimizer group(s) {missing}")
    except DamagedCheckpoint as err:
        raise DamagedCheckpoint(f"checkpoint {path}: {err}") from None
    return {"weights": state, "optimizer": optimizer, "trainer": trainer}


def newest_intact_checkpoint(
    run_dir: str | Path, weights: Iterable[str] = (), optimizers: Iterable[str] = ()
) -> tuple[Path, dict[str, Any], list[tuple[Path, str]]] | None:
    """The newest checkpoint that reads completely: (folder, its state, [(newer damaged folder, reason)]).

    None when the run has no checkpoint; :class:`DamagedCheckpoint` when it has some and none is intact.
    """
    weights, optimizers = list(weights), list(optimizers)
    damaged: list[tuple[Path, str]] = []
    for path in reversed(_step_dirs(run_dir)):  # a step folder without trainer.pt is damaged too
        try:
            return path, read_checkpoint(path, weights, optimizers), damaged
        except DamagedCheckpoint as err:
            damaged.append((path, str(err)))
    if damaged:
        reasons = "; ".join(reason for _, reason in damaged)
        raise DamagedCheckpoint(
            f"{run_dir}: no checkpoint can be read ({reasons}); restore one, or move {CHECKPOINTS}/ away to "
            "start this run afresh"
        )
    return None


def set_aside(path: str | Path) -> Path:
    """Rename a damaged checkpoint ``step-N`` to ``step-N.damaged`` (``.damaged-2``, ... if taken): kept for
    inspection, but no longer a checkpoint, so neither resumed from, replaced nor pruned."""
    path = Path(path)
    target, n = path.with_name(path.name + DAMAGED), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{DAMAGED}-{n}")
    path.rename(target)
    return target


def read_weights(path: str | Path, name: str) -> dict[str, torch.Tensor]:
    """One module's (or ``"ema"``) weights from a checkpoint folder, without the optimizer state."""
    file = Path(path) / f"{name}.safetensors"
    if not file.is_file():
        have = sorted(p.stem for p in Path(path).glob("*.safetensors"))
        raise ValueError(f"{path} has no {name}.safetensors; it has {have}")
    try:
        return dict(_load(file))
    except DamagedCheckpoint as err:
        raise DamagedCheckpoint(f"checkpoint {path}: {err}; choose another with --checkpoint") from None


# ----- RNG states ----------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """This process's RNG states in a ``weights_only``-loadable form."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), pos, has_gauss, gauss],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# ----- module and optimizer state, FSDP2-aware ------------------------------------------------------------
def _is_sharded(module: nn.Module) -> bool:
    return any(hasattr(p, "device_mesh") for p in module.parameters())


def frozen_names(module: nn.Module) -> set[str]:
    """State-dict names of the parameters that do not require grad."""
    return {name for name, p in module.named_parameters() if not p.requires_grad}


def module_state(module: nn.Module, trained_only: bool = False) -> dict[str, torch.Tensor]:
    """Full state dict on CPU (collective under FSDP2: call on every rank; complete on rank 0).

    trained_only: leave out the frozen parameters (an adapter run's base, rebuilt from its init folder). Under
    FSDP2 only the trained tensors are gathered, one at a time in state-dict order (the same on every rank), so
    the sharded base never travels; the result is complete on every rank and laid out as without FSDP.
    """
    if trained_only or not _is_sharded(module):
        skip = frozen_names(module) if trained_only else set()
        return {k: full_tensor(v).detach().cpu() for k, v in module.state_dict().items() if k not in skip}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(module, options=opts)  # type: ignore[return-value]


def load_module_state(module: nn.Module, state: dict[str, torch.Tensor], trained_only: bool = False) -> None:
    """Load a full state dict strictly (every rank passes the full state).

    trained_only: ``state`` holds exactly the trained parameters and buffers (see :func:`module_state`); under
    FSDP2 each is copied into this rank's shard, and the frozen base keeps its shards.
    """
    if not trained_only and not _is_sharded(module):
        module.load_state_dict(state, strict=True)
        return
    if trained_only:
        frozen = frozen_names(module)
        expected = set(module.state_dict()) - frozen
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"trained-parameter state: missing {missing[:3]} ({len(missing)}), "
                f"unexpected {unexpected[:3]} ({len(unexpected)})"
            )
        targets: dict[str, torch.Tensor] = dict(module.named_parameters(remove_duplicate=False))
        targets.update(module.named_buffers(remove_duplicate=False))
        with torch.no_grad():
            for name in sorted(expected):
                target = targets[name]
                target.copy_(shard_like(state[name], target))
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    opts = StateDictOptions(full_state_dict=True, strict=True)
    set_model_state_dict(module, dict(state), options=opts)  # type: ignore[arg-type]


def optimizer_state(modules: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Full optimizer state keyed by parameter name, so a checkpoint moves between ddp and fsdp.

    ``modules``: a ModuleDict of the group's modules (names are ``<module>.<param>``). Collective under FSDP2.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    opts = StateDictOptions(full_state_dict=_is_sharded(modules), cpu_offload=_is_sharded(modules))
    state = get_optimizer_state_dict(modules, optimizer, options=opts)
    return _to_cpu(state)  # type: ignore[arg-type]


def load_optimizer_state(modules: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    opts = StateDictOptions(full_state_dict=_is_sharded(modules))
    set_optimizer_state_dict(modules, optimizer, optim_state_dict=state, options=opts)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
