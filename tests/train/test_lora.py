"""LoRA on the official-layout DiT fixture: adapters only train, merging equals live adapters, the adapter folder
round-trips, the engine overfits a tiny case, resumes exactly, and 2 gloo processes equal 1 (multiproc), under
DDP and under FSDP2 (sharded frozen base; checkpoints move between the two).

Under torchrun this file is also the worker of the FSDP runs (``python -m torch.distributed.run ... test_lora.py
CACHE ROOT``, see :func:`fsdp_runs`)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from latent_fixtures import fitted_vae, tiny_bert, write_videos
from lora_task import FixedNoiseDiTTask
from safetensors.torch import load_file, save_file

from ffasora.config import load_config
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
from ffasora.train.plan import Hardware, plan_dit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
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


def test_lora_needs_an_init_and_a_target() -> None:
    with pytest.raises(ValueError, match="set init"):
        DiTTask().build_models(DiTTaskConfig(lora=LORA))
    with pytest.raises(ValueError, match="match no linear"):
        add_lora(DiT.from_pretrained(FIXTURE), LoRAConfig(rank=2, targets=("nothing.here",)))


def test_plan_shards_the_frozen_base_under_fsdp() -> None:
    cfg = load_config(DiTTaskConfig, ROOT / "configs" / "dit" / "lora_osp_v13_2b.toml")
    fsdp = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, parallel="fsdp"))
    ddp, sharded = plan_dit(cfg, Hardware(gpus=4)).memory, plan_dit(fsdp, Hardware(gpus=4)).memory
    gathered = 2 * ddp.weights / cfg.model.num_layers  # two blocks of base + adapters, unsharded
    assert sharded.weights == pytest.approx(ddp.weights / 4 + gathered)
    for item in ("gradients", "optimizer", "ema"):
        assert getattr(sharded, item) == pytest.approx(getattr(ddp, item) / 4)
    assert plan_dit(fsdp, Hardware(gpus=1)).memory.total == pytest.approx(ddp.total)


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


# ----- FSDP2 ------------------------------------------------------------------------------------------------
# One torchrun launch (2 gloo processes) makes every FSDP run the tests below compare; the 1-process runs are
# made in the test process. Each global batch is the 4 training clips (1 x 4 or 2 x 2), so the runs see the
# same samples step by step, and the fixed-noise task draws nothing from the per-rank RNG.
def _runs_config(cache: Path, steps: int, parallel: str, batch_size: int) -> DiTTaskConfig:
    cfg = _config(cache, steps, parallel=parallel)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=batch_size))


def _fsdp_worker(cache: Path, root: Path) -> None:
    """One rank of the FSDP runs: "two" (4 steps), "split" (2 steps, then resumed to 4), "from_ddp" (resumed
    from the 1-process checkpoint the test put there); writes the gathered final state of "two" (base and
    adapters) and what each rank held."""
    from torch.distributed.tensor import DTensor

    from ffasora.train.distributed import full_tensor, gather_objects, shutdown

    def run(name: str, steps: int) -> Trainer:
        cfg = _runs_config(cache, steps, "fsdp", 2)
        trainer = Trainer(FixedNoiseDiTTask(), cfg, root / name, task_name="dit")
        trainer.fit()
        return trainer

    two = run("two", 4)
    model, optimizer = two.models["model"], two.optimizers["model"]

    def local(t: torch.Tensor) -> int:
        return t.to_local().numel() if isinstance(t, DTensor) else t.numel()

    params = list(model.parameters())
    frozen = [p for p in params if not p.requires_grad]
    trained = [p for p in params if p.requires_grad]
    held = {
        "sharded": all(isinstance(p, DTensor) for p in params),
        "frozen": [sum(p.numel() for p in frozen), sum(local(p) for p in frozen)],
        "trained": [sum(p.numel() for p in trained), sum(local(p) for p in trained)],
        "optimizer": [
            sum(s["exp_avg"].numel() for s in optimizer.state.values()),
            sum(local(s["exp_avg"]) for s in optimizer.state.values()),
        ],
    }
    layout = gather_objects(held)
    state = {k: full_tensor(v).detach().cpu().clone() for k, v in model.state_dict().items()}
    if two.dist.is_main:
        save_file(state, str(root / "two" / "final_state.safetensors"))
        (root / "two" / "layout.json").write_text(json.dumps(layout))
    run("split", 2)
    run("split", 4)
    run("from_ddp", 4)
    shutdown()


def _copy_checkpoint(run: Path, step: int, dest: Path) -> None:
    source = resolve_checkpoint(run, str(step))
    shutil.copytree(source, dest / "checkpoints" / source.name)


@pytest.fixture(scope="module")
def fsdp_runs(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs of 4 steps: "one" (1 process), "two" and "split" (2-process FSDP, "split" stopped at 2 and
    resumed), "from_ddp" ("one"'s step 2 resumed under FSDP), "to_ddp" ("split"'s step 2 resumed in 1 process)."""
    root = tmp_path_factory.mktemp("lora_fsdp")
    Trainer(FixedNoiseDiTTask(), _runs_config(cache, 4, "ddp", 4), root / "one", task_name="dit").fit()
    _copy_checkpoint(root / "one", 2, root / "from_ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [*cmd, str(cache), str(root)], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    _copy_checkpoint(root / "split", 2, root / "to_ddp")
    Trainer(FixedNoiseDiTTask(), _runs_config(cache, 4, "ddp", 4), root / "to_ddp", task_name="dit").fit()
    return root


def _assert_same_run(a: Path, b: Path, exact: bool) -> None:
    """Final adapters and their EMA of runs ``a`` and ``b``: equal, or within the reduction-order tolerance.

    lr 1e-2 moves the adapters by ~1e-2 a step. A sharded and a replicated run sum the gradients in another
    order (the reduce-scatter of two ranks' batch-2 gradients vs one batch of 4): ~1e-7 relative, which Adam's
    normalised step magnifies to 7e-6 after 4 steps here (5e-6 in the DDP test above); the bound, the DDP
    test's, is 3x that and 500x below one step, so a missed or doubled gradient sync fails it.
    """
    ca, cb = resolve_checkpoint(a), resolve_checkpoint(b)
    assert ca.name == cb.name == "step-00000004"
    for name in ("model", "ema"):
        wa, wb = read_weights(ca, name), read_weights(cb, name)
        assert wa.keys() == wb.keys() and all(".lora_" in k for k in wa)
        for key in wa:
            atol, rtol = (0.0, 0.0) if exact else (2e-5, 1e-4)
            torch.testing.assert_close(wb[key], wa[key], atol=atol, rtol=rtol, msg=f"{name}.{key}")


def _held(runs: Path) -> list[dict[str, Any]]:
    """What each rank of the FSDP run "two" held; every run's tensors were DTensors (else FSDP did not run)."""
    layout = json.loads((runs / "two" / "layout.json").read_text())
    assert len(layout) == 2 and all(held["sharded"] for held in layout), layout
    return layout


def _losses(run: Path) -> list[float]:
    return [r["loss/model"] for r in read_metrics(run) if "loss/model" in r]


@pytest.mark.multiproc
def test_lora_under_fsdp_on_two_gloo_processes_equals_one(fsdp_runs: Path, tmp_path: Path) -> None:
    layout = _held(fsdp_runs)
    for held in layout:  # each rank holds about half of the frozen base, the adapters and their AdamW state
        for total, local in (held["frozen"], held["trained"], held["optimizer"]):
            assert 0 < local <= 0.55 * total, held
    assert sum(h["frozen"][1] for h in layout) == layout[0]["frozen"][0]
    _assert_same_run(fsdp_runs / "one", fsdp_runs / "two", exact=False)
    assert _losses(fsdp_runs / "two") == pytest.approx(_losses(fsdp_runs / "one"), abs=1e-5)
    assert len(_losses(fsdp_runs / "two")) == 4

    # `ffasora export` of the FSDP run: the adapter folder of a 1-process run, holding the run's EMA
    two = export_run(fsdp_runs / "two", tmp_path / "two")
    one = export_run(fsdp_runs / "one", tmp_path / "one")
    lora, _, state, base = read_adapter(two)
    assert lora == LORA and base == str(FIXTURE)
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    ema = read_weights(resolve_checkpoint(fsdp_runs / "two"), "ema")
    for key, value in read_adapter(one)[2].items():
        torch.testing.assert_close(state[key], value, atol=2e-5, rtol=0)
        torch.testing.assert_close(state[key], ema[key.replace(".weight", ".default.weight")], atol=0, rtol=0)


@pytest.mark.multiproc
def test_lora_under_fsdp_trains_only_the_adapters(fsdp_runs: Path) -> None:
    final = load_file(str(fsdp_runs / "two" / "final_state.safetensors"))
    initial = DiTTask().build_models(_runs_config(fsdp_runs, 4, "fsdp", 2))["model"].state_dict()
    assert final.keys() == initial.keys()
    base = [k for k in final if ".lora_" not in k]
    assert base and all(torch.equal(final[k], initial[k]) for k in base)  # bit-identical frozen base
    saved = read_weights(resolve_checkpoint(fsdp_runs / "two"), "model")  # only the adapters are saved
    assert saved.keys() == {k for k in final if ".lora_" in k}
    assert all(torch.equal(final[k], v) for k, v in saved.items())
    assert any(".lora_B." in k and v.abs().max() > 0 for k, v in saved.items())  # B started at zero
    for held in _held(fsdp_runs):
        assert held["optimizer"][0] == held["trained"][0]  # AdamW state of the adapters alone


@pytest.mark.multiproc
def test_resume_of_an_fsdp_lora_run_is_exact(fsdp_runs: Path) -> None:
    _held(fsdp_runs)
    run = json.loads((fsdp_runs / "split" / "run.json").read_text())
    assert run["resumed_from"].endswith("step-00000002")
    _assert_same_run(fsdp_runs / "two", fsdp_runs / "split", exact=True)
    assert _losses(fsdp_runs / "split")[-2:] == _losses(fsdp_runs / "two")[-2:]
    a, b = (torch.load(resolve_checkpoint(fsdp_runs / r) / "optimizer.pt") for r in ("two", "split"))
    for key, value in a["model"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(b["model"]["state"][key][name], value[name]), key


@pytest.mark.multiproc
def test_lora_checkpoints_move_between_fsdp_and_ddp(fsdp_runs: Path) -> None:
    _held(fsdp_runs)
    fsdp, ddp = (resolve_checkpoint(fsdp_runs / r, "2") for r in ("split", "one"))
    for name in ("model", "ema"):  # one layout: the same tensors under the same names
        wa, wb = read_weights(fsdp, name), read_weights(ddp, name)
        assert {k: v.shape for k, v in wa.items()} == {k: v.shape for k, v in wb.items()}
    oa, ob = (torch.load(c / "optimizer.pt")["model"]["state"] for c in (fsdp, ddp))
    assert oa.keys() == ob.keys()
    for moved in ("to_ddp", "from_ddp"):
        run = json.loads((fsdp_runs / moved / "run.json").read_text())
        assert run["resumed_from"].endswith("step-00000002"), moved
        _assert_same_run(fsdp_runs / "one", fsdp_runs / moved, exact=False)


if __name__ == "__main__":
    _fsdp_worker(Path(sys.argv[1]), Path(sys.argv[2]))
