"""The video DiT: official fixture, save/load, masks, Skiparse, checkpointing, presets, FLOP count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ffasora.config import load_config
from ffasora.models.dit import DiT, DiTConfig
from ffasora.models.dit_blocks import AttentionContext, SelfAttention, skiparse_merge, skiparse_split
from ffasora.models.dit_cost import count_flops, count_params
from ffasora.models.official import KEY_TABLE, config_from_official, official_to_ours, ours_to_official
from ffasora.models.rope import rope_tables

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = ROOT / "tests" / "fixtures" / "official"
FIXTURE = OFFICIAL / "dit_a"
OFFICIAL_KEYS = OFFICIAL / "keys" / "osp_v13_dit_2B_state_dict_keys.txt"

TINY = DiTConfig(
    in_channels=4, out_channels=4, num_layers=2, num_heads=2, head_dim=18, text_dim=20, sparse_n=1
)


def _inputs(cfg: DiTConfig, b: int = 2, t: int = 2, h: int = 8, w: int = 8, length: int = 5):
    x = torch.randn(b, cfg.in_channels, t, h, w)
    text = torch.randn(b, length, cfg.text_dim)
    mask = torch.ones(b, length, dtype=torch.bool)
    mask[0, -2:] = False
    return x, torch.tensor([10.0, 700.0][:b]), text, mask


def _randomise(model: DiT) -> DiT:
    """Fresh models have zero output/cross-attention layers; give every weight a value for the tests."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("official_layout", [True, False])
def test_official_fixture_reproduces_reference_outputs(official_layout: bool) -> None:
    model = DiT.from_pretrained(FIXTURE)
    io = load_file(str(FIXTURE / "io.safetensors"))
    for prefix, out_key in (("", "output"), ("case2_", "case2_output")):
        text, text_mask = io[prefix + "encoder_hidden_states"], io[prefix + "encoder_attention_mask"]
        if not official_layout:  # our (B, L, C) / (B, L) layout
            text, text_mask = text[:, 0], text_mask[:, 0]
        hidden = io["hidden_states" if not prefix else "case2_hidden_states"]
        with torch.no_grad():
            out = model(hidden, io[prefix + "timestep"], text, text_mask, io[prefix + "attention_mask"])
        torch.testing.assert_close(out, io[out_key], atol=1e-5, rtol=0)


def test_official_config_and_keys_map_one_to_one() -> None:
    raw = json.loads((FIXTURE / "config.json").read_text())
    cfg = config_from_official(raw)
    assert (cfg.num_layers, cfg.num_heads, cfg.head_dim, cfg.text_dim, cfg.sparse_n) == (4, 2, 30, 384, 1)
    official = load_file(str(FIXTURE / "diffusion_pytorch_model.safetensors"))
    ours = official_to_ours(official)
    model_keys = set(DiT(cfg).state_dict())
    assert set(ours) == model_keys
    assert set(ours_to_official(ours)) == set(official)


def test_one_key_table_gives_both_directions() -> None:
    """Every row renames both ways (with a block index where it has one), and nothing is renamed twice."""
    for official, ours in KEY_TABLE:
        for suffix in ("weight", "bias") if official.endswith(".") else ("",):
            a, b = (name.replace("{i}", "17") + suffix for name in (official, ours))
            assert official_to_ours({a: torch.zeros(1)}).keys() == {b}
            assert ours_to_official({b: torch.zeros(1)}).keys() == {a}
    assert official_to_ours({"proj_out.weight": torch.zeros(1)}).keys() == {"proj_out.weight"}
    # a whole-key row does not rename longer keys that merely start with it
    assert ours_to_official({"final_modulation_extra": torch.zeros(1)}).keys() == {"final_modulation_extra"}


def test_official_2b_preset_matches_the_reference_state_dict() -> None:
    cfg = load_config(DiTConfig, ROOT / "configs" / "dit" / "osp_v13_2b.toml")
    with torch.device("meta"):
        model = DiT(cfg)
    ours = {k: tuple(v.shape) for k, v in ours_to_official(dict(model.state_dict())).items()}
    reference = {}
    for line in OFFICIAL_KEYS.read_text().splitlines():
        key, shape = line.split("\t")[:2]
        reference[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    assert ours == reference
    assert count_params(cfg) == sum(p.numel() for p in model.parameters())
    assert round(count_params(cfg) / 1e9, 3) == 2.772  # the measured 2.772 B of the reference


def test_official_config_rejects_what_we_do_not_implement() -> None:
    raw = {"num_attention_heads": 2, "attention_head_dim": 6, "in_channels": 8, "num_layers": 2,
           "caption_channels": 8, "patch_size": 2, "activation_fn": "gelu-approximate"}  # fmt: skip
    assert config_from_official(raw).out_channels == 8
    sparse = config_from_official(raw | {"num_layers": 32, "sparse1d": True, "sparse_n": 4})
    assert [i for i in range(32) if not sparse.is_sparse(i)] == [
        0,
        1,
        30,
        31,
    ]  # upstream: sparse iff 1 < i < 30
    assert config_from_official(raw | {"sparse1d": False, "sparse_n": 4}).sparse_n == 1
    with pytest.raises(ValueError, match="patch_size_t"):
        config_from_official(raw | {"patch_size_t": 2})
    with pytest.raises(ValueError, match="activation_fn"):
        config_from_official(raw | {"activation_fn": "geglu"})
    with pytest.raises(ValueError, match="unsupported"):
        config_from_official(raw | {"use_rope": True})


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = DiTConfig(**{**TINY.to_dict(), "rope_scale": (2.0, 1.0, 1.0), "sparse_n": 2, "dense_first": 1})
    model = _randomise(DiT(cfg))
    model.save_pretrained(tmp_path / "dit")
    loaded = DiT.from_pretrained(tmp_path / "dit")
    assert loaded.config == cfg
    x, t, text, mask = _inputs(cfg)
    with torch.no_grad():
        assert torch.equal(loaded(x, t, text, mask), model(x, t, text, mask))


def test_loading_names_every_mismatched_key(tmp_path: Path) -> None:
    model = DiT(TINY)
    model.save_pretrained(tmp_path / "dit")
    weights = load_file(str(tmp_path / "dit" / "model.safetensors"))
    weights.pop("blocks.1.mlp.fc2.bias")
    weights["blocks.0.extra"] = torch.zeros(1)
    save_file(weights, str(tmp_path / "dit" / "model.safetensors"))
    with pytest.raises(ValueError, match=r"blocks\.1\.mlp\.fc2\.bias(.|\n)*blocks\.0\.extra"):
        DiT.from_pretrained(tmp_path / "dit")


def test_masked_text_tokens_and_padding_length_do_not_matter() -> None:
    torch.manual_seed(1)
    model = _randomise(DiT(TINY))
    x, t, text, mask = _inputs(TINY)
    with torch.no_grad():
        ref = model(x, t, text, mask)
        changed = text.clone()
        changed[0, -2:] += 5.0
        assert torch.equal(model(x, t, changed, mask), ref)
        padded = torch.cat([text, torch.randn(2, 3, TINY.text_dim)], dim=1)
        padded_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
        torch.testing.assert_close(model(x, t, padded, padded_mask), ref, atol=1e-6, rtol=0)
        assert not torch.allclose(model(x, t + 1, text, mask), ref)  # the timestep path is live


def test_batch_items_are_independent_and_shapes_are_checked() -> None:
    torch.manual_seed(2)
    model = _randomise(DiT(TINY))
    x, t, text, mask = _inputs(TINY)
    with torch.no_grad():
        both = model(x, t, text, mask)
        one = model(x[1:], t[1:], text[1:], mask[1:])
    assert both.shape == x.shape
    torch.testing.assert_close(both[1:], one, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(1, 4, 1, 7, 8), t[:1], text[:1])
    with pytest.raises(ValueError, match="text_states"):
        model(x, t, torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="multiple of 6"):
        DiTConfig(head_dim=32)


@pytest.mark.parametrize("group", [False, True])
def test_skiparse_split_is_a_permutation_and_merge_inverts_it(group: bool) -> None:
    k, s = 3, 18
    x = torch.arange(2 * s).reshape(2, s).float()
    parts = skiparse_split(x, k, group)
    assert parts.shape == (k * 2, s // k)
    assert torch.equal(skiparse_merge(parts, k, group), x)
    batch0 = parts.reshape(k, 2, s // k)[:, 0]  # subset-major: row = subset * B + sample
    assert sorted(batch0.flatten().long().tolist()) == list(range(s))
    first_subset = parts[0].long().tolist()  # batch 0, subset 0
    expected = [i for i in range(s) if (i // k if group else i) % k == 0]
    assert first_subset == expected


@pytest.mark.parametrize(("group", "grid"), [(False, (2, 3, 3)), (True, (2, 3, 3)), (True, (1, 4, 4))])
def test_skiparse_attention_equals_dense_attention_restricted_to_subsets(group, grid) -> None:
    torch.manual_seed(3)
    k, dim, heads = 2, 24, 2
    s = grid[0] * grid[1] * grid[2]  # 18 needs padding to 20; 16 does not
    sparse = SelfAttention(dim, heads, bias=True, sparse_n=k, sparse_group=group)
    dense = SelfAttention(dim, heads, bias=True)
    dense.load_state_dict(sparse.state_dict())
    cos, sin = rope_tables(grid, dim // heads)
    x = torch.randn(2, s, dim)
    key_bias = torch.zeros(2, s)
    key_bias[1, -3:] = -10000.0  # a masked video tail, rearranged together with the tokens
    idx = torch.arange(s)
    subset = (idx // k if group else idx) % k
    allowed = subset[:, None] == subset[None, :]
    with torch.no_grad():
        out = sparse(x, AttentionContext(cos, sin, key_bias, None))
        restricted = torch.where(allowed, 0.0, -10000.0)[None] + key_bias[:, None, :]  # (B, S, S)
        ref = _dense_with_bias(dense, x, cos, sin, restricted)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        one = SelfAttention(dim, heads, bias=True, sparse_n=1)
        one.load_state_dict(sparse.state_dict())
        full = one(x, AttentionContext(cos, sin, key_bias, None))
        assert not torch.allclose(out, full, atol=1e-3)  # sparsity really changes who sees whom


def _dense_with_bias(attn: SelfAttention, x, cos, sin, bias) -> torch.Tensor:
    from ffasora.models.rope import apply_rope

    q = apply_rope(attn.q(x).unflatten(-1, (attn.heads, -1)), cos, sin).transpose(1, 2)
    k = apply_rope(attn.k(x).unflatten(-1, (attn.heads, -1)), cos, sin).transpose(1, 2)
    v = attn.v(x).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias[:, None])
    return attn.out(out.transpose(1, 2).flatten(2))


def test_sparse_ratio_one_is_full_attention() -> None:
    torch.manual_seed(4)
    dense = _randomise(DiT(TINY))
    same = DiT(DiTConfig(**{**TINY.to_dict(), "sparse_n": 1, "dense_first": 0, "dense_last": 0}))
    same.load_state_dict(dense.state_dict())
    x, t, text, mask = _inputs(TINY)
    with torch.no_grad():
        assert torch.equal(same(x, t, text, mask), dense(x, t, text, mask))


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(5)
    cfg = DiTConfig(**{**TINY.to_dict(), "sparse_n": 2, "dense_first": 1, "dense_last": 0})
    model = _randomise(DiT(cfg)).train()
    x, t, text, mask = _inputs(cfg)
    grads = []
    for enabled in (False, True):
        model.zero_grad()
        model.set_gradient_checkpointing(enabled)
        model(x, t, text, mask).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("sparse_n", [1, 3])
def test_count_flops_matches_torch_flop_counter(sparse_n: int) -> None:
    cfg = DiTConfig(**{**TINY.to_dict(), "num_layers": 4, "sparse_n": sparse_n, "dense_first": 1})
    model = DiT(cfg)
    x, t, text, mask = _inputs(cfg, b=1, t=3, h=10, w=6, length=7)  # 45 tokens: Skiparse pads to 54
    # The math backend decomposes attention into counted matmuls (the fused CPU kernel is not counted).
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, t[:1], text, mask[:1])
    assert counter.get_total_flops() == count_flops(cfg, 3, 10, 6, 7)


@pytest.mark.parametrize("name", ["small", "base", "osp_v13_2b"])
def test_presets_load(name: str) -> None:
    cfg = load_config(DiTConfig, ROOT / "configs" / "dit" / f"{name}.toml")
    assert cfg.head_dim % 6 == 0
    if name == "small":
        assert (cfg.text_dim, cfg.in_channels) == (384, 8)
        assert count_params(cfg) < 30e6


def test_fresh_model_predicts_zero_but_trains() -> None:
    torch.manual_seed(6)
    model = DiT(TINY)
    x, t, text, mask = _inputs(TINY)
    out = model(x, t, text, mask)
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised output projection (PixArt-alpha)
    out.sub(x).square().mean().backward()
    assert model.proj_out.weight.grad is not None and model.proj_out.weight.grad.abs().sum() > 0


def test_official_training_checkpoint_loads_its_ema_weights(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text((FIXTURE / "config.json").read_text())
    official = load_file(str(FIXTURE / "diffusion_pytorch_model.safetensors"))
    noisy = {f"module.{k}": v + 1.0 for k, v in official.items()}
    torch.save({"state_dict": noisy, "ema_state_dict": {f"module.{k}": v for k, v in official.items()}},
               folder / "checkpoint.ckpt")  # fmt: skip
    model = DiT.from_pretrained(folder)
    reference = DiT.from_pretrained(FIXTURE)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_official_folder_round_trip_is_exact(tmp_path: Path) -> None:
    model = DiT.from_pretrained(FIXTURE)
    model.save_official(tmp_path / "official")
    original = load_file(str(FIXTURE / "diffusion_pytorch_model.safetensors"))
    written = load_file(str(tmp_path / "official" / "diffusion_pytorch_model.safetensors"))
    assert written.keys() == original.keys()
    assert all(torch.equal(written[k], original[k]) for k in original)
    raw = json.loads((FIXTURE / "config.json").read_text())
    ours = json.loads((tmp_path / "official" / "config.json").read_text())
    assert config_from_official(ours) == config_from_official(raw)
    assert {k: ours[k] for k in ours if k in raw} == {k: raw[k] for k in ours if k in raw}
    assert not list((tmp_path / "official").glob("*.tmp"))  # written through the atomic folder writer


def test_official_layout_refuses_configs_upstream_cannot_express(tmp_path: Path) -> None:
    cfg = DiTConfig(**{**TINY.to_dict(), "sparse_n": 2, "dense_first": 1})
    with pytest.raises(ValueError, match="dense_first"):
        DiT(cfg).save_official(tmp_path / "x")
    with pytest.raises(ValueError, match="no image stream"):
        DiT(DiTConfig(**{**TINY.to_dict(), "image_channels": 24})).save_official(tmp_path / "y")
    assert not (tmp_path / "y").exists()
    sparse = DiTConfig(
        **{**TINY.to_dict(), "num_layers": 3, "sparse_n": 2, "dense_first": 2, "dense_last": 0}
    )
    model = _randomise(DiT(sparse))
    model.save_official(tmp_path / "ok")
    loaded = DiT.from_pretrained(tmp_path / "ok")
    assert loaded.config == sparse
    x, t, text, mask = _inputs(sparse)
    with torch.no_grad():
        assert torch.equal(loaded(x, t, text, mask), model(x, t, text, mask))


SKIPARSE_FIXTURE = Path(__file__).parent / "fixtures" / "dit_skiparse"


@pytest.mark.parametrize("case", ["case1", "case2"])
def test_official_skiparse_fixture_reproduces_reference_outputs(case: str) -> None:
    model = DiT.from_pretrained(SKIPARSE_FIXTURE)
    assert [i for i in range(4) if model.config.is_sparse(i)] == [2, 3]
    io = load_file(str(SKIPARSE_FIXTURE / "io.safetensors"))
    with torch.no_grad():
        out = model(
            io[f"{case}_hidden_states"],
            io[f"{case}_timestep"],
            io[f"{case}_encoder_hidden_states"],
            io[f"{case}_encoder_attention_mask"],
            io[f"{case}_attention_mask"],
        )
    torch.testing.assert_close(out, io[f"{case}_output"], atol=1e-5, rtol=0)
