"""Start a DiT with smaller latent patches from a trained one (docs/bundled-model.md, stage 5).

    .venv/bin/python scripts/bundled_model/repatch_dit.py pretrained/dit --patch 2 --out runs/dit_p2_init

The transformer blocks, text and timestep paths are copied unchanged. The patch embedding and output
projection are folded so that the new model starts close to the old one on smooth latents: each new
embedding tap is the sum of the old taps it replaces (same response to a constant patch) and each new output
row is the mean of the old rows it replaces. RoPE positions are divided by the same factor as the patch, so a
token still sees its neighbours at the distances the old model learned. ``--layers`` appends blocks that start
as the identity (copies of the last block with their output projections zeroed). ``--channels`` moves the DiT
to the latents of a new VAE with another channel count: everything but the patch embedding and the output
projection is kept. Fine-tune the result with
``ffasora train dit --set init=OUT`` and a [model] section matching OUT/config.json.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from ffasora.models.dit import DiT


def rechannel(old: DiT, channels: int) -> DiT:
    """A DiT like ``old`` for latents of ``channels`` channels (a new VAE): every block, the text and timestep
    paths are copied; the patch embedding and output projection, whose shapes change, start as a fresh DiT's
    (the output projection at zero, so the model starts by predicting nothing rather than noise)."""
    config = dataclasses.replace(old.config, in_channels=channels, out_channels=channels)
    new = DiT(config)
    fresh = new.state_dict()
    state = {n: v.float() for n, v in old.state_dict().items()}
    for name in ("patch_embed.weight", "patch_embed.bias", "proj_out.weight", "proj_out.bias"):
        state[name] = fresh[name]
    new.load_state_dict(state, strict=True)
    return new


def repatch(old: DiT, patch: int, layers: int | None = None) -> DiT:
    """A DiT like ``old`` with ``patch`` x ``patch`` latent patches (``old``'s patch must be a multiple) and
    ``layers`` blocks (at least ``old``'s; the added ones start as the identity)."""
    p_old = old.config.patch_size
    if patch < 1 or p_old % patch:
        raise ValueError(f"patch {patch} must divide the old patch size {p_old}")
    k = p_old // patch
    scale = old.config.rope_scale
    n_old = old.config.num_layers
    layers = layers or n_old
    if layers < n_old:
        raise ValueError(f"layers {layers}: cannot drop blocks of the old model ({n_old})")
    rope = (scale[0], scale[1] * k, scale[2] * k)
    config = dataclasses.replace(old.config, patch_size=patch, rope_scale=rope, num_layers=layers)
    new = DiT(config)
    state = {n: v.float() for n, v in old.state_dict().items()}
    last = f"blocks.{n_old - 1}."
    for i in range(n_old, layers):  # copies of the last block whose output projections are zero: identity
        for name, value in list(state.items()):
            if name.startswith(last):
                rest = name[len(last) :]
                zero = rest.startswith(("self_attn.out.", "cross_attn.out.", "mlp.fc2."))
                state[f"blocks.{i}.{rest}"] = torch.zeros_like(value) if zero else value.clone()
    d, c = config.hidden_size, config.out_channels

    w = state["patch_embed.weight"].reshape(d, config.in_channels, k, patch, k, patch)
    state["patch_embed.weight"] = w.sum(dim=(2, 4))  # (D, C, p, p)

    rows = state["proj_out.weight"].reshape(k, patch, k, patch, c, d)  # (p_h, p_w, c) split into k x p each
    state["proj_out.weight"] = rows.mean(dim=(0, 2)).reshape(patch * patch * c, d)
    bias = state["proj_out.bias"].reshape(k, patch, k, patch, c)
    state["proj_out.bias"] = bias.mean(dim=(0, 2)).reshape(-1)

    new.load_state_dict(state, strict=True)
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dit", type=Path, help="trained DiT folder")
    parser.add_argument("--patch", type=int, default=2, help="latent patch size of the new model")
    parser.add_argument(
        "--layers", type=int, default=None, help="blocks in the new model [default: the old count]"
    )
    parser.add_argument(
        "--channels", type=int, default=None, help="latent channels of a new VAE [default: the old count]"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    new = DiT.from_pretrained(args.dit, dtype=torch.float32)
    if args.patch != new.config.patch_size or args.layers:
        new = repatch(new, args.patch, args.layers)
    if args.channels and args.channels != new.config.in_channels:
        new = rechannel(new, args.channels)
    new.save_pretrained(args.out, dtype=torch.float32)
    print(
        f"{args.out}: patch {args.patch}, {new.config.num_layers} layers, rope_scale {list(new.config.rope_scale)}"
    )


if __name__ == "__main__":
    main()
