"""LPIPS plumbing with random trunk and heads in the torchvision / lpips file layouts (no weights ship)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffasora.evaluate.lpips import LPIPS, load_lpips, paired_lpips


def _files(tmp_path, net: str):
    torch.manual_seed(0)
    model = LPIPS(net)
    trunk = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    trunk["classifier.1.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier too
    heads = {f"lin{k}.model.1.weight": lin.weight.abs().detach() for k, lin in enumerate(model.lins)}
    torch.save(trunk, tmp_path / "trunk.pth")
    torch.save(heads, tmp_path / "heads.pth")
    return tmp_path / "trunk.pth", tmp_path / "heads.pth"


def test_alexnet_keys_match_torchvision():
    keys = set(LPIPS("alex").state_dict())
    assert {"features.0.weight", "features.3.bias", "features.10.weight", "lins.4.weight"} <= keys
    assert {"features.28.weight"} <= set(LPIPS("vgg").state_dict())


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_loaded_lpips_is_zero_on_identity_and_grows_with_noise(tmp_path, net):
    model, info = load_lpips(*_files(tmp_path, net), net=net)
    assert info["net"] == net and len(info["trunk_sha256"]) == 64
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (5, 32, 32)).astype(np.uint8)
    noisy = [np.clip(video + rng.normal(0, s, video.shape), 0, 255).astype(np.uint8) for s in (5, 60)]
    assert paired_lpips(model, video, video, 5, 32) == pytest.approx(0.0, abs=1e-7)
    assert 0 < paired_lpips(model, noisy[0], video, 5, 32) < paired_lpips(model, noisy[1], video, 5, 32)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="trunk"):
        load_lpips(tmp_path / "a.pth", tmp_path / "b.pth")
