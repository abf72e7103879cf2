"""Model-folder reading and strict loading, independent of any particular model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ffasora.models.pretrained import build_and_load, read_state_dict, save_model_folder


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.register_buffer("taps", torch.tensor([0.5, -0.5]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) * self.taps.sum()


def test_round_trip_through_our_folder(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    save_model_folder(model, {"width": 4}, tmp_path / "m")
    loaded = build_and_load(Tiny, read_state_dict(tmp_path / "m"))
    assert torch.equal(loaded.proj.weight, model.proj.weight)
    assert torch.equal(loaded.taps, model.taps)  # non-persistent buffer rebuilt, not left on meta
    x = torch.randn(2, 3)
    assert torch.equal(loaded(x), model(x))


def test_sixteen_bit_file_loads_into_fp32_model(tmp_path):
    model = Tiny()
    save_model_folder(model, {}, tmp_path / "m", dtype=torch.bfloat16)
    loaded = build_and_load(Tiny, read_state_dict(tmp_path / "m"))
    assert loaded.proj.weight.dtype == torch.float32
    assert torch.allclose(loaded.proj.weight, model.proj.weight, atol=1e-2)


def test_official_ckpt_prefers_ema_and_strips_module(tmp_path):
    model = Tiny()
    folder = tmp_path / "official"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    ema = {f"module.{k}": v + 1 for k, v in model.state_dict().items()}
    torch.save({"state_dict": model.state_dict(), "ema_state_dict": ema}, folder / "last.ckpt")
    sd = read_state_dict(folder)
    assert set(sd) == {"proj.weight", "proj.bias"}
    assert torch.equal(sd["proj.bias"], model.proj.bias + 1)


def test_mismatches_are_all_named(tmp_path):
    sd = Tiny().state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["proj.bias"]
    sd["proj.weight"] = torch.zeros(5, 3)
    with pytest.raises(ValueError) as err:
        build_and_load(Tiny, sd, source="test.ckpt")
    message = str(err.value)
    assert "proj.bias" in message and "extra.weight" in message and "(5, 3)" in message


def test_missing_folder_and_weights_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_state_dict(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no weights found"):
        read_state_dict(tmp_path / "empty")


@pytest.mark.parametrize("damage", ["empty", "truncated"])
@pytest.mark.parametrize("name", ["model.safetensors", "last.ckpt"])
def test_damaged_weight_files_are_named(tmp_path, name, damage):
    folder = tmp_path / "m"
    folder.mkdir()
    if name.endswith(".safetensors"):
        save_model_folder(Tiny(), {}, folder)
    else:
        torch.save({"ema_state_dict": Tiny().state_dict()}, folder / name)
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{name}: cannot read the weights .*damaged or truncated"):
        read_state_dict(folder)


def test_damaged_config_is_named(tmp_path):
    from ffasora.models.pretrained import read_config

    (tmp_path / "config.json").write_text('{"width": ')
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON"):
        read_config(tmp_path)
