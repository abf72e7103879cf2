"""Run records: ``metrics.jsonl`` rows (+ optional TensorBoard) and the environment saved at start."""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

import ffasora


class MetricsLogger:
    """Appends one JSON object per logged step to ``<run>/metrics.jsonl``; mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = self.path.open("a")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps({"time": round(time.time(), 3), **row}) + "\n")
        self._file.flush()
        if self._tb is not None and "step" in row:
            for key, value in row.items():
                if isinstance(value, int | float) and key != "step":
                    self._tb.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak on GPUs, resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(world_size: int, device: torch.device) -> dict[str, Any]:
    """Versions, hardware and code revision, saved as ``<run>/environment.json``."""
    import numpy

    env: dict[str, Any] = {
        "ffasora": ffasora.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "argv": sys.argv,
        "git_commit": git_commit(Path(ffasora.__file__).parent),
        "world_size": world_size,
        "device": str(device),
        "cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["gpu_count"] = torch.cuda.device_count()
    return env
