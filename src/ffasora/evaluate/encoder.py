"""The in-domain video encoder: one small 3D CNN, trained on the reference training split, that serves as

- the feature extractor of FVD-FFA (pooled trunk features, Fréchet distance as in FVD),
- the privacy embedding (cosine similarity for Recall@K and nearest-neighbour audits), and
- the findings classifier (multi-label finding codes + the onset phase of each code; see ``classifier.py``).

Kinetics-400 I3D features say little about fluorescein dynamics (reference §2.4), and no pretrained retina
video model is available offline, so the encoder is trained here. Two objectives share the trunk: supervised
multi-label finding codes (what a report states, so features separate what matters clinically) and a SimCLR
NT-Xent term between two acquisition-style augmentations of the same video (Chen et al. 2020; Dar et al.
arXiv 2307.01148 use such an in-domain contrastive encoder for memorisation audits), which makes the embedding
recognise the same eye under gain, gamma, noise and small shifts: exactly what a privacy audit needs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ffasora.findings.ontology import FINDING_CODES, PHASES

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EncoderConfig:
    """Input clips are (1, frames, size, size) in [-1, 1]; ``width`` is the first stage's channel count."""

    frames: int = 21
    size: int = 64
    width: int = 16
    stages: int = 3
    codes: tuple[str, ...] = tuple(FINDING_CODES)
    phases: tuple[str, ...] = PHASES

    @property
    def feature_dim(self) -> int:
        return self.width * 2 ** (self.stages - 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        data = dict(data)
        data.pop("model_type", None)
        data["codes"] = tuple(data.get("codes", cls.codes))
        data["phases"] = tuple(data.get("phases", cls.phases))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": "ffasora-video-encoder", **dataclasses.asdict(self)}


def _block(c_in: int, c_out: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(min(8, c_out), c_out),
        nn.SiLU(),
        nn.Conv3d(c_out, c_out, (3, 1, 1), padding=(1, 0, 0), bias=False),  # cheap extra temporal mixing
        nn.GroupNorm(min(8, c_out), c_out),
        nn.SiLU(),
    )


class VideoEncoder(nn.Module):
    """3D CNN trunk -> pooled features (B, F); heads for finding codes (B, K) and onset phases (B, K, P)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        layers = [_block(1, w, (1, 2, 2))]
        for i in range(1, config.stages):
            layers.append(_block(w * 2 ** (i - 1), w * 2**i, (2, 2, 2)))
        self.trunk = nn.Sequential(*layers)
        dim = config.feature_dim
        self.projection = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.findings_head = nn.Linear(dim, len(config.codes))
        self.onset_head = nn.Linear(dim, len(config.codes) * len(config.phases))

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, H, W) in [-1, 1] -> (B, F) mean- and max-pooled trunk activations (summed)."""
        h = self.trunk(video)  # (B, F, t, h, w)
        return h.mean(dim=(2, 3, 4)) + h.amax(dim=(2, 3, 4))

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.features(video)
        k, p = len(self.config.codes), len(self.config.phases)
        return {
            "features": feats,  # (B, F)
            "projection": self.projection(feats),  # (B, F), for the contrastive loss only
            "findings": self.findings_head(feats),  # (B, K) logits
            "onset": self.onset_head(feats).view(-1, k, p),  # (B, K, P) logits
        }


# ------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    contrastive_weight: float = 0.5
    temperature: float = 0.2
    seed: int = 0


def augment(video: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Acquisition-style changes that keep the eye and its findings: gain, gamma, noise, shift (B, 1, T, H, W).

    No flips or large rotations: a mirrored fundus is the other eye, and lesion position carries meaning.
    """
    b = video.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * torch.rand(b, 1, 1, 1, 1, generator=generator)).to(video)

    x = (video + 1) / 2
    x = (x.clamp(0, 1) ** uniform(0.75, 1.33)) * uniform(0.8, 1.2) + uniform(-0.05, 0.05)
    x = x + 0.03 * torch.randn(x.shape, generator=generator).to(video)
    shift = max(1, video.shape[-1] // 16)
    dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=generator))
    x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    return (x * 2 - 1).clamp(-1, 1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross entropy over 2B views (B, D) each."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


def labels_for(
    config: EncoderConfig, codes: Sequence[Sequence[str]], onsets: Sequence[dict[str, str]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-hot codes (N, K) and onset-phase targets (N, K) (-100 where unknown / code absent)."""
    index = {c: i for i, c in enumerate(config.codes)}
    phase_index = {p: i for i, p in enumerate(config.phases)}
    y = torch.zeros(len(codes), len(config.codes))
    onset = torch.full((len(codes), len(config.codes)), -100, dtype=torch.long)
    for n, (present, phases) in enumerate(zip(codes, onsets, strict=True)):
        for code in present:
            if code in index:
                y[n, index[code]] = 1.0
        for code, phase in phases.items():
            if code in index and phase in phase_index:
                onset[n, index[code]] = phase_index[phase]
    return y, onset


def train_encoder(
    clips: torch.Tensor,
    codes: Sequence[Sequence[str]],
    onsets: Sequence[dict[str, str]],
    config: EncoderConfig,
    train: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
) -> tuple[VideoEncoder, list[float]]:
    """Train on (N, 1, T, S, S) clips with their finding codes and per-code onset phases; returns the model and
    the mean loss of each epoch."""
    if clips.ndim != 5 or clips.shape[1:] != (1, config.frames, config.size, config.size):
        raise ValueError(
            f"clips must be (N, 1, {config.frames}, {config.size}, {config.size}), got {clips.shape}"
        )
    torch.manual_seed(train.seed)
    generator = torch.Generator().manual_seed(train.seed)
    model = VideoEncoder(config)
    y, onset = labels_for(config, codes, onsets)
    # rare codes get a larger positive weight (capped), else the head learns to say "absent" everywhere
    pos = y.sum(0)
    pos_weight = ((len(y) - pos) / pos.clamp(min=1)).clamp(1.0, 10.0)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    steps_per_epoch = max(1, -(-len(clips) // train.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, train.lr, total_steps=train.epochs * steps_per_epoch)
    losses = []
    model.train()
    for epoch in range(train.epochs):
        order = torch.randperm(len(clips), generator=generator)
        total = 0.0
        for start in range(0, len(clips), train.batch_size):
            idx = order[start : start + train.batch_size]
            if len(idx) < 2:
                continue
            v1, v2 = augment(clips[idx], generator), augment(clips[idx], generator)
            out1, out2 = model(v1), model(v2)
            loss = F.binary_cross_entropy_with_logits(out1["findings"], y[idx], pos_weight=pos_weight)
            if (onset[idx] >= 0).any():
                loss = loss + F.cross_entropy(
                    out1["onset"].flatten(0, 1), onset[idx].flatten(), ignore_index=-100
                )
            loss = loss + train.contrastive_weight * nt_xent(
                out1["projection"], out2["projection"], train.temperature
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(clips))
        if progress:
            progress(epoch + 1, train.epochs)
    return model.eval(), losses


@torch.no_grad()
def calibrate_findings(model: VideoEncoder, thresholds: Sequence[float] | np.ndarray) -> None:
    """Move per-code decision thresholds (K,) into the findings head, in place.

    Subtracting logit(t_k) from code k's bias makes sigmoid(logit) >= 0.5 exactly where the old head gave
    probability >= t_k, so every consumer of the folder (``ffasora evaluate`` decides at 0.5) uses the
    thresholds chosen on held-out real videos (``classifier.choose_thresholds``) without knowing about them.
    """
    t = torch.tensor(np.array(thresholds, dtype=np.float64))
    if t.shape != (len(model.config.codes),) or not bool(((t > 0) & (t < 1)).all()):
        raise ValueError(f"thresholds must be {len(model.config.codes)} values in (0, 1), got {t.tolist()}")
    bias = model.findings_head.bias
    bias.sub_(torch.logit(t).to(bias))


@torch.no_grad()
def run_encoder(model: VideoEncoder, clips: torch.Tensor, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Features (N, F), unit contrastive embeddings (N, F) (the privacy embedding), finding probabilities (N, K) and onset-phase probabilities (N, K, P) as float64."""
    model.eval()
    outs: dict[str, list[torch.Tensor]] = {"features": [], "embedding": [], "findings": [], "onset": []}
    for start in range(0, len(clips), batch_size):
        out = model(clips[start : start + batch_size])
        outs["features"].append(out["features"])
        outs["embedding"].append(F.normalize(out["projection"], dim=1))
        outs["findings"].append(torch.sigmoid(out["findings"]))
        outs["onset"].append(torch.softmax(out["onset"], dim=-1))
    return {k: torch.cat(v).double().numpy() for k, v in outs.items()}


# ------------------------------------------------------------------------------------------ model folder


def save_encoder(model: VideoEncoder, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """A model folder (config.json + model.safetensors); ``extra`` (training provenance) goes in the config."""
    from ffasora.models.pretrained import save_model_folder

    return save_model_folder(model, {**model.config.to_dict(), **(extra or {})}, path)


def load_encoder(path: str | Path) -> tuple[VideoEncoder, dict[str, Any]]:
    """The encoder of a model folder and its config dict (with the training provenance)."""
    from ffasora.models.pretrained import build_and_load, read_config, read_state_dict

    raw = read_config(path)
    if raw.get("model_type") != "ffasora-video-encoder":
        raise ValueError(f"{path}: model_type {raw.get('model_type')!r}, expected 'ffasora-video-encoder'")
    known = {f.name for f in dataclasses.fields(EncoderConfig)}
    config = EncoderConfig.from_dict({k: v for k, v in raw.items() if k in known})
    model = build_and_load(lambda: VideoEncoder(config), read_state_dict(path), source=str(path))
    return model, raw


def weights_hash(model: nn.Module) -> str:
    """sha256 of the state dict's bytes (names, shapes and values), first 16 hex digits."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
