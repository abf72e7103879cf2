"""I3D plumbing with random weights (no weights ship): parameter names, strict loading, hashes, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffasora.evaluate.i3d import InceptionI3d, i3d_features, load_i3d, preprocess
from ffasora.models.pretrained import file_sha256


def test_parameter_count_and_port_key_names():
    net = InceptionI3d()
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(12.70e6, rel=0.01)
    keys = set(net.state_dict())
    assert {"Conv3d_1a_7x7.conv3d.weight", "Mixed_5c.b3b.bn.running_var", "logits.conv3d.bias"} <= keys


@pytest.mark.slow
def test_state_dict_file_loads_strictly_and_gives_the_same_features(tmp_path):
    torch.manual_seed(0)
    net = InceptionI3d().eval()
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "i3d.pt")
    loaded, info = load_i3d(tmp_path / "i3d.pt")
    assert info["format"] == "state_dict" and info["sha256"] == file_sha256(tmp_path / "i3d.pt")
    video = np.random.default_rng(0).integers(0, 256, (9, 32, 32)).astype(np.uint8)
    a, b = i3d_features(net, [video], 10), i3d_features(loaded, [video], 10)
    assert a.shape == (1, 400) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_state_dict_file_loads_strictly(tmp_path):
    torch.manual_seed(0)
    net = InceptionI3d()
    torch.save(net.state_dict(), tmp_path / "i3d.pt")
    loaded, info = load_i3d(tmp_path / "i3d.pt")
    assert info["format"] == "state_dict"
    torch.testing.assert_close(loaded.Mixed_5c.b1b.conv3d.weight, net.Mixed_5c.b1b.conv3d.weight)


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="no I3D weights"):
        load_i3d(tmp_path / "missing.pt")
    torch.save({"logits.conv3d.bias": torch.zeros(400)}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="missing"):
        load_i3d(tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="at least 10"):
        preprocess(np.zeros((5, 8, 8), np.uint8), 8)
    x = preprocess(np.full((5, 8, 8), 255, np.uint8), 10)
    assert x.shape == (3, 10, 224, 224) and torch.allclose(x, torch.ones_like(x))
