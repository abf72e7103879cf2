"""LoRA on the official-layout DiT fixture: adapters only train, merging equals live adapters, the adapter folder
round-trips, the engine overfits a tiny case, resumes exactly, and 2 gloo processes equal 1 (multiproc)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from latent_fixtures import fitted_vae, tiny_bert, write_videos
from lora_task import FixedNoiseDiTTask

from ffasora.diffusion import DiffusionConfig
from ffasora.models.dit import DiT, read_dit_config
from ffasora.models.lora import (
    LoRAConfig,
    adapter_state_dict,
    add_lora,
    load_adapter,
    merge_adapter,
    merged,
    read_adapter,
    save_adapter,
)
from ffasora.models.text import HFTextEncoder
from ffasora.train.checkpoint import read_weights, resolve_checkpoint
from ffasora.train.config import (
    CheckpointConfig,
    EMAConfig,
    LoaderConfig,
    LoggingConfig,
    OptimConfig,
    TrainConfig,
)
from ffasora.train.dit_task import DiTDataConfig, DiTTask, DiTTaskConfig
from ffasora.train.engine import Trainer
from ffasora.train.export import export_run
from ffasora.train.latents import encode_dataset
from ffasora.train.metrics import read_metrics

HERE = Path(__file__).resolve().parent
FIXTURE = (
    HERE.parents[0] / "fixtures" / "official" / "dit_a"
)  # OpenSoraT2V_v1_3 layout, 8 channels, 384-d text
LORA = LoRAConfig(rank=4, alpha=8.0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 videos -> 8x2x4x4 latents and 384-d tiny-BERT report states: the fixture DiT's input shapes."""
    root = tmp_path_factory.mktemp("lora")
    data, bert = write_videos(root / "data"), tiny_bert(root / "bert", hidden=384)
    vae = fitted_vae(data, latent_dim=8)
    vae.save_pretrained(root / "vae")
    spec = {"type": "hf", "path": str(bert), "max_tokens": 64}
    encoder = HFTextEncoder(bert, max_tokens=64)
    encode_dataset(data, root / "cache", vae, encoder, vae_path=root / "vae", text_encoder_spec=spec)
    return root / "cache"


def _config(cache: Path, steps: int, lr: float = 1e-2, **train: object) -> DiTTaskConfig:
    return DiTTaskConfig(
        model=read_dit_config(FIXTURE),
        data=DiTDataConfig(cache=str(cache), empty_report_dropout=0.0, sample_posterior=False),
        diffusion=DiffusionConfig(objective="flow", sampler="euler", steps=4, guidance=1.0),
        train=TrainConfig(
            max_steps=steps,
            batch_size=4,
            seed=3,
            precision="fp32",
            optim=OptimConfig(lr=lr, weight_decay=0.01),
            ema=EMAConfig(decay=0.9),
            checkpoint=CheckpointConfig(every=2, keep_last=5),
            loader=LoaderConfig(num_workers=0, pin_memory=False),
            logging=LoggingConfig(every=1),
            **train,  # type: ignore[arg-type]
        ),
        lora=LORA,
        init=str(FIXTURE),
    )


def _inputs(model: DiT) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    c = model.config
    x = torch.randn(2, c.in_channels, 2, 4, 4, generator=gen)
    text = torch.randn(2, 5, c.text_dim, generator=gen)
    return x, torch.tensor([30.0, 600.0]), text, torch.ones(2, 5, dtype=torch.bool)


def _random_adapters(model: DiT) -> None:
    """B starts at zero (the adapted model starts as its base); give A and B values for the tests."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def test_adapters_start_as_the_base_and_only_they_train() -> None:
    base = DiT.from_pretrained(FIXTURE)
    model = add_lora(DiT.from_pretrained(FIXTURE), LORA)
    x, t, text, mask = _inputs(base)
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, text, mask), base(x, t, text, mask), atol=0, rtol=0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    # 4 blocks x (4 self + 4 cross + 2 feed-forward) linears x (A, B)
    assert len(trainable) == 4 * 10 * 2 and all(".lora_" in n for n in trainable)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(2):
        model(x, t, text, mask).square().mean().backward()
        opt.step()
        opt.zero_grad()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(trainable)
    assert any(".lora_B." in n for n in changed)


def test_merged_weights_give_the_outputs_of_base_plus_adapters() -> None:
    model = add_lora(DiT.from_pretrained(FIXTURE), LORA)
    _random_adapters(model)
    plain = merged(model, LORA)
    assert not any(".lora_" in n for n in plain.state_dict())
    x, t, text, mask = _inputs(model)
    with torch.no_grad():
        live, folded = model(x, t, text, mask), plain(x, t, text, mask)
        base = DiT.from_pretrained(FIXTURE)(x, t, text, mask)
    assert (live - base).abs().max() > 1e-2  # the adapters do something
    torch.testing.assert_close(folded, live, atol=1e-5, rtol=1e-5)


def test_adapter_folder_round_trip(tmp_path: Path) -> None:
    model = add_lora(DiT.from_pretrained(FIXTURE), LORA)
    _random_adapters(model)
    out = save_adapter(model, LORA, tmp_path / "adapter", base=str(FIXTURE))
    cfg, base_config, state, base = read_adapter(out)
    assert cfg == LORA and base_config == model.config and base == str(FIXTURE)
    assert state.keys() == adapter_state_dict(model).keys()
    loaded = load_adapter(DiT.from_pretrained(FIXTURE), out)
    for key, value in adapter_state_dict(model).items():
        torch.testing.assert_close(adapter_state_dict(loaded)[key], value, atol=0, rtol=0)
    x, t, text, mask = _inputs(model)
    with torch.no_grad():
        folded = merge_adapter(DiT.from_pretrained(FIXTURE), out)(x, t, text, mask)
        torch.testing.assert_close(folded, model(x, t, text, mask), atol=1e-5, rtol=1e-5)
    other = dataclasses.replace(model.config, num_layers=2)
    with pytest.raises(ValueError, match="another config"):
        merge_adapter(DiT(other), out)


def test_lora_run_overfits_exports_an_adapter_and_resumes_exactly(cache: Path, tmp_path: Path) -> None:
    Trainer(FixedNoiseDiTTask(), _config(cache, 60), tmp_path / "full", task_name="dit").fit()
    losses = [r["loss/model"] for r in read_metrics(tmp_path / "full") if "loss/model" in r]
    assert len(losses) == 60 and sum(losses[-5:]) < 0.3 * sum(losses[:5]), losses
    ckpt = resolve_checkpoint(tmp_path / "full")
    saved = read_weights(ckpt, "model")
    assert saved and all(".lora_" in k for k in saved)  # the frozen base is not in the checkpoint
    assert read_weights(ckpt, "ema").keys() == saved.keys()

    # 4 steps, stop; resume to 6 == 6 straight (LoRA weights, their EMA and the optimizer)
    Trainer(FixedNoiseDiTTask(), _config(cache, 6), tmp_path / "straight", task_name="dit").fit()
    Trainer(FixedNoiseDiTTask(), _config(cache, 4), tmp_path / "split", task_name="dit").fit()
    resumed = Trainer(FixedNoiseDiTTask(), _config(cache, 6), tmp_path / "split", task_name="dit")
    resumed.fit()
    assert resumed.resumed_from is not None and resumed.resumed_from.name == "step-00000004"
    a, b = resolve_checkpoint(tmp_path / "straight"), resolve_checkpoint(tmp_path / "split")
    for name in ("model", "ema"):
        for key, value in read_weights(a, name).items():
            torch.testing.assert_close(read_weights(b, name)[key], value, atol=0, rtol=0)


def test_export_of_a_lora_run_is_an_adapter_folder(cache: Path, tmp_path: Path) -> None:
    cfg = _config(cache, 2)
    Trainer(FixedNoiseDiTTask(), cfg, tmp_path / "run", task_name="dit").fit()
    out = export_run(tmp_path / "run", tmp_path / "adapter")
    lora, _, state, base = read_adapter(out)
    assert lora == LORA and base == str(FIXTURE)
    ema = read_weights(resolve_checkpoint(tmp_path / "run"), "ema")
    assert sum(v.numel() for v in state.values()) == sum(v.numel() for v in ema.values())
    assert (out / "training_source.json").is_file()


def test_lora_needs_an_init_and_ddp() -> None:
    with pytest.raises(ValueError, match="set init"):
        DiTTask().build_models(DiTTaskConfig(lora=LORA))
    with pytest.raises(ValueError, match="ddp"):
        DiTTaskConfig(lora=LORA, init=str(FIXTURE), train=TrainConfig(parallel="fsdp"))
    with pytest.raises(ValueError, match="match no linear"):
        add_lora(DiT.from_pretrained(FIXTURE), LoRAConfig(rank=2, targets=("nothing.here",)))


@pytest.mark.slow
@pytest.mark.multiproc
def test_lora_on_two_gloo_processes_equals_one(cache: Path, tmp_path: Path) -> None:
    preset = tmp_path / "lora.toml"
    preset.write_text(
        f'init = "{FIXTURE}"\n[data]\ncache = "{cache}"\nempty_report_dropout = 0.0\nsample_posterior = false\n'
        "[lora]\nrank = 4\nalpha = 8.0\n"
        '[train]\nmax_steps = 4\nbatch_size = 2\nseed = 3\nprecision = "fp32"\n'
        "[train.optim]\nlr = 1e-2\nweight_decay = 0.01\n[train.ema]\ndecay = 0.9\n"
        "[train.checkpoint]\nevery = 2\nkeep_last = 5\n[train.loader]\nnum_workers = 0\npin_memory = false\n"
    )
    cfg = read_dit_config(FIXTURE)
    sets = [f"model.{k}={_toml(v)}" for k, v in dataclasses.asdict(cfg).items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [
        str(HERE / "run_lora.py"),
        "train",
        "dit_fixed",
        "--config",
        str(preset),
        "--run-dir",
        str(tmp_path / "two"),
    ]
    for item in sets:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    one = dataclasses.replace(
        _config(cache, 4), train=dataclasses.replace(_config(cache, 4).train, batch_size=4)
    )
    Trainer(FixedNoiseDiTTask(), one, tmp_path / "one", task_name="dit_fixed").fit()
    a, b = resolve_checkpoint(tmp_path / "one"), resolve_checkpoint(tmp_path / "two")
    assert a.name == b.name == "step-00000004"
    for name in ("model", "ema"):
        wa, wb = read_weights(a, name), read_weights(b, name)
        assert wa.keys() == wb.keys()
        for key in wa:
            # lr 1e-2 moves the adapters by ~1e-2 a step; Adam magnifies reduction-order noise to ~5e-6
            torch.testing.assert_close(wb[key], wa[key], atol=2e-5, rtol=1e-4, msg=f"{name}.{key}")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
