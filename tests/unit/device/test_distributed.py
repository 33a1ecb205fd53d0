import numpy as np
import pytest
import torch

from transferlab.device import distributed
from transferlab.errors import UserError


@pytest.mark.parametrize(("n", "block", "parts"), [(15, 4, 2), (16, 4, 2), (3, 4, 2), (100, 7, 3)])
def test_shards_are_contiguous_cover_everything_and_cut_on_blocks(n, block, parts):
    bounds = [distributed.shard_bounds(n, block=block, part=p, parts=parts) for p in range(parts)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False):
        assert stop == start and (start % block == 0 or start == n)
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= block  # balanced to within one batch


def test_single_process_helpers_are_identities():
    assert not distributed.launched() or distributed.world_size() == 1
    assert distributed.rank() == 0 and distributed.is_main()
    assert distributed.shard_bounds(10, block=3) == (0, 10)
    local = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert distributed.gather_rows(local, 3, block=2, device=torch.device("cpu")) is local
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap_ddp(model, torch.device("cpu")) is model
    assert distributed.mean_across_ranks(0.5, torch.device("cpu")) == 0.5


def test_batch_rows_split_each_global_batch_evenly(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    monkeypatch.setattr(distributed, "rank", lambda: 2)
    assert distributed.batch_rows(64) == (32, 48)
    with pytest.raises(UserError, match="finetune.batch_size 66 must divide evenly over 4"):
        distributed.batch_rows(66)
