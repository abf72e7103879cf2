"""Text encoders: the interface, long and Chinese reports without loss, T5 encoder-only loading, MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ffasora.models.text import HFTextEncoder, TextEncoder, default_text_encoder, split_sentences

WORDS = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", ";", "the", "optic", "disc", "is", "normal",
    "leakage", "at", "macula", "late", "phase", "in", "early", "no", "capillary", "non", "perfusion",
    "视", "盘", "正", "常", "。", "黄", "斑", "渗", "漏", "晚", "期", "无", "灌", "注", "区",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random 2-layer BERT and a random 2-layer T5 encoder with an EN+ZH word vocabulary, saved locally."""
    from transformers import BertConfig, BertModel, BertTokenizer, T5Config, T5EncoderModel

    root = tmp_path_factory.mktemp("encoders")
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)})
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64,
        )
    )  # fmt: skip
    t5 = T5EncoderModel(
        T5Config(vocab_size=len(WORDS), d_model=24, d_kv=12, d_ff=48, num_layers=2, num_heads=2)
    )
    for name, model in (("bert", bert), ("t5", t5)):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return {"bert": root / "bert", "t5": root / "t5"}


LONG_EN = " ".join(
    ["The optic disc is normal.", "Leakage at the macula in late phase.", "No capillary non perfusion."] * 4
)
LONG_ZH = "视盘正常。黄斑渗漏。晚期无灌注区。" * 4


def test_split_sentences_handles_english_chinese_and_line_breaks() -> None:
    assert split_sentences("A b. C d!\nE;  视盘正常。黄斑渗漏") == [
        "A b.",
        "C d!",
        "E;",
        "视盘正常。",
        "黄斑渗漏",
    ]


def test_short_reports_batch_with_padding_and_mask(tiny_folders) -> None:
    enc = HFTextEncoder(tiny_folders["bert"])
    assert isinstance(enc, TextEncoder)
    assert (enc.dim, enc.window) == (32, 64)  # window from the position table
    states, mask = enc.encode(["the optic disc is normal.", "leakage", ""])
    assert states.shape == (3, 8, 32) and states.dtype == torch.float32
    assert mask.sum(1).tolist() == [8, 3, 2]  # [CLS] + 6 words + [SEP]; an empty report keeps its specials
    assert torch.all(states[~mask] == 0)
    alone, _ = enc.encode(["leakage"])
    torch.testing.assert_close(states[1, :3], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("report", [LONG_EN, LONG_ZH], ids=["english", "chinese"])
def test_long_report_is_encoded_piece_by_piece_without_loss(tiny_folders, report: str) -> None:
    enc = HFTextEncoder(tiny_folders["bert"], window=16)
    content = enc._ids(report)
    assert len(content) > 16 and enc.tokenizer.unk_token_id not in content
    pieces = enc.pieces(report)
    assert len(pieces) > 1 and all(len(p) <= 16 for p in pieces)
    inner = [t for p in pieces for t in p[1:-1]]
    assert inner == content  # every token once, in order; specials around each piece
    states, mask = enc.encode([report])
    assert int(mask.sum()) == len(content) + 2 * len(pieces)
    expected = torch.cat([enc._run([p])[0] for p in pieces])
    torch.testing.assert_close(states[0], expected, atol=1e-5, rtol=0)
    # the last sentence still reaches the states (under truncation it would be gone)
    last = split_sentences(report)[-1]
    changed, _ = enc.encode([report[: report.rfind(last)] + ("黄斑渗漏。" if "。" in last else "leakage.")])
    assert not torch.allclose(changed[0, -2], states[0, -2])


def test_over_long_sentence_is_cut_into_window_runs(tiny_folders) -> None:
    enc = HFTextEncoder(tiny_folders["bert"], window=8)
    sentence = " ".join(["leakage"] * 20) + "."
    pieces = enc.pieces(sentence)
    assert [len(p) for p in pieces] == [8, 8, 8, 5]  # 21 content tokens in runs of 6, plus [CLS]/[SEP]
    assert [t for p in pieces for t in p[1:-1]] == enc._ids(sentence)


def test_too_many_tokens_raise_instead_of_truncating(tiny_folders) -> None:
    enc = HFTextEncoder(tiny_folders["bert"], window=16, max_tokens=20)
    with pytest.raises(ValueError, match="max_tokens=20"):
        enc.encode(["leakage", LONG_EN])
    enc.max_tokens = 1000
    assert enc.encode([LONG_EN])[1].sum() > 20


def test_unknown_script_is_refused_unless_translated(tiny_folders) -> None:
    enc = HFTextEncoder(tiny_folders["bert"])
    with pytest.raises(ValueError, match="unknown"):
        enc.encode(["网膜出血"])  # characters outside the vocabulary
    translate = {"网膜出血": "leakage at the macula."}
    enc = HFTextEncoder(tiny_folders["bert"], preprocess=lambda r: translate.get(r, r))
    states, _ = enc.encode(["网膜出血"])
    direct, _ = enc.encode(["leakage at the macula."])
    assert torch.equal(states, direct)


def test_t5_folder_loads_encoder_only(tiny_folders) -> None:
    enc = HFTextEncoder(tiny_folders["t5"], window=12)
    assert enc.model_type == "t5" and enc.dim == 24
    assert type(enc.model).__name__ == "T5EncoderModel"
    states, mask = enc.encode([LONG_ZH, "黄斑渗漏。"])
    assert states.shape[-1] == 24 and mask[1].sum() == 7  # 5 characters + 2 specials
    assert torch.isfinite(states).all()


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config.json"):
        HFTextEncoder(tmp_path)


def test_default_minilm_encoder_is_offline_and_token_level() -> None:
    enc = default_text_encoder()
    assert (enc.dim, enc.window, enc.multilingual) == (384, 256, False)
    states, mask = enc.encode(["Late-phase hyperfluorescence at the macula.", "Normal optic disc."])
    assert states.shape[0] == 2 and states.shape[-1] == 384
    assert mask[0].sum() > mask[1].sum() > 2
    assert states[0, 1].norm() > 0 and not torch.allclose(states[0, 1], states[0, 2])  # per token, not pooled
