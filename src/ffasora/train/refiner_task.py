"""``ffasora train refiner``: the photograph-guided refiner (:mod:`ffasora.models.refiner`) on round trips.

Two stages, as for distillation. :func:`write_round_trips` (``ffasora refiner round-trips``) passes every true
video of a paired dataset through the pipeline's VAE once and keeps, per eye, the decoded video (what the
refiner will be given), the true video (what it should return) and the photograph. :class:`RefinerTask` then
trains on that folder with the shared engine (checkpoints, exact resume, EMA, DDP).

With ``data.generated_share > 0`` and a folder written with ``--generator``, that share of clips gives the
refiner the generator's own video of the eye instead of the round trip: the refiner then also learns what
the generator gets wrong that the photograph shows (vessels in the wrong place, non-perfusion not drawn),
not only what the decoder blurs.

Each step takes a batch of clips, cuts one random square crop per clip (the same place in every frame and in
the photograph), mirrors it left-right half of the time (a mirrored eye is a fellow eye), adds a little noise
to the decoded frames (generated videos are not exact round trips), and scores ``frames_per_clip`` random
frames of each clip: the L1 distance of the refined frame to the true one. All randomness comes from torch's
global generator, which the engine seeds and restores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ffasora.io.pixels import to_uint8, to_unit
from ffasora.models.refiner import PhotoRefiner, RefinerConfig
from ffasora.train.config import TrainConfig
from ffasora.train.tasks import StepLosses, Task

if TYPE_CHECKING:
    from ffasora.pipeline import FFASoraPipeline

ROUND_TRIPS_JSON = "round_trips.json"


@dataclass(frozen=True)
class RefinerDataConfig:
    round_trips: str = ""  # folder written by `ffasora refiner round-trips`
    crop: int = 48  # square crop per clip and step (the refiner is convolutional; it refines any size)
    frames_per_clip: int = 4  # frames of each clip scored per step
    input_noise: float = 0.03  # max std of the Gaussian noise on the decoded frames (pixels in [-1, 1])
    # share of clips whose input is the generator's own video of the eye instead of the round trip (where the
    # folder has one: `refiner round-trips --generator`); the target is always the true video
    generated_share: float = 0.0

    def __post_init__(self) -> None:
        if self.crop < 8 or self.frames_per_clip < 1 or self.input_noise < 0:
            raise ValueError(
                f"data.crop = {self.crop}, data.frames_per_clip = {self.frames_per_clip}, data.input_noise "
                f"= {self.input_noise}: expected crop >= 8, frames_per_clip >= 1, input_noise >= 0"
            )
        if not 0.0 <= self.generated_share <= 1.0:
            raise ValueError(f"data.generated_share = {self.generated_share}; expected in [0, 1]")


@dataclass(frozen=True)
class RefinerTaskConfig:
    """``[model]`` (RefinerConfig), ``[data]`` and ``[train]``; ``init``: an optional refiner folder to
    continue from."""

    model: RefinerConfig = field(default_factory=RefinerConfig)
    data: RefinerDataConfig = field(default_factory=RefinerDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: str = ""


def write_round_trips(
    dataset: str | Path,
    vae: Any,
    out: str | Path,
    *,
    splits: tuple[str, ...] = ("train",),
    generator: FFASoraPipeline | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Each paired video of ``splits`` through ``vae`` (posterior mean) and back, kept as ``<id>.npz`` with
    ``decoded``, ``frames`` (T, H, W) and ``photo`` (H, W, 3), all uint8. With a ``generator`` (an
    image-conditioned pipeline decoding with the same VAE) also ``generated``: its unrefined video of the eye
    from the photograph and report, seed = the record's row in the manifest. Existing files are kept (one
    without ``generated`` gains it), so an interrupted run resumes; ``round_trips.json`` (ids, splits, the
    VAE's weights hash, the generator's) is written last."""
    from ffasora.data.format import atomic_write_bytes, load_image, load_video, npz_bytes, read_manifest
    from ffasora.models.pretrained import weights_sha256

    if generator is not None and weights_sha256(generator.vae) != weights_sha256(vae):
        raise ValueError("the generator decodes with another VAE than the round trips; give it the same one")
    if generator is not None and not generator.dit.config.image_channels:
        raise ValueError(
            "the generator's DiT takes no photograph; give an image-conditioned model or variant"
        )
    manifest = read_manifest(dataset)
    rows = {r.id: i for i, r in enumerate(manifest)}
    records = [r for r in manifest if r.split in splits and r.image is not None]
    if not records:
        raise ValueError(f"{dataset}: no videos of split {'/'.join(splits)} with a paired photograph")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    for k, record in enumerate(records):
        path = root / f"{record.id}.npz"
        arrays = _stored_arrays(path)
        if not arrays or (generator is not None and "generated" not in arrays):
            if not arrays:
                frames = load_video(dataset, record.id)
                arrays = {
                    "decoded": to_uint8(vae.reconstruct(to_unit(frames)[None, None])[0, 0]),
                    "frames": frames,
                    "photo": load_image(dataset, record.id),
                }
            if generator is not None:
                t, h, w = arrays["frames"].shape
                video = generator(
                    record.report, t, h, w, seed=rows[record.id], image=arrays["photo"], refine=False
                )
                arrays["generated"] = video.frames
            atomic_write_bytes(path, npz_bytes(arrays))
        if progress is not None:
            progress(k + 1, len(records))
    info = {
        "dataset": Path(dataset).name,
        "ids": [r.id for r in records],
        "splits": {r.id: r.split for r in records},
        "vae_sha256": weights_sha256(vae),
        **({"generator": generator.model_hashes} if generator is not None else {}),
    }
    (root / ROUND_TRIPS_JSON).write_text(json.dumps(info, indent=2) + "\n")
    return root


def _stored_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an existing round-trip file; ``{}`` when there is none yet."""
    if not path.is_file():
        return {}
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


class RoundTripDataset(Dataset[dict[str, torch.Tensor]]):
    """A round-trip folder. Items: ``decoded``/``frames``/``generated`` (T, H, W) and ``photo`` (3, H, W), in
    [-1, 1], and ``has_generated`` (a bool tensor; without it ``generated`` repeats ``decoded``).
    ``with_generated=False`` leaves stored generated videos unread (a run with ``generated_share = 0``)."""

    def __init__(self, root: str | Path, split: str = "train", with_generated: bool = True) -> None:
        self.root, self.with_generated = Path(root), with_generated
        meta = self.root / ROUND_TRIPS_JSON
        if not meta.is_file():
            raise ValueError(
                f"{self.root}: no {ROUND_TRIPS_JSON}; write it with `ffasora refiner round-trips`"
            )
        self.info = json.loads(meta.read_text())
        self.ids = [i for i in self.info["ids"] if self.info["splits"][i] == split]
        if not self.ids:
            raise ValueError(f"{self.root}: no round trips of split {split!r}")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        with np.load(self.root / f"{self.ids[index]}.npz") as z:
            decoded = to_unit(z["decoded"])
            has_generated = self.with_generated and "generated" in z.files
            return {
                "decoded": decoded,
                "frames": to_unit(z["frames"]),
                "photo": to_unit(z["photo"]).permute(2, 0, 1),
                "generated": to_unit(z["generated"]) if has_generated else decoded,
                "has_generated": torch.tensor(has_generated),
            }


class RefinerTask(Task):
    """The refiner on a round-trip folder; the published model is a refiner folder."""

    config_cls = RefinerTaskConfig

    def __init__(self) -> None:
        self.cfg: RefinerTaskConfig | None = None

    def build_models(self, cfg: RefinerTaskConfig) -> dict[str, nn.Module]:
        self.cfg = cfg
        if cfg.init:
            model = PhotoRefiner.from_pretrained(cfg.init, dtype=torch.float32)
            if model.config != cfg.model:
                raise ValueError(f"init {cfg.init} is a refiner of {model.config}; [model] says {cfg.model}")
            return {"model": model}
        return {"model": PhotoRefiner(cfg.model)}

    def build_dataset(self, cfg: RefinerTaskConfig, split: str) -> Dataset[Any]:
        if not cfg.data.round_trips:
            raise ValueError(
                "data.round_trips is empty; pass the folder written by `ffasora refiner round-trips`"
            )
        dataset = RoundTripDataset(cfg.data.round_trips, split, with_generated=cfg.data.generated_share > 0)
        size = dataset[0]["frames"].shape[-1]
        if cfg.data.crop > size or cfg.data.crop % cfg.model.size_multiple:
            raise ValueError(
                f"data.crop = {cfg.data.crop}: must be at most the videos' {size} px and a multiple of "
                f"{cfg.model.size_multiple}"
            )
        return dataset

    def training_step(self, models: dict[str, nn.Module], batch: dict[str, Any], step: int) -> StepLosses:
        if self.cfg is None:
            raise ValueError("RefinerTask.training_step called before build_models")
        data = self.cfg.data
        model = models["model"]
        decoded, frames, photo = batch["decoded"], batch["frames"], batch["photo"]
        b, t, h, w = frames.shape
        use = (torch.rand(b, device=frames.device) < data.generated_share) & batch["has_generated"]
        decoded = torch.where(use.view(-1, 1, 1, 1), batch["generated"], decoded)
        top = int(torch.randint(0, h - data.crop + 1, ()))
        left = int(torch.randint(0, w - data.crop + 1, ()))

        def cut(x: torch.Tensor) -> torch.Tensor:
            return x[..., top : top + data.crop, left : left + data.crop]

        decoded, frames, photo = cut(decoded), cut(frames), cut(photo)
        mirror = torch.rand(b, device=frames.device) < 0.5
        decoded, frames, photo = (
            torch.where(mirror.view(-1, 1, 1, 1), x.flip(-1), x) for x in (decoded, frames, photo)
        )
        noise = data.input_noise * torch.rand(b, 1, 1, 1, device=frames.device)
        decoded = decoded + noise * torch.randn_like(decoded)
        picks = torch.randperm(t, device=frames.device)[: data.frames_per_clip]  # the same for every clip
        refined = model(decoded, photo, picks)  # (B, F, crop, crop)
        loss = F.l1_loss(refined, frames[:, picks])
        return {"model": loss}

    def tokens_per_sample(self, cfg: RefinerTaskConfig) -> int | None:
        return cfg.data.frames_per_clip * cfg.data.crop * cfg.data.crop  # refined pixels

    def export(self, model: nn.Module, cfg: RefinerTaskConfig, out_dir: Path, dtype: torch.dtype) -> Path:
        """The refiner folder with ``training_source.json``: the round trips' dataset, the hash of the VAE they
        went through and, when generated inputs were used, the generator's hashes and their share."""
        if not isinstance(model, PhotoRefiner):
            raise ValueError(f"expected a PhotoRefiner to export, got {type(model).__name__}")
        path = Path(model.save_pretrained(out_dir, dtype=dtype))
        meta = Path(cfg.data.round_trips) / ROUND_TRIPS_JSON
        info = json.loads(meta.read_text()) if meta.is_file() else {}
        source: dict[str, Any] = {
            "dataset": info.get("dataset"),
            "train_videos": sum(1 for s in info.get("splits", {}).values() if s == "train"),
            "vae_sha256": info.get("vae_sha256"),
        }
        if cfg.data.generated_share > 0:
            source |= {"generated_share": cfg.data.generated_share, "generator": info.get("generator")}
        (path / "training_source.json").write_text(json.dumps(source, indent=2) + "\n")
        return path
