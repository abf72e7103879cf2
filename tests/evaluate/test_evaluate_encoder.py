"""The in-domain encoder: shapes, labels, training lowers the loss, model folder round trip."""

from __future__ import annotations

import torch

from ffasora.evaluate.encoder import (
    EncoderConfig,
    TrainConfig,
    VideoEncoder,
    labels_for,
    load_encoder,
    nt_xent,
    run_encoder,
    save_encoder,
    train_encoder,
)

CFG = EncoderConfig(frames=5, size=32, width=8, codes=("MA", "NPA", "NORMAL"))


def test_forward_shapes():
    torch.manual_seed(0)
    out = VideoEncoder(CFG)(torch.rand(2, 1, 5, 32, 32) * 2 - 1)
    assert out["features"].shape == (2, CFG.feature_dim)
    assert out["findings"].shape == (2, 3) and out["onset"].shape == (2, 3, len(CFG.phases))


def test_labels_and_contrastive_loss():
    y, onset = labels_for(CFG, [["MA", "UNKNOWN"], []], [{"MA": "arterial"}, {}])
    assert y.tolist() == [[1, 0, 0], [0, 0, 0]]
    assert onset[0, 0] == CFG.phases.index("arterial") and (onset[1] == -100).all()
    z = torch.randn(4, 8)
    assert nt_xent(z, z, 0.1) < nt_xent(z, torch.randn(4, 8), 0.1)  # matching views are the easy positives


def test_training_lowers_the_loss_and_round_trips(tmp_path):
    torch.manual_seed(0)
    clips = torch.rand(12, 1, 5, 32, 32) * 2 - 1
    clips[:6] *= 0.2  # two visually distinct classes
    codes = [["MA"]] * 6 + [["NORMAL"]] * 6
    model, losses = train_encoder(clips, codes, [{}] * 12, CFG, TrainConfig(epochs=4, batch_size=6))
    assert losses[-1] < losses[0]
    save_encoder(model, tmp_path / "enc", {"trained_on": {"n_train": 12}})
    loaded, raw = load_encoder(tmp_path / "enc")
    assert raw["trained_on"] == {"n_train": 12} and loaded.config == CFG
    a, b = run_encoder(model, clips), run_encoder(loaded, clips)
    for key in a:
        torch.testing.assert_close(torch.from_numpy(a[key]), torch.from_numpy(b[key]))
