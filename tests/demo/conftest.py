"""A tiny random pipeline folder for the demo tests (5x32x32 clips), and the demo served in its own process."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ffasora.demo.examples import example_reports

EXTRA_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "late", "leakage", "at", "the", "macula", "."]


def _vocabulary() -> list[str]:
    """Every word of the English example reports (as BERT's basic tokenizer splits them), so the tiny encoder
    knows them all."""
    import ffasora.findings

    translate = getattr(ffasora.findings, "to_canonical_english", None)
    words = dict.fromkeys(EXTRA_WORDS)
    for example in example_reports():
        text = example["report"]
        if example["lang"] != "en":  # the demo hands Chinese to this English-only encoder in translation
            if translate is None:
                continue
            text = translate(text)
        words.update(dict.fromkeys(re.findall(r"\w+|[^\w\s]", text.lower())))
    return list(words)


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Saved tiny pipeline: 2-layer BERT (width 32), WF-VAE (base 8, 4 latent channels), DiT (2 x 24)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from ffasora.diffusion import DiffusionConfig
    from ffasora.models.dit import DiT, DiTConfig
    from ffasora.models.text import HFTextEncoder
    from ffasora.models.vae import WFVAE, WFVAEConfig
    from ffasora.pipeline import FFASoraPipeline, PipelineConfig, TextEncoderSpec

    root = tmp_path_factory.mktemp("demo-pipeline")
    words = _vocabulary()
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64, max_position_embeddings=256)
    )  # fmt: skip
    bert.save_pretrained(root / "text_encoder")
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(root / "text_encoder")
    vae = WFVAE(
        WFVAEConfig(latent_dim=4, base_channels=8, encoder_energy_flow_hidden_size=8,
                    decoder_energy_flow_hidden_size=8, in_channels=1)
    )  # fmt: skip
    dit = DiT(
        DiTConfig(
            in_channels=4, out_channels=4, num_layers=2, num_heads=2, head_dim=12, text_dim=32, sparse_n=1
        )
    )
    with torch.no_grad():  # a fresh DiT outputs 0; make the output depend on the weights
        for p in dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    config = PipelineConfig(
        diffusion=DiffusionConfig(steps=3, guidance=2.0),
        text_encoder=TextEncoderSpec(type="hf", path="text_encoder", max_tokens=256),
        num_frames=5,
        height=32,
        width=32,
    )
    encoder = HFTextEncoder(root / "text_encoder", max_tokens=256)
    FFASoraPipeline(vae, dit, encoder, config).save_pretrained(root)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVE = (
    "import sys, uvicorn; from ffasora.demo.server import create_app; "
    "uvicorn.run(create_app(sys.argv[1], steps=2), host='127.0.0.1', port=int(sys.argv[2]), access_log=False, "
    "log_level='warning')"
)


class DemoServer:
    """``create_app(pipeline_dir)`` under uvicorn in its own process on 127.0.0.1."""

    def __init__(self, pipeline_dir: Path) -> None:
        self.pipeline_dir, self.port = pipeline_dir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DemoServer:
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(self.pipeline_dir), str(self.port)])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"demo server exited with {self.proc.returncode}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("demo server did not start within 90 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture(scope="module")
def server(pipeline_dir: Path) -> Iterator[DemoServer]:
    running = DemoServer(pipeline_dir).start()
    try:
        yield running
    finally:
        running.stop()
