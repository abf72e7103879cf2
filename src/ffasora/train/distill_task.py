"""``ffasora distill``: a student DiT that samples in 1, 2 or 4 Euler steps with guidance folded in.

Method: trajectory distillation of the teacher's sampling ODE (Luhman & Luhman 2021, "Knowledge distillation
in iterative generative models") with guidance distilled into the student (Meng et al. 2023, CVPR). The
teacher, a flow-matching pipeline, samples each training report with its own sampler settings (e.g. 24 Euler
steps, classifier-free guidance 4). Its trajectory is stored at the times of the student's finest grid (the
pipeline's shifted flow grid for ``max(student_steps)`` steps; each coarser grid is a subset of it, and both
are subsets of the teacher's grid when the teacher's step count is a multiple). The student, initialised from
the teacher, learns for every segment ``t_a -> t_b`` of the 1-, 2- and 4-step grids the one conditional
velocity whose Euler step lands on the teacher's state: ``v = (x_b - x_a) / (t_b - t_a)``. It runs one
forward per step and no negative branch; the pipeline samples it with ``guidance = 1`` and ``euler``.

Two stages: :func:`write_trajectories` (``ffasora distill trajectories``) runs the teacher once per report and
writes a trajectory folder; :class:`DistillTask` (``ffasora train distill``) trains on it with the shared
engine (checkpoints, exact resume, EMA, DDP).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset

from ffasora.diffusion import classifier_free_guidance, sampling_sigmas, wrap_network
from ffasora.diffusion.denoisers import FLOW_TIME_SCALE
from ffasora.models.dit import DiT
from ffasora.train.config import TrainConfig
from ffasora.train.dit_task import pad_tokens
from ffasora.train.tasks import StepLosses, Task

if TYPE_CHECKING:
    from ffasora.pipeline import FFASoraPipeline

TRAJECTORIES_JSON = "trajectories.json"


@dataclass(frozen=True)
class DistillDataConfig:
    trajectories: str = ""  # folder written by `ffasora distill trajectories`
    student_steps: tuple[int, ...] = (1, 2, 4)  # grids trained; each must divide the folder's finest grid


@dataclass(frozen=True)
class DistillTaskConfig:
    """``init``: the teacher's DiT folder (the student starts as a copy); ``[data]``; ``[train]``."""

    data: DistillDataConfig = field(default_factory=DistillDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: str = ""


def write_trajectories(
    pipe: FFASoraPipeline,
    reports: list[tuple[str, str]],
    out: Path,
    *,
    student_steps: int = 4,
    seed: int = 0,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Sample every ``(id, report)`` with the teacher pipeline's own settings (steps, guidance, negative
    report, size), report ``i`` from the noise of seed ``seed + i``, and write its states at the
    ``student_steps`` grid, its text states and mask. Reports run ``batch_size`` at a time. Existing
    trajectory files are kept, so an interrupted run resumes; ``trajectories.json`` is written last."""
    c, d = pipe.config, pipe.config.diffusion
    if d.family != "flow":
        raise ValueError(f"distillation needs a flow-matching teacher; this one is {d.family!r}")
    if d.steps % student_steps:
        raise ValueError(f"the teacher's {d.steps} steps are not a multiple of {student_steps} student steps")
    stride = d.steps // student_steps
    out.mkdir(parents=True, exist_ok=True)
    dtype = next(pipe.dit.parameters()).dtype

    def network(x: torch.Tensor, t: torch.Tensor, text: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return pipe.dit(x.to(dtype), t, text[0].to(dtype), text[1]).float()

    def noise(i: int) -> torch.Tensor:
        generator = torch.Generator(device=pipe.device).manual_seed(seed + i)
        return pipe.prepare_latents(c.num_frames, c.height, c.width, generator)

    sigmas = sampling_sigmas(d, d.steps, pipe.dit.config.num_tokens(*noise(0).shape[2:]))
    todo = [i for i, (video_id, _) in enumerate(reports) if not (out / f"{video_id}.safetensors").is_file()]
    done = len(reports) - len(todo)
    for first in range(0, len(todo), batch_size):
        rows = todo[first : first + batch_size]
        encoded = [pipe.encode_report(reports[i][1], c.negative_report) for i in rows]
        length = max(cond[0].shape[1] for cond, _ in encoded)
        cond = (
            torch.cat([pad_tokens([e[0][0][0]], length) for e in encoded]),
            torch.cat([pad_tokens([e[0][1][0]], length) for e in encoded]),
        )
        denoise = wrap_network(d, classifier_free_guidance(network, cond, encoded[0][1], d.guidance))
        x = torch.cat([noise(i) for i in rows])
        states = [x]
        with torch.no_grad():
            for step in range(d.steps):
                sigma, sigma_next = sigmas[step], sigmas[step + 1]
                velocity = (x - denoise(x, sigma.expand(len(rows)))) / float(sigma)
                x = x + velocity * float(sigma_next - sigma)
                if (step + 1) % stride == 0:
                    states.append(x)
        trajectory = torch.stack(states, dim=1)  # (B, student_steps + 1, c, t, h, w)
        for row, i in enumerate(rows):
            text, mask = encoded[row][0]
            tensors = {
                "states": trajectory[row].contiguous(),
                "text": text[0].float().contiguous(),
                "text_mask": mask[0].to(torch.uint8).contiguous(),
            }
            path = out / f"{reports[i][0]}.safetensors"
            partial = path.with_suffix(".partial")
            save_file(tensors, str(partial))
            partial.replace(path)
        done += len(rows)
        if progress is not None:
            progress(done, len(reports))
    info = {
        "times": [float(s) for s in sigmas[::stride]],
        "ids": [video_id for video_id, _ in reports],
        "teacher": {
            "steps": d.steps,
            "guidance": d.guidance,
            "negative_report": c.negative_report,
            "model_hashes": pipe.model_hashes,
            "diffusion": dataclasses.asdict(d),  # the recipe the student keeps (objective, shift, ...)
            "text_encoder": dataclasses.asdict(c.text_encoder),
        },
        "shape": {"num_frames": c.num_frames, "height": c.height, "width": c.width},
        "seed": seed,
    }
    (out / TRAJECTORIES_JSON).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return out


class TrajectoryDataset(Dataset[dict[str, Any]]):
    """A trajectory folder. Items: ``states`` (K + 1, c, t, h, w), ``text`` (L, D), ``text_mask`` (L,)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        meta = self.root / TRAJECTORIES_JSON
        if not meta.is_file():
            raise ValueError(
                f"{self.root}: no {TRAJECTORIES_JSON}; write the folder with `ffasora distill trajectories`"
            )
        self.info = json.loads(meta.read_text())
        self.times = torch.tensor(self.info["times"], dtype=torch.float64)
        self.ids: list[str] = self.info["ids"]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        tensors = load_file(str(self.root / f"{self.ids[index]}.safetensors"))
        return {
            "states": tensors["states"],
            "text": tensors["text"],
            "text_mask": tensors["text_mask"].bool(),
        }


def collate_trajectories(items: list[dict[str, Any]]) -> dict[str, Any]:
    length = max(len(i["text"]) for i in items)
    return {
        "states": torch.stack([i["states"] for i in items]),  # (B, K + 1, c, t, h, w)
        "text": pad_tokens([i["text"] for i in items], length),
        "text_mask": pad_tokens([i["text_mask"] for i in items], length),
    }


class DistillTask(Task):
    """The student DiT on a trajectory folder; the published model is a DiT folder like the teacher's."""

    config_cls = DistillTaskConfig
    collate_fn = staticmethod(collate_trajectories)

    def __init__(self) -> None:
        self.cfg: DistillTaskConfig | None = None
        self.times: torch.Tensor | None = None

    def build_models(self, cfg: DistillTaskConfig) -> dict[str, nn.Module]:
        self.cfg = cfg
        if not cfg.init:
            raise ValueError("init is empty; name the teacher's DiT folder (--set init=PIPELINE/dit)")
        return {"model": DiT.from_pretrained(cfg.init, dtype=torch.float32)}  # fp32 master weights

    def build_dataset(self, cfg: DistillTaskConfig, split: str) -> Dataset[Any]:
        if not cfg.data.trajectories:
            raise ValueError(
                "data.trajectories is empty; pass the folder written by `ffasora distill trajectories`"
            )
        dataset = TrajectoryDataset(cfg.data.trajectories)
        finest = len(dataset.times) - 1
        for n in cfg.data.student_steps:
            if n < 1 or finest % n:
                raise ValueError(
                    f"data.student_steps has {n}; the trajectories hold a {finest}-step grid, so each must "
                    f"divide {finest}"
                )
        self.times = dataset.times
        return dataset

    def training_step(self, models: dict[str, nn.Module], batch: dict[str, Any], step: int) -> StepLosses:
        """One segment of one student grid per sample, drawn from the global RNG (seeded and restored by the
        engine); the loss is the squared error of the student's velocity against the teacher's chord."""
        if self.cfg is None or self.times is None:
            raise ValueError("DistillTask.training_step called before build_models and build_dataset")
        states = batch["states"]  # (B, K + 1, c, t, h, w)
        b, finest = states.shape[0], states.shape[1] - 1
        grids = torch.tensor(self.cfg.data.student_steps)
        n = grids[torch.randint(len(grids), (b,))]  # student steps per sample
        k = (torch.rand(b) * n).long()  # segment index within that grid
        start, end = k * (finest // n), (k + 1) * (finest // n)
        rows = torch.arange(b)
        x_a, x_b = states[rows, start], states[rows, end]
        t_a, t_b = self.times[start], self.times[end]
        chord = (x_b - x_a) / (t_b - t_a).to(x_a.dtype).view(-1, 1, 1, 1, 1)
        timestep = (t_a * FLOW_TIME_SCALE).to(device=x_a.device, dtype=torch.float32)
        velocity = models["model"](x_a, timestep, batch["text"], batch["text_mask"])
        loss = (velocity.float() - chord).pow(2).mean()
        return {"model": loss, "one_step_share": (n == 1).float().mean()}

    def export(self, model: nn.Module, cfg: DistillTaskConfig, out_dir: Path, dtype: torch.dtype) -> Path:
        """The student's DiT folder with ``training_source.json``: the teacher and the grids it was
        distilled for, so ``pipeline assemble`` users know to sample it with ``--guidance 1``."""
        if not isinstance(model, DiT):
            raise ValueError(f"expected a DiT to export, got {type(model).__name__}")
        path = Path(model.save_pretrained(out_dir, dtype=dtype))
        trajectories = TrajectoryDataset(cfg.data.trajectories) if cfg.data.trajectories else None
        info = trajectories.info if trajectories is not None else {}
        teacher = info.get("teacher", {})
        source: dict[str, Any] = {
            "distilled": {
                "student_steps": list(cfg.data.student_steps),
                "guidance_folded": info.get("teacher", {}).get("guidance"),
                "teacher": info.get("teacher"),
                "sample_with": {"sampler": "euler", "guidance": 1.0},
            }
        }
        if "diffusion" in teacher:  # what `pipeline assemble` needs to sample the student as it was trained
            steps = max(cfg.data.student_steps)
            source["diffusion"] = teacher["diffusion"] | {"steps": steps, "guidance": 1.0, "sampler": "euler"}
            source["text_encoder"] = {"spec": teacher.get("text_encoder")}
            if trajectories is not None and len(trajectories):
                source["latent_shape"] = list(trajectories[0]["states"].shape[1:])
        (path / "training_source.json").write_text(json.dumps(source, indent=2, ensure_ascii=False) + "\n")
        return path
