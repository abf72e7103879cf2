"""``train dit``: presets, batching, report dropout, the loss step, the engine end to end, export -> pipeline,
and a tiny DiT overfitting 4 videos (slow)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from latent_fixtures import REPORTS, fitted_vae, tiny_bert, tiny_dit_config, write_videos

from ffasora.config import load_config
from ffasora.diffusion import DiffusionConfig
from ffasora.models.text import HFTextEncoder
from ffasora.train.config import CheckpointConfig, EMAConfig, LoaderConfig, OptimConfig, TrainConfig
from ffasora.train.dit_task import DiTDataConfig, DiTTask, DiTTaskConfig, collate_latents
from ffasora.train.latents import encode_dataset
from ffasora.train.tasks import load_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A latent cache of 4 videos (5x32x32 -> 4x2x4x4 unit-variance latents) with tiny-BERT report states;
    the VAE is saved beside it and recorded in it."""
    root = tmp_path_factory.mktemp("dit")
    data, bert = write_videos(root / "data"), tiny_bert(root / "bert")
    vae = fitted_vae(data)
    vae.save_pretrained(root / "vae")
    spec = {"type": "hf", "path": str(bert), "max_tokens": 64}
    encode_dataset(
        data,
        root / "cache",
        vae,
        HFTextEncoder(bert, max_tokens=64),
        vae_path=root / "vae",
        text_encoder_spec=spec,
    )
    return root / "cache"


def _config(cache: Path, **data: object) -> DiTTaskConfig:
    return DiTTaskConfig(
        model=tiny_dit_config(),
        data=DiTDataConfig(cache=str(cache), **data),  # type: ignore[arg-type]
        diffusion=DiffusionConfig(objective="flow", sampler="euler", steps=20, guidance=1.0),
    )


@pytest.mark.parametrize("name", ["train_small.toml", "train_osp_v13_2b.toml"])
def test_presets_load_and_match_the_model_presets(name: str) -> None:
    from ffasora.models.dit import DiTConfig

    cfg = load_config(DiTTaskConfig, ROOT / "configs" / "dit" / name, ["data.cache=/x"])
    model_preset = {"train_small.toml": "small.toml", "train_osp_v13_2b.toml": "osp_v13_2b.toml"}[name]
    assert cfg.model == load_config(DiTConfig, ROOT / "configs" / "dit" / model_preset)
    assert cfg.data.cache == "/x" and cfg.data.empty_report_dropout == 0.1 and cfg.train.ema.enabled


def test_registry_finds_the_task() -> None:
    assert isinstance(load_task("dit"), DiTTask) and load_task("dit").config_cls is DiTTaskConfig


def test_batches_pad_text_and_carry_the_empty_report(cache: Path) -> None:
    task = DiTTask()
    dataset = task.build_dataset(_config(cache), "train")
    batch = collate_latents([dataset[i] for i in range(4)])
    assert batch["mean"].shape == (4, 4, 2, 4, 4) and batch["std"].shape == (4, 4, 2, 4, 4)
    lengths = batch["text_mask"].sum(1).tolist()
    assert batch["text"].shape == (4, max(lengths), 32) and len(set(lengths)) > 1
    assert not batch["text"][~batch["text_mask"]].any()  # padding is zero
    assert batch["empty_mask"].sum(1).tolist() == [2] * 4  # [CLS] [SEP]
    with pytest.raises(ValueError, match="split 'val'"):
        task.build_dataset(_config(cache), "val")
    wrong = dataclasses.replace(_config(cache), model=tiny_dit_config(text_dim=16))
    with pytest.raises(ValueError, match="text_dim"):
        task.build_dataset(wrong, "train")


@pytest.mark.parametrize("dropout", [0.0, 1.0])
def test_report_dropout_swaps_in_the_empty_report(cache: Path, dropout: float) -> None:
    task = DiTTask()
    cfg = _config(cache, empty_report_dropout=dropout)
    models = task.build_models(cfg)
    dataset = task.build_dataset(cfg, "train")
    batch = collate_latents([dataset[i] for i in range(4)])
    seen: list[torch.Tensor] = []
    hook = models["model"].register_forward_pre_hook(lambda m, args: seen.append(args[2]))
    torch.manual_seed(0)
    losses = dict(task.training_step(models, batch, 0))
    hook.remove()
    expected = batch["empty_text"] if dropout == 1.0 else batch["text"]
    torch.testing.assert_close(seen[0], expected)
    assert float(losses["dropped_reports"]) == dropout
    loss = losses["model"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in models["model"].parameters() if p.requires_grad)


def test_posterior_is_sampled_or_its_mean_used(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ffasora.train.dit_task as dit_task

    seen: list[torch.Tensor] = []
    monkeypatch.setattr(
        dit_task, "training_loss", lambda config, denoiser, x0, cond, **kw: seen.append(x0) or x0.sum()
    )
    task = DiTTask()
    for sample_posterior in (True, False):
        cfg = _config(cache, sample_posterior=sample_posterior)
        models = task.build_models(cfg)
        batch = collate_latents([task.build_dataset(cfg, "train")[i] for i in range(4)])
        task.training_step(models, batch, 0)
        task.training_step(models, batch, 1)
    sampled, sampled_again, mean, mean_again = seen
    assert (
        not torch.equal(sampled, sampled_again)
        and torch.equal(mean, batch["mean"])
        and torch.equal(mean, mean_again)
    )
    z = (sampled - batch["mean"]) / batch["std"]  # a posterior draw: standard normal in std units
    assert abs(float(z.mean())) < 0.2 and 0.8 < float(z.std()) < 1.2


def _train_config(cache: Path, steps: int, lr: float, ema: float) -> DiTTaskConfig:
    train = TrainConfig(
        max_steps=steps,
        batch_size=4,
        seed=0,
        precision="fp32",
        optim=OptimConfig(lr=lr),
        ema=EMAConfig(decay=ema),
        checkpoint=CheckpointConfig(every=max(steps, 1), keep_last=1),
        loader=LoaderConfig(num_workers=0, pin_memory=False),
    )
    return dataclasses.replace(_config(cache, sample_posterior=False, empty_report_dropout=0.0), train=train)


def _train_export_assemble(cache: Path, out: Path, steps: int, lr: float, ema: float) -> Path:
    from ffasora.train.assemble import assemble_pipeline
    from ffasora.train.engine import Trainer
    from ffasora.train.export import export_run

    Trainer(DiTTask(), _train_config(cache, steps, lr, ema), out / "run", task_name="dit").fit()
    dit = export_run(out / "run", out / "dit", dtype="fp32")
    return assemble_pipeline(dit, out / "pipeline", frames=5)


def test_engine_trains_exports_and_the_pipeline_generates(cache: Path, tmp_path: Path) -> None:
    from ffasora.pipeline import FFASoraPipeline

    folder = _train_export_assemble(cache, tmp_path, steps=3, lr=1e-3, ema=0.9)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(np.isfinite(r["loss/model"]) for r in rows if "loss/model" in r)
    source = json.loads((tmp_path / "dit" / "training_source.json").read_text())
    assert source["vae"]["path"] == str(cache.parent / "vae") and source["diffusion"]["objective"] == "flow"
    index = json.loads((folder / "model_index.json").read_text())
    assert (index["num_frames"], index["height"], index["width"]) == (5, 32, 32)
    assert index["text_encoder"]["type"] == "hf"
    pipe = FFASoraPipeline.from_pretrained(folder)
    out = pipe(REPORTS[0], steps=2, seed=0)
    assert out.frames.shape == (5, 32, 32) and out.metadata["model_hashes"]["vae"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of uint8 frames."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_tiny_dit_overfits_four_videos(cache: Path, tmp_path: Path) -> None:
    """A 2-layer DiT trained through the engine on 4 videos regenerates each from its report: its sampled
    latent is close to the cached target and far from the other three, and the decoded sample is close to the
    decoded target (PSNR against the VAE's reconstruction: the VAE is random, so the DiT is judged on what it
    controls). ``FFASORA_SHEET=path.png`` also writes a contact sheet (targets, samples)."""
    from ffasora.pipeline import FFASoraPipeline
    from ffasora.train.latents import load_cached, read_cache_manifest

    folder = _train_export_assemble(cache, tmp_path, steps=800, lr=3e-3, ema=0.99)
    pipe = FFASoraPipeline.from_pretrained(folder)
    records = read_cache_manifest(cache)
    targets = [load_cached(cache, r)["mean"][None] for r in records]  # (1, c, t, h, w) DiT units
    rows, labels, results = [], [], []
    for record, target in zip(records, targets, strict=True):
        cond, uncond = pipe.encode_report(record.report, "")
        generator = torch.Generator().manual_seed(1)
        noise = pipe.prepare_latents(5, 32, 32, generator)
        latent = pipe.denoise(
            noise, cond, uncond, steps=30, guidance=1.0, sampler="euler", generator=generator
        )
        errors = [float(((latent - t) ** 2).mean()) for t in targets]  # latent MSE to every target
        own = errors[records.index(record)]
        other = min(e for j, e in enumerate(errors) if j != records.index(record))
        decoded, sample = pipe.decode(target), pipe.decode(latent)
        results.append((own, other, psnr(sample, decoded)))
        rows += [decoded, sample]
        labels += [
            f"{record.id} target (VAE decode): {record.report}",
            f"{record.id} sample, PSNR {results[-1][2]:.1f} dB",
        ]
    print(
        "sample's latent MSE to its own target, to the nearest other target; decoded PSNR (dB):",
        [tuple(round(v, 3) for v in r) for r in results],
    )
    assert all(own < other / 2 for own, other, _ in results)  # each report gives its own video
    assert all(value > 28.0 for _, _, value in results)
    if os.environ.get("FFASORA_SHEET"):
        from ffasora.io.sheet import contact_sheet

        sheet = contact_sheet(
            rows, labels, tile=96, title="tiny DiT overfit on 4 videos: decoded targets vs samples"
        )
        sheet.save(os.environ["FFASORA_SHEET"])


def test_cli_latents_train_export_assemble_generate(cache: Path, tmp_path: Path) -> None:
    """The documented command sequence, with the CPU preset shrunk to the tiny model by --set."""
    from typer.testing import CliRunner

    from ffasora.cli import app

    runner = CliRunner()
    tiny = ["model.in_channels=4", "model.out_channels=4", "model.num_layers=2", "model.num_heads=2"]
    tiny += ["model.head_dim=12", "model.text_dim=32", f"data.cache={cache}", "train.max_steps=2"]
    tiny += ["train.batch_size=2", "train.loader.num_workers=0", "diffusion.steps=2"]
    preset = ROOT / "configs" / "dit" / "train_small.toml"
    sets = [arg for item in tiny for arg in ("--set", item)]
    run = runner.invoke(
        app,
        ["train", "dit", "--config", str(preset), *sets, "--run", str(tmp_path / "run"), "--device", "cpu"],
    )
    assert run.exit_code == 0, run.output
    exported = runner.invoke(
        app, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "dit"), "--dtype", "fp32"]
    )
    assert exported.exit_code == 0, exported.output
    assembled = runner.invoke(
        app,
        [
            "pipeline",
            "assemble",
            "--dit",
            str(tmp_path / "dit"),
            "--out",
            str(tmp_path / "pipe"),
            "--frames",
            "5",
        ],
    )
    assert assembled.exit_code == 0, assembled.output
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["diffusion"]["objective"] == "v_prediction" and index["diffusion"]["steps"] == 2
    video = tmp_path / "out.mp4"
    generated = runner.invoke(
        app, ["generate", REPORTS[1], "--model", str(tmp_path / "pipe"), "--out", str(video)]
    )
    assert generated.exit_code == 0, generated.output
    assert json.loads(video.with_suffix(".json").read_text())["num_frames"] == 5
