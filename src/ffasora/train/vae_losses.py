"""WF-VAE training objective (arXiv 2411.17459, Sec. 3.4 and Table 7; taming/LDM "LPIPSWithDiscriminator").

Generator loss = L1 reconstruction (+ LPIPS when a local trunk is given) + ``kl_weight`` * KL
+ ``wavelet_weight`` * WL + adaptive_weight * ``disc_weight`` * (-D(x̂)) once ``step >= disc_start``.
The WL (wavelet) loss is the L1 between the encoder's true energy-flow coefficients (W2, W3) and the decoder's
predictions (Ŵ2, Ŵ3); weight 0.1 was best in the paper's ablation. Reductions follow the reference recipe:
pixel terms summed per frame and averaged over B*T frames, KL and WL summed per clip and averaged over B.
The discriminator uses the hinge loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# LPIPS input normalisation (Zhang et al. 2018, "ScalingLayer").
_LPIPS_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_LPIPS_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
_TRUNKS = {
    # name: (torchvision `features` layout, indices of the ReLUs whose outputs are compared)
    "alex": (
        [("conv", 3, 64, 11, 4, 2), ("relu",), ("pool",), ("conv", 64, 192, 5, 1, 2), ("relu",), ("pool",),
         ("conv", 192, 384, 3, 1, 1), ("relu",), ("conv", 384, 256, 3, 1, 1), ("relu",),
         ("conv", 256, 256, 3, 1, 1), ("relu",)],
        (1, 4, 7, 9, 11),
    ),
}  # fmt: skip


def _vgg_layers() -> list[tuple]:
    layers: list[tuple] = []
    for i, block in enumerate(
        ((3, 64, 64), (64, 128, 128), (128, 256, 256, 256), (256, 512, 512, 512), (512, 512, 512, 512))
    ):
        if i:
            layers.append(("pool",))
        for c_in, c_out in zip(block[:-1], block[1:], strict=True):
            layers += [("conv", c_in, c_out, 3, 1, 1), ("relu",)]
    return layers


_TRUNKS["vgg"] = (_vgg_layers(), (3, 8, 15, 22, 29))


class LPIPS(nn.Module):
    """Learned perceptual distance with a user-supplied AlexNet/VGG-16 trunk; nothing is downloaded.

    ``trunk_path``: a state dict of torchvision's ``alexnet``/``vgg16`` (keys ``features.N.weight`` or
    ``N.weight``). ``lin_path``: the LPIPS linear calibration file (keys ``lin{k}.model.1.weight``); without
    it every layer's channels are weighted equally (an uncalibrated LPIPS; say so when reporting numbers).
    Frames: (N, 3, H, W) in [-1, 1] -> distance (N,).
    """

    def __init__(self, trunk_path: str | Path, net: str = "alex", lin_path: str | Path | None = None) -> None:
        super().__init__()
        if net not in _TRUNKS:
            raise ValueError(f"LPIPS net {net!r}: expected one of {sorted(_TRUNKS)}")
        spec, self.taps = _TRUNKS[net]
        layers: list[nn.Module] = []
        channels: list[int] = []  # output channels of each tapped ReLU
        for kind, *args in spec:
            if kind == "conv":
                c_in, c_out, k, s, p = (int(a) for a in args)
                layers.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=p))
                if len(layers) in self.taps:  # the ReLU that follows this conv is tapped
                    channels.append(c_out)
            elif kind == "relu":
                layers.append(nn.ReLU())
            else:
                layers.append(nn.MaxPool2d(3 if net == "alex" else 2, 2))
        self.features = nn.Sequential(*layers[: max(self.taps) + 1])
        state = torch.load(str(trunk_path), map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier")}
        missing = set(self.features.state_dict()) - set(state)
        if missing:
            raise ValueError(f"{trunk_path}: not a torchvision {net} trunk; missing {sorted(missing)}")
        self.features.load_state_dict({k: state[k] for k in self.features.state_dict()})
        weights = [torch.full((c,), 1.0 / c) for c in channels]
        if lin_path is not None:
            lin = torch.load(str(lin_path), map_location="cpu", weights_only=True)
            weights = [lin[f"lin{k}.model.1.weight"].flatten() for k in range(len(channels))]
        for k, w in enumerate(weights):
            self.register_buffer(f"lin{k}", w.view(1, -1, 1, 1))
        self.requires_grad_(False).eval()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        shift, scale = _LPIPS_SHIFT.to(a), _LPIPS_SCALE.to(a)
        x, y = (a - shift) / scale, (b - shift) / scale
        total = a.new_zeros(a.shape[0])
        k = 0
        for i, layer in enumerate(self.features):
            x, y = layer(x), layer(y)
            if i in self.taps:
                fx = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                fy = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + ((fx - fy).pow(2) * getattr(self, f"lin{k}")).sum(1).mean(dim=(1, 2))
                k += 1
        return total


def frames_of(video: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, 3, H, W), grey repeated to RGB (LPIPS trunks take RGB)."""
    b, c, t, h, w = video.shape
    frames = video.transpose(1, 2).reshape(b * t, c, h, w)
    return frames.expand(-1, 3, -1, -1) if c == 1 else frames


@dataclass(frozen=True)
class VAELossWeights:
    kl: float = 1e-6
    wavelet: float = 0.1
    perceptual: float = 1.0
    disc: float = 0.5
    disc_start: int = 0


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def adaptive_weight(rec: torch.Tensor, gan: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """Taming's balance: ||grad_last rec|| / (||grad_last gan|| + 1e-6), clamped to [0, 1e6] (WF-VAE), detached."""
    g_rec = torch.autograd.grad(rec, last_layer, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan, last_layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_gan.norm() + 1e-6)).clamp(0.0, 1e6).detach()


def generator_loss(
    x: torch.Tensor,
    recon: torch.Tensor,
    kl: torch.Tensor,
    coeffs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    weights: VAELossWeights,
    step: int,
    discriminator: nn.Module | None = None,
    last_layer: torch.Tensor | None = None,
    lpips: LPIPS | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total generator loss and its parts. x, recon: (B, C, T, H, W); kl: (B,); coeffs (W2, Ŵ2, W3, Ŵ3)."""
    b, _, t = x.shape[:3]
    rec = (recon - x).abs().sum() / (b * t)
    logs = {"l1": (recon - x).abs().mean().item()}
    if lpips is not None and weights.perceptual > 0:
        p = lpips(frames_of(recon), frames_of(x))
        rec = rec + weights.perceptual * p.sum() / (b * t)
        logs["lpips"] = p.mean().item()
    w2, w2_hat, w3, w3_hat = coeffs
    wl = ((w2_hat - w2).abs().sum() + (w3_hat - w3).abs().sum()) / b
    kl_term = kl.sum() / b
    total = rec + weights.kl * kl_term + weights.wavelet * wl
    logs |= {"rec": rec.item(), "kl": kl_term.item(), "wavelet": wl.item()}
    if discriminator is not None and step >= weights.disc_start and weights.disc > 0:
        gan = -discriminator(recon).mean()
        scale = adaptive_weight(rec, gan, last_layer) if last_layer is not None else torch.tensor(1.0)
        total = total + weights.disc * scale * gan
        logs |= {"g_gan": gan.item(), "d_weight": float(scale)}
    logs["loss"] = total.item()
    return total, logs


def discriminator_loss(discriminator: nn.Module, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Hinge loss on real clips vs detached reconstructions."""
    return hinge_d_loss(discriminator(x), discriminator(recon.detach()))
