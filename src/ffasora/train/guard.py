"""The non-finite guard: skip bad steps, count them, and after too many in a row ask for a rollback."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ffasora.train.config import GuardConfig


@dataclass
class GuardState:
    skipped: int = 0  # bad steps over the whole run
    consecutive: int = 0
    rollbacks: int = 0
    lr_scale: float = 1.0  # product of lr_factor over all rollbacks


class Guard:
    """Bookkeeping only; the engine detects non-finite values, skips the update and performs the rollback."""

    def __init__(self, cfg: GuardConfig) -> None:
        self.cfg = cfg
        self.state = GuardState()

    @staticmethod
    def is_bad(*values: float) -> bool:
        return any(not math.isfinite(v) for v in values)

    def record(self, bad: bool) -> str:
        """Register one step; returns "ok", "skip" or "rollback"."""
        if not bad:
            self.state.consecutive = 0
            return "ok"
        self.state.skipped += 1
        self.state.consecutive += 1
        if self.cfg.enabled and self.state.consecutive >= self.cfg.max_bad_steps:
            return "rollback"
        return "skip"

    def rolled_back(self) -> None:
        """Called after the engine restored the last good checkpoint: lower the LR, reset the streak."""
        self.state.rollbacks += 1
        if self.state.rollbacks > self.cfg.max_rollbacks:
            raise RuntimeError(
                f"training diverged: {self.state.rollbacks} rollbacks exceed train.guard.max_rollbacks="
                f"{self.cfg.max_rollbacks}"
            )
        self.state.lr_scale *= self.cfg.lr_factor
        self.state.consecutive = 0

    def state_dict(self) -> dict[str, float]:
        return dict(vars(self.state))

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.state = GuardState(
            skipped=int(state["skipped"]),
            consecutive=int(state["consecutive"]),
            rollbacks=int(state["rollbacks"]),
            lr_scale=float(state["lr_scale"]),
        )
