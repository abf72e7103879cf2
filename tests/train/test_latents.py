"""The latent cache: contents in DiT units, text states, identity, resume, refusal of mixed settings, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from latent_fixtures import REPORTS, tiny_bert, tiny_vae, write_videos

from ffasora.data.dataset import FFADataset
from ffasora.models.pretrained import weights_sha256
from ffasora.models.text import HFTextEncoder
from ffasora.train.latents import (
    encode_dataset,
    load_cached,
    load_empty_text,
    read_cache_info,
    read_cache_manifest,
)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("latents")
    return write_videos(root / "data"), tiny_bert(root / "bert")


def test_cache_holds_normalised_posteriors_and_report_states(parts, tmp_path: Path) -> None:
    data, bert = parts
    vae, encoder = tiny_vae(), HFTextEncoder(bert, max_tokens=64)
    seen: list[tuple[int, int]] = []
    info = encode_dataset(
        data, tmp_path / "cache", vae, encoder, vae_path="vae-dir", progress=lambda *a: seen.append(a)
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert info["complete"] and info["counts"] == {"train": 4} and info["latent_shape"] == [4, 2, 4, 4]
    assert info["vae"]["hash"] == weights_sha256(vae) and info["vae"]["path"] == "vae-dir"
    assert info["text_encoder"]["dim"] == 32 and len(info["text_encoder"]["hash"]) == 64

    records = read_cache_manifest(tmp_path / "cache")
    assert [r.report for r in records] == REPORTS
    item = FFADataset(data, split="train")[1]
    cached = load_cached(tmp_path / "cache", records[1])
    with torch.no_grad():
        posterior = vae.encode(item["video"][None])
    torch.testing.assert_close(cached["mean"], (posterior.mean[0] - 0.1) * 0.8)
    torch.testing.assert_close(cached["std"], posterior.std[0] * 0.8)
    states, mask = encoder.encode([REPORTS[1]])
    assert cached["text"].shape == (int(mask.sum()), 32) and cached["text_mask"].all()
    torch.testing.assert_close(cached["text"], states[0, : int(mask.sum())])
    empty, empty_mask = load_empty_text(tmp_path / "cache")
    assert empty.shape[1] == 32 and empty_mask.all() and not torch.allclose(empty[0], cached["text"][0])


def test_resume_skips_finished_videos_and_refuses_other_settings(parts, tmp_path: Path) -> None:
    data, bert = parts
    vae, encoder = tiny_vae(), HFTextEncoder(bert, max_tokens=64)
    cache = tmp_path / "cache"
    encode_dataset(data, cache, vae, encoder)
    first = (cache / "latents" / "v0.safetensors").stat().st_mtime_ns
    # an interrupted run: the last record's line is torn and one file is missing
    lines = (cache / "manifest.jsonl").read_text().splitlines()
    (cache / "manifest.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])
    (cache / "latents" / "v2.safetensors").unlink()
    calls: list[str] = []
    original = encoder.encode
    encoder.encode = lambda texts: calls.extend(texts) or original(texts)  # type: ignore[method-assign]
    encode_dataset(data, cache, vae, encoder)
    assert calls == ["", REPORTS[2], REPORTS[3]]  # only the empty report and the two lost videos
    assert (cache / "latents" / "v0.safetensors").stat().st_mtime_ns == first
    assert sorted(r.id for r in read_cache_manifest(cache)) == ["v0", "v1", "v2", "v3"]
    assert encode_dataset(data, cache, vae, encoder)["latent_shape"] == [4, 2, 4, 4]  # all skipped
    with pytest.raises(ValueError, match="other settings"):
        encode_dataset(data, cache, tiny_vae(seed=1), encoder)
    with pytest.raises(ValueError, match="other settings"):
        encode_dataset(data, cache, vae, encoder, size=16)


def test_preprocess_is_applied_before_the_encoder(parts, tmp_path: Path) -> None:
    data, bert = parts
    encoder = HFTextEncoder(bert, max_tokens=64)
    encode_dataset(data, tmp_path / "c", tiny_vae(), encoder, preprocess=lambda r: "normal disc .")
    records = read_cache_manifest(tmp_path / "c")
    assert records[0].report == REPORTS[0] and records[0].encoded_text == "normal disc ."
    a, b = (load_cached(tmp_path / "c", r)["text"] for r in records[:2])
    torch.testing.assert_close(a, b)


def test_cli_latents(parts, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ffasora.cli import app

    data, bert = parts
    tiny_vae().save_pretrained(tmp_path / "vae")
    args = ["latents", str(data), "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, [*args, "--text-encoder", str(bert), "--split", "train"])
    assert result.exit_code == 0, result.output
    info = read_cache_info(tmp_path / "cache")
    assert info["counts"] == {"train": 4} and info["text_encoder"]["spec"]["type"] == "hf"
    assert json.loads((tmp_path / "cache" / "cache.json").read_text())["vae"]["path"] == str(
        (tmp_path / "vae").resolve()
    )
    bad = CliRunner().invoke(
        app,
        ["latents", str(tmp_path / "nothing"), "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "x")],
    )
    assert bad.exit_code != 0


def test_the_pipeline_text_path_translates_only_chinese_for_english_encoders(parts) -> None:
    from ffasora.findings import to_canonical_english
    from ffasora.pipeline import report_translation

    encoder = HFTextEncoder(parts[1], max_tokens=64)
    translate = report_translation(encoder)
    assert translate is not None and translate("late leakage .") == "late leakage ."
    chinese = "右眼：造影晚期黄斑区荧光素渗漏。"
    assert translate(chinese) == to_canonical_english(chinese) != chinese
    encoder.multilingual = True
    assert report_translation(encoder) is None
