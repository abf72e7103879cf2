"""The sharded sampler: ranks together see the single-process order; the stream resumes mid-epoch."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from ffasora.train.sampler import BatchStream, ShardedSampler


def test_ranks_together_cover_the_single_process_batches():
    one = ShardedSampler(23, rank=0, world_size=1, seed=5)
    ranks = [ShardedSampler(23, rank=r, world_size=2, seed=5) for r in range(2)]
    for s in [one, *ranks]:
        s.set_epoch(3)
    single = one.epoch_indices()
    shards = [s.epoch_indices() for s in ranks]
    assert len(shards[0]) == len(shards[1]) == 11  # the odd tail is dropped so ranks stay in step
    for step in range(2):  # global batch 8 = 2 ranks x 4
        union = sorted(shards[0][4 * step : 4 * step + 4] + shards[1][4 * step : 4 * step + 4])
        assert union == sorted(single[8 * step : 8 * step + 8])
    other = ShardedSampler(23, rank=0, world_size=1, seed=5)
    other.set_epoch(4)
    assert other.epoch_indices() != single  # a new shuffle every epoch


def test_stream_resumes_at_its_position():
    data = TensorDataset(torch.arange(10))
    stream = BatchStream(data, batch_size=3, rank=0, world_size=1, seed=1)
    for _ in range(4):  # crosses the epoch boundary (3 batches per epoch)
        next(stream)
    state = stream.state_dict()
    rest = [next(stream)[0].tolist() for _ in range(3)]
    again = BatchStream(data, batch_size=3, rank=0, world_size=1, seed=1)
    again.load_state_dict(state)
    assert state == {"epoch": 1, "batch": 1}
    assert [next(again)[0].tolist() for _ in range(3)] == rest
