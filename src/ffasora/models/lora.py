"""Low-rank adapters (LoRA, Hu et al. 2021, arXiv 2106.09685) for the video DiT, built with ``peft``.

A LoRA layer keeps a frozen linear ``W`` and learns ``delta W = (alpha / r) * B @ A`` with ``A`` (r, in) and
``B`` (out, r); ``B`` starts at zero, so an adapted model starts exactly as its base. Adapters sit on the
attention projections (self and cross, q/k/v/out) and the two feed-forward linears of every block by default;
``LoRAConfig.targets`` names others by their path inside a block (``self_attn.q``, ``mlp.fc1``, ...).

The adapter folder (``save_adapter``) holds ``adapter_config.json`` (this config, the base DiT's config and
where it came from) and ``adapter_model.safetensors`` with ``<module>.lora_A.weight`` / ``.lora_B.weight``
tensors (peft's on-disk names). ``merge_adapter`` folds one into a plain DiT's weights (no cost at sampling);
``merged`` turns a model with live adapters back into a plain DiT.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ffasora.models.dit import DiT
from ffasora.models.dit_config import DiTConfig

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_FORMAT = "ffasora-lora-1"
DEFAULT_TARGETS = (
    "self_attn.q",
    "self_attn.k",
    "self_attn.v",
    "self_attn.out",
    "cross_attn.q",
    "cross_attn.k",
    "cross_attn.v",
    "cross_attn.out",
    "mlp.fc1",
    "mlp.fc2",
)
BASE_DTYPES = ("auto", "bf16", "fp32")
_TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class LoRAConfig:
    """``[lora]`` of a DiT training preset; ``rank = 0`` trains the full model instead.

    alpha: the update is scaled by ``alpha / rank`` (0 = alpha equals the rank, scale 1). base_dtype: the
    frozen base weights' dtype; "auto" = bf16 when ``train.precision`` is bf16, else fp32 (the base must match
    the compute dtype outside autocast).
    """

    rank: int = 0
    alpha: float = 0.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    base_dtype: str = "auto"

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"lora.rank = {self.rank}; expected >= 0 (0 = no adapters)")
        if self.alpha < 0:
            raise ValueError(f"lora.alpha = {self.alpha}; expected >= 0 (0 = the rank)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout = {self.dropout}; expected in [0, 1)")
        if self.base_dtype not in BASE_DTYPES:
            raise ValueError(f"lora.base_dtype = {self.base_dtype!r}; expected one of {BASE_DTYPES}")
        bad = [t for t in self.targets if not _TARGET.match(t)]
        if bad or not self.targets:
            raise ValueError(f"lora.targets = {list(self.targets)}; expected module paths like 'self_attn.q'")

    @property
    def enabled(self) -> bool:
        return self.rank > 0

    @property
    def scale(self) -> float:
        return (self.alpha or self.rank) / self.rank

    def target_pattern(self) -> str:
        """A regex peft full-matches against module names: the targets inside every block."""
        names = "|".join(re.escape(t) for t in self.targets)
        return rf"blocks\.\d+\.(?:{names})"


def add_lora(model: DiT, cfg: LoRAConfig) -> DiT:
    """Freeze ``model`` and insert trainable fp32 adapters on ``cfg.targets`` (in place; returns ``model``)."""
    from peft import LoraConfig, inject_adapter_in_model

    if not cfg.enabled:
        raise ValueError("lora.rank is 0: no adapters to add")
    wanted = re.compile(cfg.target_pattern())
    found = [n for n, m in model.named_modules() if wanted.fullmatch(n) and isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"lora.targets {list(cfg.targets)} match no linear layer of the DiT")
    model.requires_grad_(False)
    peft_cfg = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha or cfg.rank,  # type: ignore[arg-type]  # peft divides; a float is fine
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_pattern(),
        bias="none",
    )
    inject_adapter_in_model(peft_cfg, model)
    for name, p in model.named_parameters():
        is_adapter = ".lora_A." in name or ".lora_B." in name
        p.requires_grad_(is_adapter)
        if is_adapter:
            p.data = p.data.float()  # adapters train in fp32 even on a bf16 base
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters of a model from :func:`add_lora`: ``<module>.lora_A.weight`` (r, in) and
    ``<module>.lora_B.weight`` (out, r), detached, on the CPU."""
    out = {}
    for name, p in model.named_parameters():
        match = re.fullmatch(r"(.+)\.(lora_[AB])\.[^.]+\.weight", name)
        if match:
            out[f"{match[1]}.{match[2]}.weight"] = p.detach().cpu()
    return out


def base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The base DiT's weights of a model from :func:`add_lora` (adapters left out, plain DiT names)."""
    out = {}
    for name, t in model.state_dict().items():
        if ".lora_A." in name or ".lora_B." in name or ".lora_dropout." in name:
            continue
        out[name.replace(".base_layer.", ".")] = t
    return out


@torch.no_grad()
def merge_weights(model: DiT, adapters: dict[str, torch.Tensor], scale: float) -> DiT:
    """Add ``scale * B @ A`` to each adapted linear of a plain DiT (computed in fp32; in place)."""
    modules = dict(model.named_modules())
    names = sorted({k.rsplit(".", 2)[0] for k in adapters})
    for name in names:
        linear = modules.get(name)
        a, b = adapters.get(f"{name}.lora_A.weight"), adapters.get(f"{name}.lora_B.weight")
        if not isinstance(linear, nn.Linear) or a is None or b is None:
            raise ValueError(f"adapter for {name!r}: the DiT has no such linear, or A/B is missing")
        if b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != tuple(linear.weight.shape):
            raise ValueError(
                f"adapter for {name!r}: A {tuple(a.shape)} and B {tuple(b.shape)} do not fit a weight of "
                f"shape {tuple(linear.weight.shape)}"
            )
        w = linear.weight
        delta = scale * (b.float().to(w.device) @ a.float().to(w.device))
        w.copy_((w.float() + delta).to(w.dtype))
    return model


def merged(model: DiT, cfg: LoRAConfig) -> DiT:
    """A plain DiT whose weights are the base plus the adapters of ``model`` (fp32 arithmetic)."""
    plain = DiT(model.config)
    plain.load_state_dict(base_state_dict(model), strict=True)
    return merge_weights(plain, adapter_state_dict(model), cfg.scale)


def save_adapter(model: DiT, cfg: LoRAConfig, out: str | Path, base: str = "") -> Path:
    """Write the adapter folder of a model from :func:`add_lora` (fp32 weights)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.float().contiguous() for k, v in adapter_state_dict(model).items()}
    save_file(state, str(out / ADAPTER_WEIGHTS))
    record = {
        "format": ADAPTER_FORMAT,
        "lora": asdict(cfg),
        "base": base,
        "base_config": model.config.to_dict(),
    }
    (out / ADAPTER_CONFIG).write_text(json.dumps(record, indent=2) + "\n")
    return out


def read_adapter(path: str | Path) -> tuple[LoRAConfig, DiTConfig, dict[str, torch.Tensor], str]:
    """(LoRA config, base DiT config, adapter tensors, base folder as recorded) of an adapter folder."""
    path = Path(path)
    cfg_file, weights = path / ADAPTER_CONFIG, path / ADAPTER_WEIGHTS
    if not cfg_file.is_file() or not weights.is_file():
        raise ValueError(f"{path} is not an adapter folder: expected {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}")
    record = json.loads(cfg_file.read_text())
    if record.get("format") != ADAPTER_FORMAT:
        raise ValueError(f"{cfg_file}: format {record.get('format')!r}; expected {ADAPTER_FORMAT!r}")
    lora = record["lora"]
    cfg = LoRAConfig(**{**lora, "targets": tuple(lora["targets"])})
    base_config = DiTConfig.from_dict(record["base_config"], str(cfg_file))
    return cfg, base_config, load_file(str(weights)), str(record.get("base", ""))


def check_base(adapter: str | Path, config: DiTConfig) -> None:
    """A clear error when the adapter at ``adapter`` was trained on a DiT of another shape."""
    _, base_config, _, base = read_adapter(adapter)
    if base_config != config:
        raise ValueError(
            f"adapter {adapter} was trained on a DiT with another config (base {base or 'unknown'}); "
            "use it with the DiT it was trained from"
        )


def merge_adapter(model: DiT, adapter: str | Path) -> DiT:
    """Fold the adapter folder ``adapter`` into the plain DiT ``model`` (in place; returns ``model``)."""
    check_base(adapter, model.config)
    cfg, _, state, _ = read_adapter(adapter)
    return merge_weights(model, state, cfg.scale)


def load_adapter(model: DiT, adapter: str | Path) -> DiT:
    """Put the adapter folder's live (unmerged, trainable) adapters onto the plain DiT ``model``."""
    check_base(adapter, model.config)
    cfg, _, state, _ = read_adapter(adapter)
    add_lora(model, cfg)
    own = {f"{k.rsplit('.', 1)[0]}.default.weight": v for k, v in state.items()}
    params = dict(model.named_parameters())
    expected = {n for n in params if ".lora_A." in n or ".lora_B." in n}
    if set(own) != expected:
        missing, extra = sorted(expected - set(own)), sorted(set(own) - expected)
        raise ValueError(f"adapter {adapter}: missing {missing[:3]}, unexpected {extra[:3]}")
    with torch.no_grad():
        for name, value in own.items():
            params[name].copy_(value)
    return model
