"""Membership inference: from the generated videos alone, can an attacker tell training eyes from fresh ones?

Two distance attacks, both scored by ROC AUC (0.5: no signal) with a bootstrap CI and the TPR at 1 % FPR
(Carlini et al. 2022, "Membership inference attacks from first principles": the low-FPR end is what counts):

- **nearest**: a candidate's similarity to its nearest generated video (GAN-Leaks' full black-box attack,
  Chen et al. CCS 2020; Hilprecht et al. PETS 2019). A memorising generator's samples lie on its training eyes.
- **own report**: a candidate's similarity to the video generated from its own report. A conditional
  generator asked for a training report may reproduce that eye; asked for a held-out report it cannot.

Members are the generator's training videos, non-members held-out real videos, each with a video generated
from its report, so report conditioning gives neither side an edge.

Controls built from the data themselves (no extra model): ``memoriser`` is a deliberately overfitted
generator, a lookup that returns a re-acquired copy (gain, gamma, noise, a small shift) of the training video
of a training report, and of the training video with the most alike findings otherwise; every attack must
catch it. ``fresh_eyes`` returns, per report, a real video of a pool the audit does not otherwise use with
the most alike findings: the right findings on a new eye, what an ideal generator draws; attacks and the
copy detector should score it at chance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ffasora.evaluate.inputs import VideoItem
from ffasora.evaluate.privacy import lightly_altered, most_alike
from ffasora.evaluate.retrieval import cosine_similarity
from ffasora.io.pixels import to_uint8, to_unit


def roc_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(member score > non-member score) + 0.5 P(tie): the Mann-Whitney form of the ROC AUC."""
    from sklearn.metrics import roc_auc_score

    m, n = np.asarray(members, float), np.asarray(nonmembers, float)
    if not len(m) or not len(n):
        raise ValueError(f"need members and non-members, got {len(m)} and {len(n)}")
    return float(roc_auc_score(np.r_[np.ones(len(m)), np.zeros(len(n))], np.r_[m, n]))


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float = 0.01) -> float:
    """Share of members scored above the non-members' (1 - fpr) quantile."""
    threshold = np.quantile(np.asarray(nonmembers, float), 1.0 - fpr, method="higher")
    return float(np.mean(np.asarray(members, float) > threshold))


def attack_summary(
    members: np.ndarray, nonmembers: np.ndarray, rounds: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """AUC with a percentile bootstrap 95 % CI (members and non-members resampled apart) and TPR at 1 % FPR."""
    m, n = np.asarray(members, float), np.asarray(nonmembers, float)
    rng = np.random.default_rng(seed)
    boot = [
        roc_auc(m[rng.integers(0, len(m), len(m))], n[rng.integers(0, len(n), len(n))]) for _ in range(rounds)
    ]
    return {
        "auc": roc_auc(m, n),
        "low": float(np.quantile(boot, 0.025)),
        "high": float(np.quantile(boot, 0.975)),
        "tpr_at_1pct_fpr": tpr_at_fpr(m, n, 0.01),
        "n_members": int(len(m)),
        "n_nonmembers": int(len(n)),
        "bootstrap_rounds": rounds,
    }


def roc_curve(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of an attack, for plotting."""
    from sklearn.metrics import roc_curve as sk_roc_curve

    m, n = np.asarray(members, float), np.asarray(nonmembers, float)
    fpr, tpr, _ = sk_roc_curve(np.r_[np.ones(len(m)), np.zeros(len(n))], np.r_[m, n])
    return fpr, tpr


def membership_inference(
    members: np.ndarray,
    members_own: np.ndarray,
    nonmembers: np.ndarray,
    nonmembers_own: np.ndarray,
    rounds: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Both attacks from embeddings: members (M, D) with the videos generated from their reports (M, D), and
    non-members (N, D) with theirs (N, D). The nearest attack searches all M + N generated videos."""
    if members.shape != members_own.shape or nonmembers.shape != nonmembers_own.shape:
        raise ValueError(
            f"each candidate needs the video generated from its report: members {members.shape} vs "
            f"{members_own.shape}, non-members {nonmembers.shape} vs {nonmembers_own.shape}"
        )
    generated = np.concatenate([members_own, nonmembers_own])
    scores = {
        "nearest": (
            cosine_similarity(members, generated).max(axis=1),
            cosine_similarity(nonmembers, generated).max(axis=1),
        ),
        "own_report": (
            np.einsum("ij,ij->i", *(_unit(x) for x in (members, members_own))),
            np.einsum("ij,ij->i", *(_unit(x) for x in (nonmembers, nonmembers_own))),
        ),
    }
    return {
        name: {
            **attack_summary(m, n, rounds, seed),
            "scores": {"members": m.tolist(), "nonmembers": n.tolist()},
        }
        for name, (m, n) in scores.items()
    }


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


class Memoriser:
    """The positive control: a generator that learnt its training set by heart.

    Given a report, it returns its training video of that report, re-acquired (``privacy.lightly_altered``:
    gain, gamma, noise, a shift); for a report it never saw, the re-acquired training video whose findings
    are most alike. Every copy detector and membership attack must catch it.
    """

    def __init__(self, training: Sequence[VideoItem], seed: int = 0) -> None:
        if not training:
            raise ValueError("the memoriser needs at least one training video")
        self.training = list(training)
        self.seed = seed
        self._by_report = {" ".join(t.report.split()): i for i, t in enumerate(self.training)}

    def source(self, report: str, codes: Sequence[str]) -> int:
        """Index of the training video it returns for a report."""
        known = self._by_report.get(" ".join(report.split()))
        if known is not None:
            return known
        return int(most_alike([list(codes)], [t.codes for t in self.training])[0])

    def __call__(self, report: str, codes: Sequence[str], seed: int = 0) -> np.ndarray:
        """(T, H, W) uint8 frames for a report."""
        frames = self.training[self.source(report, codes)].frames
        altered = lightly_altered(to_unit(frames)[None, None], self.seed * 100_003 + seed)
        return to_uint8(altered[0, 0])


class FreshEyes:
    """The negative control: per report, a real video from a pool of other eyes with the most alike findings.

    Each pool video is handed out once while unused ones remain, so that one eye standing in for every
    report with common findings does not turn the control into a set of repeats.
    """

    def __init__(self, pool: Sequence[VideoItem]) -> None:
        if not pool:
            raise ValueError("the fresh-eyes control needs a pool of real videos")
        self.pool = list(pool)
        self._unused = list(range(len(self.pool)))

    def __call__(self, report: str, codes: Sequence[str], seed: int = 0) -> np.ndarray:
        if not self._unused:
            self._unused = list(range(len(self.pool)))
        choice = most_alike([list(codes)], [self.pool[i].codes for i in self._unused])[0]
        return self.pool[self._unused.pop(int(choice))].frames


FLOW_TIMES = (0.1, 0.25, 0.4, 0.55)  # noise levels of the loss attack: low and middle t, where memorised
# samples are denoised best (Carlini et al. 2023 §5; Matsumoto et al. arXiv 2302.03262 use mid-range steps)


@torch.no_grad()
def denoising_errors(
    pipe: Any,
    items: Sequence[VideoItem],
    times: Sequence[float] = FLOW_TIMES,
    repeats: int = 2,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(N,) mean rectified-flow error of the generator's DiT on each real video's own latents, given its own
    report: the loss attack when the weights are given (lower error: more likely a member; Carlini et al.
    2023, Matsumoto et al. 2023). ``pipe`` is an ``FFASoraPipeline``; every video sees the same noise draws
    and times, so the scores differ only by the video and its report."""
    from ffasora.diffusion.objectives import flow_matching_loss
    from ffasora.evaluate.inputs import to_clip

    c = pipe.config
    dtype = next(pipe.dit.parameters()).dtype

    def network(x: torch.Tensor, t: torch.Tensor, text: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return pipe.dit(x.to(dtype), t, text[0].to(dtype), text[1]).float()

    out = np.zeros(len(items))
    noise: list[torch.Tensor] = []
    for n, item in enumerate(items):
        clip = to_clip(item.frames, c.num_frames, c.height)[None].to(pipe.device)  # (1, 1, T, H, W)
        z0 = pipe.vae.normalize_latents(pipe.vae.encode(clip).mean)
        if not noise:
            g = torch.Generator().manual_seed(seed)
            noise = [torch.randn(z0.shape, generator=g).to(z0) for _ in range(len(times) * repeats)]
        cond, _ = pipe.encode_report(item.report, "")
        losses = [
            float(flow_matching_loss(network, z0, cond, t=torch.tensor([t]), noise=noise[i * repeats + r]))
            for i, t in enumerate(times)
            for r in range(repeats)
        ]
        out[n] = float(np.mean(losses))
        if progress:
            progress(n + 1, len(items))
    return out
