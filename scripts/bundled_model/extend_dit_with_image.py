"""Extend the bundled report-only DiT with an image condition (the starting point of image fine-tuning).

    .venv/bin/python scripts/bundled_model/extend_dit_with_image.py --dit pretrained/dit --vae pretrained/vae \
        --out runs/dit_image_init

Every weight of the parent is kept; the new image stream (patch embedding + zero linear) makes the extended
model compute exactly what its parent does until training opens it. The image channels are the VAE's: three
colour channels of ``latent_dim`` each (:mod:`ffasora.models.image_condition`). The printed line is the
``--set model.image_channels=...`` the training preset needs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ffasora.models.dit import DiT
from ffasora.models.image_condition import image_condition_channels
from ffasora.models.vae import WFVAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dit", type=Path, default=Path("pretrained/dit"))
    parser.add_argument("--vae", type=Path, default=Path("pretrained/vae"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    parent = DiT.from_pretrained(args.dit, dtype=torch.float32)
    channels = image_condition_channels(WFVAE.from_pretrained(args.vae).config.latent_dim)
    parent.with_image_condition(channels).save_pretrained(args.out)
    print(f"wrote {args.out}; train with --set model.image_channels={channels}")


if __name__ == "__main__":
    main()
