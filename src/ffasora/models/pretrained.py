"""Model folders on disk: ours, the official diffusers layout, and the official ``config.json`` + ``.ckpt``.

Our format is a folder with ``config.json`` (the model's own config, JSON) and ``model.safetensors``. The
official WF-VAE / Open-Sora Plan checkpoints come either as a diffusers folder (``config.json`` +
``diffusion_pytorch_model.safetensors`` or ``.bin``) or as ``config.json`` + a ``*.ckpt`` holding
``ema_state_dict`` (preferred), ``gen_model`` or a bare state dict, with DDP's ``module.`` prefix.

Loading is strict: every missing, unexpected or mis-shaped key is named in one ``ValueError``, because a
silently half-loaded model (the upstream ``strict=False``) only shows up later as bad samples. One exception,
for the upstream trainers' EMA: their ``ema_state_dict`` holds only the trainable parameters, so a loader may
let :func:`build_and_load` take the model's frozen constants (buffers and ``requires_grad=False`` parameters,
e.g. the WF-VAE's Haar filters) from the constructor; they are logged by name, and any other missing key is
still refused. A damaged or truncated file is a ``ValueError`` naming it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")

M = TypeVar("M", bound=nn.Module)
log = logging.getLogger(__name__)
CKPT_ENTRIES = ("ema_state_dict", "gen_model", "state_dict", "model")  # preferred first: EMA is what ships


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a model folder (ours or official)."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise ValueError(f"{path}: no {CONFIG_NAME}; expected a model folder (config.json + weights)")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: not valid JSON ({err}); the model folder is damaged") from None
    if not isinstance(config, dict):
        raise ValueError(f"{file}: expected a JSON object, found {type(config).__name__}")
    return config


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


@dataclass(frozen=True)
class Weights:
    """The tensors of a model folder and where they came from."""

    tensors: dict[str, torch.Tensor]  # on the CPU, ``module.``/``_orig_mod.`` prefixes stripped
    file: Path
    layout: str  # "ffasora", "diffusers" or "ckpt"
    entry: str | None  # the ``.ckpt`` entry read ("ema_state_dict", ...); None: the whole file

    @property
    def is_ema(self) -> bool:
        """An upstream trainer's EMA (holds the trainable parameters only)."""
        return self.entry == "ema_state_dict"


def read_weights(path: str | Path) -> Weights:
    """The weights of a model folder in any supported layout (a ``.ckpt`` prefers its EMA entry)."""
    file, layout = find_weights(path)
    try:
        if file.suffix == ".safetensors":
            return Weights(load_file(str(file), device="cpu"), file, layout, None)
        blob = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - each reader fails its own way on a damaged file
        raise ValueError(
            f"{file}: cannot read the weights ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
            "the file is damaged or truncated, copy it again"
        ) from None
    entry = None
    if layout == "ckpt" and isinstance(blob, Mapping):
        entry = next((k for k in CKPT_ENTRIES if isinstance(blob.get(k), Mapping)), None)
        blob = blob[entry] if entry else blob
    if not isinstance(blob, Mapping):
        raise ValueError(f"{file}: expected a state dict, found {type(blob).__name__}")
    tensors = {_strip_prefix(k): v for k, v in blob.items() if isinstance(v, torch.Tensor)}
    return Weights(tensors, file, layout, entry)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a model folder in any supported layout, on the CPU, prefixes normalised."""
    return read_weights(path).tensors


def _strip_prefix(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def frozen_constants(model: nn.Module) -> set[str]:
    """State-dict names of a model's constants: its buffers and its ``requires_grad=False`` parameters."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    frozen |= {name for name, _ in model.named_buffers()}
    return frozen & set(model.state_dict())


def load_strict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source: str = "checkpoint",
    may_be_absent: Collection[str] = (),
) -> None:
    """Load ``state_dict`` into ``model`` (which may live on the meta device), naming every mismatch.

    Keys in ``may_be_absent`` are not required; the caller fills them (they stay as the model holds them).
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict) - set(may_be_absent))
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
    model.load_state_dict(converted, strict=not may_be_absent, assign=True)


def build_and_load(
    factory: Callable[[], M],
    state_dict: Mapping[str, torch.Tensor],
    source: str = "checkpoint",
    dtype: torch.dtype | None = None,
    constants_from_constructor: bool = False,
) -> M:
    """Build the model on the meta device (no wasted random init), then load the weights strictly.

    Buffers that are not stored in checkpoints (non-persistent, e.g. fixed Haar taps) are materialised by
    re-running ``reset_parameters``-free construction on the CPU for just those buffers. With
    ``constants_from_constructor`` (an upstream EMA state dict, which holds only trainable parameters), the
    model's frozen constants (:func:`frozen_constants`) may be absent too: they are taken from the
    constructor in the same way and logged by name; every other missing key is still an error.
    """
    with torch.device("meta"):
        model = factory()
    supplied: list[str] = []
    if constants_from_constructor:
        supplied = sorted(frozen_constants(model) - set(state_dict))
    load_strict(model, state_dict, source, may_be_absent=supplied)
    if supplied:
        log.info(
            "%s: %d frozen constants are not in the checkpoint (an EMA of the trainable parameters); "
            "taken from the %s constructor: %s",
            source,
            len(supplied),
            type(model).__name__,
            ", ".join(supplied),
        )
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
    return write_model_folder(path, config, model.state_dict(), WEIGHTS_NAME, dtype=dtype)


def write_model_folder(
    path: str | Path,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    weights_name: str,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``config.json`` + ``weights_name`` (safetensors; floats cast to ``dtype`` if given), each file
    through a temporary name and a rename, so a reader never sees half a file."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in state_dict.items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    tmp_weights = folder / (weights_name + ".tmp")
    save_file(tensors, str(tmp_weights), metadata={"format": "pt"})
    tmp_weights.replace(folder / weights_name)
    tmp_config = folder / (CONFIG_NAME + ".tmp")
    tmp_config.write_text(json.dumps(dict(config), indent=2) + "\n")
    tmp_config.replace(folder / CONFIG_NAME)
    return folder


def weights_sha256(module: nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes, bytes): the same weights give the same hash
    whatever file layout they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: str | Path, limit: int | None = None) -> str:
    """Hex sha256 of a file (used for model hashes in provenance records)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    text = digest.hexdigest()
    return text[:limit] if limit else text
