"""The training planner: parameter counts equal the built model's, memory arithmetic, refusal, the CLI, and
one calibration case measured against the model (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffasora.cli.app import app
from ffasora.config import load_config
from ffasora.models.dit import DiT, read_dit_config
from ffasora.models.lora import LoRAConfig, add_lora
from ffasora.train.dit_task import DiTTaskConfig
from ffasora.train.plan import DataShape, GiB, Hardware, plan_dit, plan_memory, refusal

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "official" / "dit_a"
LORA_PRESET = ROOT / "configs" / "dit" / "lora_osp_v13_2b.toml"


@pytest.mark.parametrize("rank", [0, 4])
def test_parameter_counts_are_the_built_models(rank: int) -> None:
    config = read_dit_config(FIXTURE)
    plan = plan_memory(config, DataShape((2, 4, 4), 8, 4), Hardware(), LoRAConfig(rank=rank), 1, False, False)
    model = DiT(config)
    if rank:
        add_lora(model, LoRAConfig(rank=rank))
    assert plan.total_params == sum(p.numel() for p in model.parameters())
    assert plan.trained_params == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_lora_keeps_state_to_the_adapters_and_checkpointing_shrinks_activations() -> None:
    cfg = load_config(DiTTaskConfig, LORA_PRESET)
    lora, full = plan_dit(cfg, Hardware(gpu_gib=24)), plan_dit(cfg, Hardware(gpu_gib=24), lora_rank=0)
    m = lora.memory
    assert m.gradients == 4 * m.trained_params and m.optimizer == 8 * m.trained_params
    assert m.weights == pytest.approx(2 * (m.total_params - m.trained_params) + 4 * m.trained_params)
    assert m.per_sample_checkpointed < m.per_sample_plain / 5
    assert m.fits and lora.memory.max_batch >= 1 and not refusal(lora)
    assert not full.memory.fits and "LoRA" in refusal(full)
    assert full.memory.optimizer == 8 * full.memory.trained_params
    # an epoch is ceil(videos / global batch) steps
    assert lora.time.steps_per_epoch == -(-lora.data.videos // (cfg.train.batch_size * cfg.train.grad_accum))


def test_plan_cli_prints_the_items_and_refuses_what_does_not_fit() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["plan", "dit", str(LORA_PRESET), "--gpus", "2", "--gpu-gib", "24"])
    assert ok.exit_code == 0, ok.output
    for item in (
        "weights",
        "gradients",
        "optimizer",
        "EMA",
        "without checkpointing",
        "largest batch",
        "TFLOP",
    ):
        assert item in ok.output
    refused = runner.invoke(app, ["plan", "dit", str(LORA_PRESET), "--gpu-gib", "24", "--lora", "0"])
    assert refused.exit_code != 0 and "does not fit" in refused.output
    bad = runner.invoke(app, ["plan", "dit", str(LORA_PRESET), "--latent", "6x64"])
    assert bad.exit_code != 0 and "--latent" in bad.output


@pytest.mark.slow
def test_planned_memory_is_within_15_percent_of_a_measured_cpu_peak() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from plan_calibration import CASES, planned

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
    for i in (3, 5):  # LoRA with checkpointing; LoRA without, at another width
        out = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "plan_calibration.py"), "--case", str(i)],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak"]
        assert planned(CASES[i]) == pytest.approx(peak, rel=0.15), (i, peak / GiB)


def test_lora_presets_match_their_base_models() -> None:
    bundled = load_config(DiTTaskConfig, ROOT / "configs" / "dit" / "lora_bundled.toml")
    assert bundled.lora.enabled and bundled.model == read_dit_config(ROOT / "pretrained" / "dit")
    official = load_config(DiTTaskConfig, LORA_PRESET)
    assert official.lora.enabled and official.train.parallel == "ddp"
    assert (
        official.model == load_config(DiTTaskConfig, ROOT / "configs" / "dit" / "train_osp_v13_2b.toml").model
    )
