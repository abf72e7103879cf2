from dataclasses import dataclass, field

import pytest

from ffasora.config import load_config, to_dict


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-4
    betas: tuple[float, ...] = (0.9, 0.999)


@dataclass(frozen=True)
class Run:
    name: str = "x"
    steps: int = 10
    optim: Optim = field(default_factory=Optim)


def test_preset_and_overrides(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('name = "tiny"\n[optim]\nlr = 3e-4\n')
    cfg = load_config(Run, preset, ["steps=5", "optim.betas=[0.8, 0.9]"])
    assert cfg == Run(name="tiny", steps=5, optim=Optim(lr=3e-4, betas=(0.8, 0.9)))
    assert to_dict(cfg)["optim"]["betas"] == [0.8, 0.9]


def test_unknown_key_names_its_full_path(tmp_path):
    with pytest.raises(ValueError, match="optim.lrr"):
        load_config(Run, None, ["optim.lrr=1"])


def test_wrong_type_is_refused():
    with pytest.raises(ValueError, match="steps"):
        load_config(Run, None, ["steps='many'"])


def test_missing_preset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_config(Run, tmp_path / "nope.toml")
