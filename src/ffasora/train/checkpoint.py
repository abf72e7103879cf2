"""Training checkpoints: atomic folders under ``<run>/checkpoints``, the newest ``keep_last`` kept.

Layout of ``checkpoints/step-00001000/``::

    <module>.safetensors   full fp32 weights of every trained module ("model", "disc", ...)
    ema.safetensors        EMA of "model" (when enabled)
    optimizer.pt           optimizer states by group (torch.save)
    trainer.pt             step, data position, guard, EMA update count, RNG states of every rank

A checkpoint is written into a hidden temporary folder and renamed into place only when complete, so a
process killed mid-write leaves the previous checkpoint as the newest readable one.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINTS = "checkpoints"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders are ignored)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / "trainer.pt").is_file()]
    return sorted(found, key=lambda p: p.name)


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


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``{"weights": {module: state}, "optimizer": {...}, "trainer": {...}}`` of one checkpoint folder."""
    path = Path(path)
    if not (path / "trainer.pt").is_file():
        raise ValueError(f"{path} is not a complete checkpoint (no trainer.pt)")
    weights = {p.stem: load_file(str(p)) for p in sorted(path.glob("*.safetensors"))}
    optimizer = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    trainer = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
    return {"weights": weights, "optimizer": optimizer, "trainer": trainer}


def read_weights(path: str | Path, name: str) -> dict[str, torch.Tensor]:
    """One module's (or ``"ema"``) weights from a checkpoint folder, without the optimizer state."""
    file = Path(path) / f"{name}.safetensors"
    if not file.is_file():
        have = sorted(p.stem for p in Path(path).glob("*.safetensors"))
        raise ValueError(f"{path} has no {name}.safetensors; it has {have}")
    return load_file(str(file))


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


def module_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Full state dict on CPU (collective under FSDP2: call on every rank; complete on rank 0)."""
    if not _is_sharded(module):
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(module, options=opts)  # type: ignore[return-value]


def load_module_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full state dict strictly (every rank passes the full state)."""
    if not _is_sharded(module):
        module.load_state_dict(state, strict=True)
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
