"""The DiT's optional image condition: additive to the text-only model, dropout-aware, saved with its config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ffasora.models.dit import DiT, DiTConfig

BUNDLED = Path(__file__).resolve().parents[2] / "src" / "ffasora" / "pretrained" / "dit"
TINY = DiTConfig(
    in_channels=4, out_channels=4, num_layers=2, num_heads=2, head_dim=12, text_dim=16, sparse_n=1
)


def _inputs(cfg: DiTConfig, b: int = 2, t: int = 2, hw: int = 4) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, cfg.in_channels, t, hw, hw, generator=g)
    text = torch.randn(b, 5, cfg.text_dim, generator=g)
    return x, torch.tensor([10.0, 700.0][:b]), text, torch.ones(b, 5, dtype=torch.bool)


def test_bundled_dit_loads_unchanged_and_extends_without_changing_its_output() -> None:
    model = DiT.from_pretrained(BUNDLED).eval()
    assert model.image_embed is None and model.config.image_channels == 0
    # a text-only model's config still reads exactly as the file on disk
    assert model.config.to_dict() == json.loads((BUNDLED / "config.json").read_text())
    x, t, text, mask = _inputs(model.config)
    image = torch.randn(2, 24, 1, 4, 4)
    with torch.no_grad():
        reference = model(x, t, text, mask)
        extended = model.with_image_condition(24).eval()
        assert extended.config.image_channels == 24
        assert torch.equal(extended(x, t, text, mask), reference)
        assert torch.equal(extended(x, t, text, mask, image=image), reference)  # zero path: same output
    with pytest.raises(ValueError, match="no image condition"):
        model(x, t, text, mask, image=image)


def test_image_path_conditions_and_drops_per_sample(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DiT(TINY).with_image_condition(6).eval()
    assert model.image_embed is not None
    for weight in (model.image_embed.out.weight, model.proj_out.weight):  # as if trained
        torch.nn.init.normal_(weight, std=0.2)
    x, t, text, mask = _inputs(TINY)
    image = torch.randn(2, 6, 1, 4, 4)
    with torch.no_grad():
        none = model(x, t, text, mask)
        both = model(x, t, text, mask, image=image)
        dropped = model(x, t, text, mask, image=image, image_given=torch.tensor([False, False]))
        mixed = model(x, t, text, mask, image=image, image_given=torch.tensor([True, False]))
        other = model(x, t, text, mask, image=torch.randn(2, 6, 1, 4, 4))
    assert not torch.allclose(both, none, atol=1e-4)
    assert not torch.allclose(both, other, atol=1e-4)  # the image's content matters, not only its presence
    assert torch.allclose(dropped, none, atol=1e-6)  # a dropped image is no image
    assert torch.allclose(mixed[0], both[0], atol=1e-6) and torch.allclose(mixed[1], none[1], atol=1e-6)
    with pytest.raises(ValueError, match="image latents"):
        model(x, t, text, mask, image=torch.randn(2, 5, 1, 4, 4))
    with pytest.raises(ValueError, match="do not fit"):
        model(x, t, text, mask, image=torch.randn(2, 6, 1, 2, 2))
    # the image channels travel with the weights
    model.save_pretrained(tmp_path / "dit")
    loaded = DiT.from_pretrained(tmp_path / "dit").eval()
    assert loaded.config.image_channels == 6
    with torch.no_grad():
        assert torch.equal(loaded(x, t, text, mask, image=image), both)
