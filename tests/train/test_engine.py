"""The engine on one process: resume exactness, the guard, two optimizers, schedule and weight decay."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import pytest
import torch
from tiny_train_task import TinyDataConfig, TinyGANTask, TinyTask, tiny_config

from ffasora.train import checkpoint as ckpt
from ffasora.train import engine
from ffasora.train.config import CheckpointConfig, GuardConfig, ScheduleConfig
from ffasora.train.engine import Trainer, build_optimizer, lr_factor
from ffasora.train.metrics import read_metrics
from ffasora.train.tasks import load_task


def _sigterm_at(step: int):
    def progress(s: int, total: int, row: dict) -> None:
        if s == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return progress


def test_six_steps_equal_three_a_sigterm_and_a_resume(tmp_path):
    cfg = tiny_config(data=TinyDataConfig(size=20, input_noise=0.1))
    straight_task = TinyTask()
    straight = Trainer(straight_task, cfg, tmp_path / "straight", task_name="tiny")
    assert straight.fit().status == "finished"

    # SIGTERM during step 3 (sent from the progress callback of step 2): save at step 3 and stop.
    first_task = TinyTask()
    first = Trainer(first_task, cfg, tmp_path / "cut", task_name="tiny", progress=_sigterm_at(2))
    result = first.fit()
    assert (result.status, result.step) == ("interrupted", 3)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    second_task = TinyTask()
    second = Trainer(second_task, cfg, tmp_path / "cut", task_name="tiny")
    assert second.fit().step == 6
    assert second.resumed_from is not None and second.resumed_from.name == "step-00000003"

    # Data order: the same batches, epoch boundaries included (20 samples = 5 batches of 4 per epoch).
    assert first_task.seen + second_task.seen == straight_task.seen
    assert len(straight_task.seen) == 12
    for name, p in straight.models["model"].state_dict().items():
        assert torch.equal(p, second.models["model"].state_dict()[name]), name
    for name, t in straight.ema.shadow.items():
        assert torch.equal(t, second.ema.shadow[name]), name
    a, b = straight.optimizers["model"].state_dict(), second.optimizers["model"].state_dict()
    for key, state in a["state"].items():
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(state[field], b["state"][key][field])
    rows = [r for r in read_metrics(tmp_path / "cut") if "event" not in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_a_non_finite_loss_is_skipped_and_reported(tmp_path):
    cfg = tiny_config(data=TinyDataConfig(size=20, nan_from_step=2, nan_count=1))
    trainer = Trainer(TinyTask(), cfg, tmp_path, task_name="tiny")
    trainer.setup()
    for _ in range(2):
        trainer.train_step()
    before = {k: v.clone() for k, v in trainer.models["model"].state_dict().items()}
    ema_before = {k: v.clone() for k, v in trainer.ema.shadow.items()}
    out = trainer.train_step()
    assert out["action"] == "skip"
    for k, v in trainer.models["model"].state_dict().items():
        assert torch.equal(v, before[k]), "a skipped step must not move the weights"
    assert all(torch.equal(v, ema_before[k]) for k, v in trainer.ema.shadow.items())
    assert trainer.train_step()["action"] == "ok"
    assert trainer.guard.state.skipped == 1

    result = Trainer(TinyTask(), cfg, tmp_path / "run", task_name="tiny").fit()
    assert (result.skipped, result.rollbacks, result.step) == (1, 0, 6)
    events = [r for r in read_metrics(tmp_path / "run") if r.get("event") == "skip"]
    assert len(events) == 1 and events[0]["step"] == 3 and events[0]["skipped"] == 1


def test_repeated_bad_steps_roll_back_and_lower_the_lr(tmp_path):
    guard = GuardConfig(max_bad_steps=2, lr_factor=0.5, max_rollbacks=2)
    cfg = tiny_config(
        data=TinyDataConfig(size=20, nan_from_step=3, nan_count=2),
        guard=guard,
        checkpoint=CheckpointConfig(every=2, keep_last=5),
        schedule=ScheduleConfig(kind="constant"),
    )
    result = Trainer(TinyTask(), cfg, tmp_path, task_name="tiny").fit()
    assert (result.skipped, result.rollbacks, result.step) == (2, 1, 6)
    rows = read_metrics(tmp_path)
    rollback = [r for r in rows if r.get("event") == "rollback"]
    assert len(rollback) == 1
    assert rollback[0]["from_step"] == 5 and rollback[0]["to_step"] == 4 and rollback[0]["lr_scale"] == 0.5
    after = [r for r in rows if "event" not in r and r["step"] > 4]
    assert after and all(r["lr/model"] == pytest.approx(0.5e-2) for r in after)

    # Bad steps forever: rollbacks are bounded and the run stops with an error.
    endless = dataclasses.replace(cfg, data=TinyDataConfig(size=20, nan_from_step=3, nan_count=10**6))
    with pytest.raises(RuntimeError, match="max_rollbacks"):
        Trainer(TinyTask(), endless, tmp_path / "endless", task_name="tiny").fit()
    no_checkpoint = dataclasses.replace(
        endless, train=dataclasses.replace(endless.train, checkpoint=CheckpointConfig(every=100))
    )
    with pytest.raises(RuntimeError, match="no checkpoint"):
        Trainer(TinyTask(), no_checkpoint, tmp_path / "none", task_name="tiny").fit()


def test_two_optimizers_keep_their_gradients_apart(tmp_path):
    cfg = tiny_config(data=TinyDataConfig(size=20, disc_start=3))
    trainer = Trainer(TinyGANTask(), cfg, tmp_path, task_name="tiny_gan")
    trainer.setup()
    disc0 = {k: v.clone() for k, v in trainer.models["disc"].state_dict().items()}
    gen0 = {k: v.clone() for k, v in trainer.models["model"].state_dict().items()}
    for _ in range(3):  # the generator loss runs through the discriminator, which must not move
        logs = trainer.train_step()["logs"]
        assert "loss/disc" not in logs and logs["adaptive_weight"] > 0
    assert all(torch.equal(v, disc0[k]) for k, v in trainer.models["disc"].state_dict().items())
    assert not torch.equal(trainer.models["model"].inp.weight, gen0["inp.weight"])
    logs = trainer.train_step()["logs"]
    assert "loss/disc" in logs and logs["lr/disc"] == pytest.approx(
        1e-2 * lr_factor(3, 6, cfg.train.schedule)
    )
    assert not torch.equal(trainer.models["disc"][0].weight, disc0["0.weight"])
    assert set(trainer.ema.shadow) == {n for n, _ in trainer.models["model"].named_parameters()}
    path = trainer.save()
    assert {p.name for p in path.glob("*.safetensors")} == {
        "model.safetensors",
        "disc.safetensors",
        "ema.safetensors",
    }


def test_lr_schedule_and_weight_decay_groups():
    s = ScheduleConfig(kind="cosine", warmup_steps=4, min_lr_ratio=0.1)
    assert [lr_factor(i, 14, s) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(14, 14, s) == pytest.approx(0.1)
    assert lr_factor(9, 14, s) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(9, 14, ScheduleConfig(kind="linear", warmup_steps=4)) == pytest.approx(0.5)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = build_optimizer([model], tiny_config().train.optim)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.01 and [p.shape for p in decayed["params"]] == [(4, 4)]
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 4  # embedding, bias, norm weight/bias


def test_fsdp_refuses_several_optimizer_groups(tmp_path):
    cfg = tiny_config(parallel="fsdp")
    with pytest.raises(ValueError, match="one optimizer group"):
        Trainer(TinyGANTask(), cfg, tmp_path, task_name="tiny_gan").setup()


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_bf16_instructions_warns(tmp_path, caplog, monkeypatch, native):
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="ffasora.train.engine"):
        Trainer(TinyTask(), tiny_config(precision="bf16"), tmp_path / "bf16", task_name="tiny").setup()
        Trainer(TinyTask(), tiny_config(precision="fp32"), tmp_path / "fp32", task_name="tiny").setup()
    warnings = [r.getMessage() for r in caplog.records if "bf16" in r.getMessage()]
    if native:
        assert warnings == []
    else:  # one warning, for the bf16 run only, naming the fix
        assert len(warnings) == 1 and "--set train.precision=fp32" in warnings[0]


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; known tasks: .*dit.*tiny.*vae"):
        load_task("nope")


def test_keep_last_and_resume_picks_the_newest(tmp_path):
    cfg = tiny_config(checkpoint=CheckpointConfig(every=1, keep_last=2))
    Trainer(TinyTask(), cfg, tmp_path, task_name="tiny").fit()
    assert [p.name for p in ckpt.checkpoint_dirs(tmp_path)] == ["step-00000005", "step-00000006"]
    again = Trainer(TinyTask(), cfg, tmp_path, task_name="tiny")
    assert again.fit().step == 6 and again.resumed_from.name == "step-00000006"


CHECKPOINT_FILES = ("model.safetensors", "ema.safetensors", "optimizer.pt", "trainer.pt")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 6-step run with checkpoints at steps 4, 5, 6, and the final weights it reached."""
    root = tmp_path_factory.mktemp("finished")
    cfg = tiny_config(checkpoint=CheckpointConfig(every=1, keep_last=3))
    trainer = Trainer(TinyTask(), cfg, root, task_name="tiny")
    trainer.fit()
    assert [p.name for p in ckpt.checkpoint_dirs(root)] == ["step-00000004", "step-00000005", "step-00000006"]
    return root, cfg, {k: v.clone() for k, v in trainer.models["model"].state_dict().items()}


@pytest.mark.parametrize("damage", ["truncated", "emptied", "deleted"])
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_resume_skips_a_damaged_newest_checkpoint_and_keeps_it(finished_run, tmp_path, caplog, name, damage):
    import shutil

    source, cfg, final = finished_run
    run = tmp_path / "run"
    shutil.copytree(source, run)
    newest = run / "checkpoints" / "step-00000006"
    data = (newest / name).read_bytes()
    if damage == "deleted":
        (newest / name).unlink()
    else:
        (newest / name).write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    damaged_bytes = {p.name: p.read_bytes() for p in newest.iterdir()}

    with caplog.at_level("WARNING", logger="ffasora.train.engine"):
        trainer = Trainer(TinyTask(), cfg, run, task_name="tiny")
        result = trainer.fit()

    assert trainer.resumed_from is not None and trainer.resumed_from.name == "step-00000005"
    assert result.step == 6 and result.checkpoint == newest  # one step from step 5, saved anew
    for key, value in final.items():  # the run went on from step 5 exactly as it had first
        assert torch.equal(trainer.models["model"].state_dict()[key], value), key
    kept = run / "checkpoints" / "step-00000006.damaged"
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == damaged_bytes  # never deleted or changed
    assert f"skipped step-00000006: checkpoint {newest}: {name}" in caplog.text
    assert "step-00000006.damaged" in caplog.text and "resuming from step-00000005" in caplog.text
    skipped = json.loads((run / "run.json").read_text())["skipped_checkpoints"]
    assert [s["checkpoint"] for s in skipped] == ["step-00000006"] and name in skipped[0]["reason"]


def test_resume_with_every_checkpoint_damaged_is_a_clear_error(finished_run, tmp_path):
    import shutil

    source, cfg, _ = finished_run
    shutil.copytree(source, tmp_path / "run")
    for folder in ckpt.checkpoint_dirs(tmp_path / "run"):
        (folder / "optimizer.pt").write_bytes(b"")
    with pytest.raises(ckpt.DamagedCheckpoint, match=r"no checkpoint can be read .*optimizer\.pt is empty"):
        Trainer(TinyTask(), cfg, tmp_path / "run", task_name="tiny").fit()
    assert len(ckpt.checkpoint_dirs(tmp_path / "run")) == 3  # nothing renamed or deleted
