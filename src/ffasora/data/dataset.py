"""``FFADataset``: the videos and reports of one split of an FFA dataset folder, as model-ready tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ffasora.data.format import VideoRecord, load_video, read_info, read_manifest
from ffasora.data.splits import SPLITS
from ffasora.models.vae_shapes import frame_count_problem


class FFADataset(Dataset[dict[str, Any]]):
    """One split of a dataset folder.

    Each item is ``dict(video, report, id, codes)`` with ``video`` a float32 tensor (C, T, H, W) in [-1, 1]
    (C = ``channels``: 1, or 3 with the grey value repeated for models made for RGB).

    frames: the number of frames to return (1 + 4k). Longer videos are resampled to it by picking evenly
        spaced frames (first and last kept); shorter ones are an error. None keeps the stored count.
    size: square side in pixels; frames are resized (antialiased bilinear) when they differ. None keeps it.
    split: "train", "val", "test", or "all".
    Use ``FFADataset.collate`` as the DataLoader's ``collate_fn``: ``codes`` differ in length between items.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        frames: int | None = None,
        size: int | None = None,
        channels: int = 1,
    ) -> None:
        if split not in (*SPLITS, "all"):
            raise ValueError(f"split {split!r} is not one of {(*SPLITS, 'all')}")
        if channels not in (1, 3):
            raise ValueError(f"channels = {channels}; expected 1 (grey) or 3 (grey repeated as RGB)")
        problem = None if frames is None else frame_count_problem(frames)
        if problem is not None:
            raise ValueError(f"frames = {frames}: {problem}")
        if size is not None and size < 1:
            raise ValueError(f"size = {size} must be positive")
        self.root = Path(root)
        self.info = read_info(self.root)
        self.records: list[VideoRecord] = [
            r for r in read_manifest(self.root) if split == "all" or r.split == split
        ]
        self.split, self.frames, self.size, self.channels = split, frames, size, channels
        if frames is not None:
            short = [r.id for r in self.records if r.frames < frames]
            if short:
                raise ValueError(
                    f"{self.root}: {len(short)} video(s) (e.g. {short[0]}) have fewer than {frames} frames"
                )

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        frames = load_video(self.root, record.id)  # (T, H, W) uint8
        if frames.shape != (record.frames, record.height, record.width):
            raise ValueError(
                f"{self.root}/videos/{record.id}.npz: shape {frames.shape} differs from the manifest's "
                f"{(record.frames, record.height, record.width)}"
            )
        if self.frames is not None and self.frames != len(frames):
            frames = frames[temporal_indices(len(frames), self.frames)]
        video = (
            torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)[None]
        )  # (1, T, H, W)
        if self.size is not None and video.shape[-2:] != (self.size, self.size):
            video = F.interpolate(video, size=(self.size, self.size), mode="bilinear", antialias=True)
            video = video.clamp_(-1.0, 1.0)
        if self.channels == 3:
            video = video.expand(3, -1, -1, -1).contiguous()
        return {"video": video, "report": record.report, "id": record.id, "codes": list(record.codes)}

    @staticmethod
    def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack ``video`` into (B, C, T, H, W); keep the other fields as lists."""
        batch: dict[str, Any] = {"video": torch.stack([item["video"] for item in items])}
        for key in items[0]:
            if key != "video":
                batch[key] = [item[key] for item in items]
        return batch


def temporal_indices(stored: int, wanted: int) -> np.ndarray:
    """``wanted`` evenly spaced frame indices out of ``stored`` (first and last included)."""
    if wanted > stored:
        raise ValueError(f"cannot take {wanted} frames from a {stored}-frame video")
    return np.round(np.linspace(0, stored - 1, wanted)).astype(np.int64)
