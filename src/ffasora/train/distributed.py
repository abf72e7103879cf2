"""Process-group plumbing: who am I, gradient averaging, flags and objects across ranks, FSDP2 wrapping.

Data parallelism ("ddp") keeps a full replica of every module on each rank and averages gradients after the
accumulated backward with bucketed all-reduces. The engine does this itself rather than wrapping modules in
``DistributedDataParallel`` because tasks with several optimizers (generator + discriminator) run a module
forward more than once per step, back-propagate into one group at a time and take ``autograd.grad`` of a
decoder layer for adaptive loss weights; DDP's reducer assumes one forward and one full backward per step.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

BUCKET_BYTES = 32 * 2**20  # gradients are flattened into ~32 MiB all-reduces


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (NCCL on GPUs, gloo on CPU).

    Without ``WORLD_SIZE`` > 1 this is a single process and no group is created.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = (
        torch.device("cuda", local_rank) if use_cuda else torch.device("cpu" if device == "auto" else device)
    )
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=timedelta(seconds=timeout_s),
            device_id=dev if use_cuda else None,
        )
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_module(module: nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if not _active():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Average ``.grad`` over ranks in flattened buckets (a missing grad counts as zero)."""
    if not _active():
        return
    world = dist.get_world_size()
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    bucket: list[torch.Tensor] = []
    size = 0
    for p in params:
        bucket.append(p.grad)  # type: ignore[arg-type]
        size += p.grad.numel() * p.grad.element_size()  # type: ignore[union-attr]
        if size >= BUCKET_BYTES:
            _reduce_bucket(bucket, world)
            bucket, size = [], 0
    if bucket:
        _reduce_bucket(bucket, world)


def _reduce_bucket(grads: list[torch.Tensor], world: int) -> None:
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for g in group:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def any_across_ranks(*flags: bool) -> list[bool]:
    """For each flag: is it set on any rank? (one small all-reduce for all of them)."""
    values = torch.tensor([float(f) for f in flags])
    if _active():
        values = values.to(_comm_device())
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values.cpu().tolist()]


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average scalar logs over ranks (same keys on every rank)."""
    if not _active() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.cpu().tolist(), strict=True))


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (on every rank)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if _active():
        dist.barrier()


def _comm_device() -> torch.device:
    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )


def fsdp_wrap(module: nn.Module) -> nn.Module:
    """FSDP2: shard every block of every ``nn.ModuleList`` (transformer/conv stages), then the root.

    Parameters become DTensors sharded over all ranks; gradients are reduce-scattered during backward. Frozen
    parameters are sharded too: a LoRA run's base shares its blocks' groups with the adapters, and FSDP2
    reduce-scatters only the gradients that exist. Adapters must already be in place (wrap after ``add_lora``).
    """
    from torch.distributed.fsdp import fully_shard

    for child in module.modules():
        if isinstance(child, nn.ModuleList):
            for block in child:
                if any(p.requires_grad for p in block.parameters()):
                    fully_shard(block)
    fully_shard(module)
    return module


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor from a possibly sharded one (collective for FSDP2 DTensors: call on every rank)."""
    full = getattr(t, "full_tensor", None)
    return full() if callable(full) else t


def shard_like(full: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``full`` laid out like ``ref``: the same DTensor sharding when ``ref`` is sharded, else a plain copy."""
    mesh = getattr(ref, "device_mesh", None)
    if mesh is None:
        return full.to(device=ref.device, dtype=ref.dtype)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(dtype=ref.dtype), mesh, ref.placements)  # type: ignore[attr-defined]
