"""``ffasora train`` and ``ffasora export`` through the command line (in-process)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.train.checkpoint import latest_checkpoint, read_weights

PRESET = """
[data]
size = 16
[train]
max_steps = 3
batch_size = 4
precision = "fp32"
[train.ema]
decay = 0.5
[train.loader]
num_workers = 0
"""


def test_train_then_export_publishes_the_ema_weights(tmp_path):
    preset = tmp_path / "tiny.toml"
    preset.write_text(PRESET)
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        app, ["train", "tiny", "-c", str(preset), "--set", "train.optim.lr=0.05", "--run", str(run)]
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["optim"]["lr"] == 0.05 and config["data"]["size"] == 16
    env = json.loads((run / "environment.json").read_text())
    assert env["world_size"] == 1 and env["torch"] == torch.__version__
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 3
    assert {"loss/model", "lr/model", "grad_norm/model", "samples_per_s", "tokens_per_s", "memory_mb"} <= set(
        rows[-1]
    )

    out = tmp_path / "published"
    result = runner.invoke(app, ["export", str(run), "--out", str(out), "--dtype", "bf16"])
    assert result.exit_code == 0, result.output
    published = load_file(str(out / "model.safetensors"))
    ema = read_weights(latest_checkpoint(run), "ema")
    raw = read_weights(latest_checkpoint(run), "model")
    assert all(t.dtype == torch.bfloat16 for t in published.values())
    assert torch.equal(published["inp.weight"], ema["inp.weight"].to(torch.bfloat16))
    assert not torch.equal(ema["inp.weight"], raw["inp.weight"])
    assert json.loads((out / "config.json").read_text())["_class_name"] == "TinyNet"
    assert json.loads((out / "training_run.json").read_text())["checkpoint"] == "step-00000003"


def test_cli_errors_name_the_problem(tmp_path):
    runner = CliRunner()
    preset = tmp_path / "p.toml"
    preset.write_text("[train]\nmax_stepz = 3\n")
    result = runner.invoke(app, ["train", "nope", "-c", str(preset), "--run", str(tmp_path / "r")])
    assert result.exit_code != 0 and "known tasks" in result.output
    result = runner.invoke(app, ["train", "tiny", "-c", str(preset), "--run", str(tmp_path / "r")])
    assert result.exit_code != 0 and "train.max_stepz" in result.output
    result = runner.invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "run.json" in result.output


def test_help_lists_the_tasks():
    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "dit" in result.output and "vae" in result.output
