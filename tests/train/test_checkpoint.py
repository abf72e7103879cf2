"""Checkpoint files: atomic writes survive a kill mid-write; RNG states round-trip; bad references fail."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from ffasora.train import checkpoint as ckpt

# A child that writes checkpoint 1, then dies by SIGKILL while checkpoint 2 is half written (its weights
# are on disk, its optimizer file is being written).
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from ffasora.train import checkpoint as ckpt

    run = sys.argv[1]
    weights = {"model": {"w": torch.full((3, 3), 1.0)}}
    ckpt.write_checkpoint(run, 1, weights, {"model": {}}, {"step": 1}, keep_last=3)

    def dying_save(obj, path):
        with open(path, "wb") as f:
            f.write(b"half a file")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    ckpt.torch.save = dying_save
    ckpt.write_checkpoint(run, 2, {"model": {"w": torch.full((3, 3), 2.0)}}, {"model": {}}, {"step": 2}, 3)
    """
)


def test_a_process_killed_mid_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr.decode()[-2000:]
    root = tmp_path / ckpt.CHECKPOINTS
    assert [p.name for p in root.glob(".tmp-step-00000002-*")], "the half-written checkpoint should exist"
    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step-00000001"
    state = ckpt.read_checkpoint(latest)
    assert state["trainer"]["step"] == 1
    assert torch.equal(state["weights"]["model"]["w"], torch.full((3, 3), 1.0))
    # The next write clears the leftovers.
    ckpt.write_checkpoint(tmp_path, 3, {"model": {"w": torch.zeros(1)}}, {}, {"step": 3}, keep_last=3)
    assert not list(root.glob(".tmp-*"))
    assert [p.name for p in ckpt.checkpoint_dirs(tmp_path)] == ["step-00000001", "step-00000003"]


def test_rng_states_round_trip():
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ckpt.set_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_tied_tensors_are_written_and_missing_checkpoints_are_named(tmp_path):
    shared = torch.randn(4)
    path = ckpt.write_checkpoint(tmp_path, 5, {"model": {"a": shared, "b": shared}}, {}, {"step": 5}, 1)
    weights = ckpt.read_weights(path, "model")
    assert torch.equal(weights["a"], weights["b"])
    assert ckpt.resolve_checkpoint(tmp_path, "5") == path
    with pytest.raises(ValueError, match=r"'7' not found.*step-00000005"):
        ckpt.resolve_checkpoint(tmp_path, "7")
    with pytest.raises(ValueError, match="no ema.safetensors"):
        ckpt.read_weights(path, "ema")
