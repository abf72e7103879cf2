"""Model folders on disk: ours, the official diffusers layout, and the official ``config.json`` + ``.ckpt``.

Our format is a folder with ``config.json`` (the model's own config, JSON) and ``model.safetensors``. The
official WF-VAE / Open-Sora Plan checkpoints come either as a diffusers folder (``config.json`` +
``diffusion_pytorch_model.safetensors`` or ``.bin``) or as ``config.json`` + a ``*.ckpt`` holding
``ema_state_dict`` (preferred), ``gen_model`` or a bare state dict, with DDP's ``module.`` prefix.

Loading is strict: every missing, unexpected or mis-shaped key is named in one ``ValueError``, because a
silently half-loaded model (the upstream ``strict=False``) only shows up later as bad samples.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")

M = TypeVar("M", bound=nn.Module)


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a model folder (ours or official)."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise ValueError(f"{path}: no {CONFIG_NAME}; expected a model folder (config.json + weights)")
    return json.loads(file.read_text())


def find_weights(path: str | Path) -> tuple[Path, str]:
    """Locate the weights file of a model folder and name its layout: "ffasora", "diffusers" or "ckpt"."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"model folder {folder} does not exist")
    if (folder / WEIGHTS_NAME).is_file():
        return folder / WEIGHTS_NAME, "ffasora"
    for name in DIFFUSERS_WEIGHTS:
        if (folder / name).is_file():
            return folder / name, "diffusers"
    ckpts = sorted(folder.glob("*.ckpt")) + sorted(folder.glob("*.pt")) + sorted(folder.glob("*.pth"))
    if len(ckpts) == 1:
        return ckpts[0], "ckpt"
    if len(ckpts) > 1:
        raise ValueError(f"{folder}: several checkpoint files {[c.name for c in ckpts]}; keep exactly one")
    raise ValueError(
        f"{folder}: no weights found; expected {WEIGHTS_NAME}, {' or '.join(DIFFUSERS_WEIGHTS)}, or one *.ckpt"
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a model folder in any supported layout, on the CPU, prefixes normalised."""
    file, layout = find_weights(path)
    if file.suffix == ".safetensors":
        return load_file(str(file), device="cpu")
    blob = torch.load(str(file), map_location="cpu", weights_only=True)
    if layout == "ckpt" and isinstance(blob, Mapping):
        # Official training checkpoints: the EMA weights are the published ones.
        for key in ("ema_state_dict", "gen_model", "state_dict", "model"):
            if key in blob and isinstance(blob[key], Mapping):
                blob = blob[key]
                break
    if not isinstance(blob, Mapping):
        raise ValueError(f"{file}: expected a state dict, found {type(blob).__name__}")
    return {_strip_prefix(k): v for k, v in blob.items() if isinstance(v, torch.Tensor)}


def _strip_prefix(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state_dict`` into ``model`` (which may live on the meta device), naming every mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if tuple(expected[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or mis_shaped:
        lines = [f"{source} does not match {type(model).__name__}:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if mis_shaped:
            lines.append(f"  shape mismatches ({len(mis_shaped)}): {'; '.join(mis_shaped)}")
        raise ValueError("\n".join(lines))
    dtypes = {k: v.dtype for k, v in expected.items()}
    # Cast to the model's dtypes (a 16-bit published file loads into an fp32 model) and keep buffers' dtypes.
    converted = {k: v.to(dtypes[k]) if v.is_floating_point() else v for k, v in state_dict.items()}
    model.load_state_dict(converted, strict=True, assign=True)


def build_and_load(
    factory: Callable[[], M],
    state_dict: Mapping[str, torch.Tensor],
    source: str = "checkpoint",
    dtype: torch.dtype | None = None,
) -> M:
    """Build the model on the meta device (no wasted random init), then load the weights strictly.

    Buffers that are not stored in checkpoints (non-persistent, e.g. fixed Haar taps) are materialised by
    re-running ``reset_parameters``-free construction on the CPU for just those buffers.
    """
    with torch.device("meta"):
        model = factory()
    load_strict(model, state_dict, source)
    _materialise_non_persistent_buffers(model, factory)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def _materialise_non_persistent_buffers(model: nn.Module, factory: Callable[[], nn.Module]) -> None:
    leftovers = [name for name, buf in model.named_buffers() if buf.is_meta]
    leftovers += [name for name, p in model.named_parameters() if p.is_meta]
    if not leftovers:
        return
    reference = factory()  # rare path: only models with non-persistent buffers pay for a CPU build
    ref_tensors = dict(reference.named_buffers()) | dict(reference.named_parameters())
    for name in leftovers:
        module_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(module_name) if module_name else model
        value = ref_tensors[name].detach().clone()
        if isinstance(getattr(owner, attr), nn.Parameter):
            setattr(owner, attr, nn.Parameter(value, requires_grad=False))
        else:
            owner._buffers[attr] = value


def save_model_folder(
    model: nn.Module,
    config: Mapping[str, Any],
    path: str | Path,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (optionally cast to ``dtype``), atomically per file."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    tmp_weights = folder / (WEIGHTS_NAME + ".tmp")
    save_file(tensors, str(tmp_weights), metadata={"format": "pt"})
    tmp_weights.replace(folder / WEIGHTS_NAME)
    tmp_config = folder / (CONFIG_NAME + ".tmp")
    tmp_config.write_text(json.dumps(dict(config), indent=2) + "\n")
    tmp_config.replace(folder / CONFIG_NAME)
    return folder


def file_sha256(path: str | Path, limit: int | None = None) -> str:
    """Hex sha256 of a file (used for model hashes in provenance records)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    text = digest.hexdigest()
    return text[:limit] if limit else text
