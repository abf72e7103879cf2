"""The tiny random pipeline of tests/tiny_pipeline.py for the demo tests, and the demo served in its own process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ffasora.demo.examples import example_reports
from served_app import ServedApp, serve_code
from tiny_pipeline import save_tiny_pipeline

EXTRA_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "late", "leakage", "at", "the", "macula", "."]


def _vocabulary() -> list[str]:
    """Every word of the English example reports (as BERT's basic tokenizer splits them), so the tiny encoder
    knows them all."""
    from ffasora.findings import to_canonical_english

    words = dict.fromkeys(EXTRA_WORDS)
    for example in example_reports():
        text = example["report"]
        if example["lang"] != "en":  # the demo hands Chinese to this English-only encoder in translation
            text = to_canonical_english(text)
        words.update(dict.fromkeys(re.findall(r"\w+|[^\w\s]", text.lower())))
    return list(words)


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Saved tiny pipeline (tests/tiny_pipeline.py) whose encoder knows every word of the example reports."""
    root = tmp_path_factory.mktemp("demo-pipeline")
    return save_tiny_pipeline(root, steps=3, guidance=2.0, words=_vocabulary(), max_tokens=256)


@pytest.fixture(scope="session")
def variant_dir(pipeline_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline plus a variant "photo": an image-conditioned DiT, 2 sampler steps."""
    import shutil

    from ffasora.models.dit import DiT
    from ffasora.models.image_condition import image_condition_channels
    from ffasora.train.assemble import add_variant

    root = tmp_path_factory.mktemp("variants") / "pipe"
    shutil.copytree(pipeline_dir, root)
    dit = DiT.from_pretrained(root / "dit").with_image_condition(image_condition_channels(4))
    torch.manual_seed(7)
    with torch.no_grad():  # open the (zeroed) image path so that the photograph matters
        for p in dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    dit.save_pretrained(root.parent / "photo_dit")
    add_variant(root, "photo", root.parent / "photo_dit", steps=2, description="takes a fundus photograph")
    return root


def DemoServer(pipeline_dir: Path) -> ServedApp:  # noqa: N802 (kept as the name the tests use)
    """``create_app(pipeline_dir)`` of the demo (2 sampler steps) in its own process."""
    return ServedApp(serve_code("ffasora.demo.server", "create_app(sys.argv[1], steps=2)"), pipeline_dir, 90)


@pytest.fixture(scope="module")
def server(pipeline_dir: Path) -> Iterator[ServedApp]:
    running = DemoServer(pipeline_dir).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def variant_server(variant_dir: Path) -> Iterator[ServedApp]:
    """The demo of :func:`variant_dir` served in its own process."""
    running = DemoServer(variant_dir).start()
    try:
        yield running
    finally:
        running.stop()
