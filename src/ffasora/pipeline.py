"""FFASoraPipeline: report -> FFA video. The one place where text encoder, DiT, sampler and WF-VAE meet.

A pipeline folder::

    model_index.json     which folders hold which model, the text encoder, the diffusion recipe, defaults
    vae/                 WF-VAE folder (config.json + model.safetensors, or an official layout)
    dit/                 DiT folder (ours or the official Open-Sora Plan v1.3 layout)
    text_encoder/        optional: a local Hugging Face encoder folder (type "hf")

``__call__`` runs in named phases, as diffusers pipelines do: check inputs, encode report, prepare latents,
denoise, decode. Each is a method, so a caller (evaluation, the web demo) can reuse one on its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ffasora import __version__
from ffasora.diffusion import DiffusionConfig, classifier_free_guidance, get_sampler, sample
from ffasora.models.dit import DiT
from ffasora.models.text import HFTextEncoder, TextEncoder, default_text_encoder
from ffasora.models.vae import WFVAE

INDEX_NAME = "model_index.json"
VAE_SCALE = 8  # WF-VAE: 8x8 spatial, 4x temporal compression
VAE_TIME_SCALE = 4

PipelineProgress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; phases "denoise" (one call per sampler step) and "decode" (per tile)."""


@dataclass(frozen=True)
class TextEncoderSpec:
    """Which text encoder a pipeline uses: "default" (the bundled all-MiniLM-L6-v2) or "hf" (a local Hugging
    Face folder at ``path``, relative to the pipeline folder unless absolute)."""

    type: str = "default"
    path: str = ""
    max_tokens: int = 512

    def build(self, root: Path, preprocess: Callable[[str], str] | None = None) -> TextEncoder:
        if self.type == "default":
            return default_text_encoder(max_tokens=self.max_tokens, preprocess=preprocess)
        if self.type == "hf":
            folder = Path(self.path) if Path(self.path).is_absolute() else root / self.path
            return HFTextEncoder(folder, max_tokens=self.max_tokens, preprocess=preprocess)
        raise ValueError(f"{root / INDEX_NAME}: text_encoder.type must be 'default' or 'hf', got {self.type!r}")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything in ``model_index.json`` besides the model folders: recipe, text encoder, defaults."""

    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    num_frames: int = 21
    height: int = 512
    width: int = 512
    negative_report: str = ""
    report_prefix: str = ""  # prepended to every report (upstream: "high quality, high aesthetic, ")
    fps: float = 8.0  # for writers of the output; the models do not see it
    decode_chunk: int | None = None  # latent frames per causal-cache chunk; None = whole clip
    decode_tile: int | None = None  # spatial tile in latent pixels; None = no tiling
    decode_tile_overlap: int = 4

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> PipelineConfig:
        values = dict(data)
        try:
            values["diffusion"] = DiffusionConfig(**values.get("diffusion", {}))
            values["text_encoder"] = TextEncoderSpec(**values.get("text_encoder", {}))
            return cls(**values)
        except TypeError as err:  # unknown or missing keys
            raise ValueError(f"{source}: {err}") from err


@dataclass
class GeneratedVideo:
    """A generated video: ``frames`` (T, H, W) uint8 grey, and its provenance ``metadata``."""

    frames: np.ndarray
    metadata: dict[str, Any]


def state_hash(model: nn.Module) -> str:
    """sha256 over a model's state dict (names, dtypes, shapes, bytes): the same weights give the same hash
    whatever file layout they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class FFASoraPipeline:
    """Report-to-video generation with a WF-VAE, a text-conditioned DiT and a diffusion sampler.

    Args:
        vae, dit, text_encoder: the three models; ``dit.config.in_channels`` must equal the VAE's latent width
            and ``dit.config.text_dim`` the encoder's width.
        config: recipe and defaults (:class:`PipelineConfig`).
    """

    def __init__(self, vae: WFVAE, dit: DiT, text_encoder: TextEncoder, config: PipelineConfig | None = None):
        if dit.config.in_channels != vae.config.latent_dim or dit.config.out_channels != vae.config.latent_dim:
            raise ValueError(
                f"DiT channels in/out {dit.config.in_channels}/{dit.config.out_channels} do not match the VAE's "
                f"latent_dim {vae.config.latent_dim}"
            )
        if dit.config.text_dim != text_encoder.dim:
            raise ValueError(f"DiT text_dim {dit.config.text_dim} != text encoder width {text_encoder.dim}")
        self.vae, self.dit, self.text_encoder = vae.eval(), dit.eval(), text_encoder
        self.config = config or PipelineConfig()
        self._hashes: dict[str, str] | None = None

    # ----- folders ---------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        text_encoder: TextEncoder | None = None,
        preprocess: Callable[[str], str] | None = None,
    ) -> FFASoraPipeline:
        """Load a pipeline folder. ``dtype`` applies to the DiT (e.g. bf16 on a GPU); the VAE stays float32.
        ``text_encoder`` overrides the one named in ``model_index.json``; ``preprocess`` is handed to it (e.g.
        Chinese -> canonical English for an English-only encoder)."""
        root = Path(path)
        index_file = root / INDEX_NAME
        if not index_file.is_file():
            raise ValueError(f"{root}: no {INDEX_NAME}; expected a pipeline folder (model_index.json, vae/, dit/)")
        index = json.loads(index_file.read_text())
        folders = {name: index.pop(name, name) for name in ("vae", "dit")}
        index = {k: v for k, v in index.items() if not k.startswith("_") and k != "ffasora_version"}
        config = PipelineConfig.from_dict(index, str(index_file))
        vae = WFVAE.from_pretrained(root / folders["vae"]).to(device)
        dit = DiT.from_pretrained(root / folders["dit"], dtype=dtype).to(device)
        encoder = text_encoder or config.text_encoder.build(root, preprocess)
        return cls(vae, dit, encoder, config)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``model_index.json``, ``vae/`` and ``dit/``. A text encoder of type "hf" with a relative path
        is not copied: put its folder there yourself (or use an absolute path)."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        self.vae.save_pretrained(root / "vae")
        self.dit.save_pretrained(root / "dit")
        index = {"_class_name": type(self).__name__, "ffasora_version": __version__, "vae": "vae", "dit": "dit"}
        (root / INDEX_NAME).write_text(json.dumps(index | self.config.to_dict(), indent=2) + "\n")
        return root

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> FFASoraPipeline:
        """Move the VAE and DiT to ``device``; ``dtype`` casts the DiT only."""
        self.vae.to(device)
        self.dit.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    @property
    def model_hashes(self) -> dict[str, str]:
        """sha256 of the VAE and DiT weights (computed once), and the text encoder's name."""
        if self._hashes is None:
            self._hashes = {"vae": state_hash(self.vae), "dit": state_hash(self.dit)}
        encoder = getattr(self.text_encoder, "name", type(self.text_encoder).__name__)
        return self._hashes | {"text_encoder": str(encoder)}

    # ----- phases ----------------------------------------------------------------------------------------
    def check_inputs(self, report: str, num_frames: int, height: int, width: int, steps: int, guidance: float) -> None:
        """Raise ``ValueError`` naming the value for anything the models cannot generate."""
        if not isinstance(report, str) or not report.strip():
            raise ValueError(f"report must be a non-empty string, got {report!r}")
        if not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % VAE_TIME_SCALE:
            below = 1 + VAE_TIME_SCALE * ((max(num_frames, 1) - 1) // VAE_TIME_SCALE)
            raise ValueError(
                f"num_frames={num_frames}: the WF-VAE makes 1 + 4k frames (e.g. {below} or {below + 4}; FFA Sora: 21)"
            )
        multiple = VAE_SCALE * self.dit.config.patch_size
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or value < multiple or value % multiple:
                raise ValueError(
                    f"{name}={value}: must be a positive multiple of {multiple} "
                    f"(VAE {VAE_SCALE}x times DiT patch {self.dit.config.patch_size})"
                )
        if steps < 1:
            raise ValueError(f"steps={steps}: expected >= 1")
        if guidance < 0:
            raise ValueError(f"guidance={guidance}: expected >= 0 (1 = no guidance)")

    @torch.no_grad()
    def encode_report(self, report: str, negative_report: str) -> tuple[Any, Any]:
        """Token states and masks ``((1, L, D), (1, L))`` for the report and the negative report."""
        states, mask = self.text_encoder.encode([self.config.report_prefix + report, negative_report])
        states, mask = states.to(self.device), mask.to(self.device)
        return (states[:1], mask[:1]), (states[1:], mask[1:])

    def prepare_latents(self, num_frames: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
        """Standard-normal latents ``(1, c, 1 + (T - 1) / 4, H / 8, W / 8)`` in float32 from ``generator``."""
        shape = (
            1,
            self.vae.config.latent_dim,
            1 + (num_frames - 1) // VAE_TIME_SCALE,
            height // VAE_SCALE,
            width // VAE_SCALE,
        )
        return torch.randn(shape, generator=generator, device=self.device, dtype=torch.float32)

    @torch.no_grad()
    def denoise(
        self,
        noise: torch.Tensor,
        cond: Any,
        uncond: Any,
        *,
        steps: int,
        guidance: float,
        sampler: str,
        generator: torch.Generator,
        progress: PipelineProgress | None = None,
    ) -> torch.Tensor:
        """Run the sampler with classifier-free guidance; returns DiT-space latents like ``noise``."""
        dtype = next(self.dit.parameters()).dtype

        def network(x: torch.Tensor, t: torch.Tensor, text: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            return self.dit(x.to(dtype), t, text[0].to(dtype), text[1]).float()

        guided = classifier_free_guidance(network, cond, uncond, guidance)
        _, _, t, h, w = noise.shape
        tokens = t * (h // self.dit.config.patch_size) * (w // self.dit.config.patch_size)
        step_progress = None if progress is None else (lambda done, total: progress("denoise", done, total))
        return sample(
            self.config.diffusion,
            guided,
            noise,
            num_tokens=tokens,
            steps=steps,
            sampler=sampler,
            generator=generator,
            progress=step_progress,
        )

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, progress: PipelineProgress | None = None) -> np.ndarray:
        """DiT latents -> grey frames ``(T, H, W)`` uint8, chunked/tiled as the config says."""
        c = self.config
        z = self.vae.denormalize_latents(latents.float())
        video = self.vae.decode(
            z,
            chunk=c.decode_chunk,
            tile=c.decode_tile,
            tile_overlap=c.decode_tile_overlap,
            channels=1,
            progress=None if progress is None else (lambda done, total: progress("decode", done, total)),
        )  # (1, 1, T, H, W) in [-1, 1]
        grey = ((video[0, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return grey.cpu().numpy()

    # ----- all phases ------------------------------------------------------------------------------------
    def __call__(
        self,
        report: str,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        negative_report: str | None = None,
        seed: int = 0,
        sampler: str | None = None,
        progress: PipelineProgress | None = None,
    ) -> GeneratedVideo:
        """Generate one FFA video for ``report``. Unset arguments take the pipeline's defaults (config).

        The same seed, arguments, models and device give the same video: all randomness (initial noise and
        the ancestral noise of stochastic samplers) comes from one generator seeded with ``seed``.
        """
        c, d = self.config, self.config.diffusion
        num_frames = c.num_frames if num_frames is None else num_frames
        height = c.height if height is None else height
        width = c.width if width is None else width
        steps = d.steps if steps is None else steps
        guidance = d.guidance if guidance is None else guidance
        negative_report = c.negative_report if negative_report is None else negative_report
        sampler = sampler or d.sampler
        self.check_inputs(report, num_frames, height, width, steps, guidance)
        spec = get_sampler(sampler, d.family)  # raises for a sampler of the other family
        started = time.perf_counter()

        cond, uncond = self.encode_report(report, negative_report)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        noise = self.prepare_latents(num_frames, height, width, generator)
        latents = self.denoise(
            noise, cond, uncond, steps=steps, guidance=guidance, sampler=sampler, generator=generator, progress=progress
        )
        frames = self.decode(latents, progress)

        metadata = {
            "synthetic": True,
            "report": report,
            "negative_report": negative_report,
            "seed": seed,
            "sampler": sampler,
            "steps": steps,
            "guidance": guidance,
            "objective": d.objective,
            "network_evaluations": spec.evaluations(steps),
            "num_frames": num_frames,
            "height": height,
            "width": width,
            "fps": c.fps,
            "model_hashes": self.model_hashes,
            "ffasora_version": __version__,
            "seconds": round(time.perf_counter() - started, 3),
        }
        return GeneratedVideo(frames=frames, metadata=metadata)
