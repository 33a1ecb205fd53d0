"""torch.distributed under torchrun: process group, rank helpers, sharding, ordered gather.

Every helper also works in a plain `python -m` process (world size 1), so stage code
calls them unconditionally. Launching (torchrun flags, nodes) stays outside: this module
only reads the environment torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from transferlab.errors import UserError


def launched() -> bool:
    """True inside a torchrun worker of a group larger than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Only rank 0 writes outputs and logs; the others compute and hand results over."""
    return rank() == 0


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[torch.device]:
    """Join torchrun's group for the block (nccl on CUDA, gloo on CPU); yield this rank's device.

    Outside torchrun, or with one process, nothing is initialised and `device` comes back.
    """
    if not launched() or dist.is_initialized():
        yield device
        return
    if device.type == "cuda":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK {local} has no GPU ({torch.cuda.device_count()} visible); "
                "set launch.nproc_per_node to at most the GPUs on this machine."
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=_id(device))
    try:
        yield device
        dist.barrier()  # rank 0 may still be writing; leave together
    finally:
        dist.destroy_process_group()


def shard_bounds(n: int, *, block: int = 1, part: int | None = None, parts: int | None = None):
    """[start, stop) of this rank's contiguous share of n rows, cut on multiples of `block`.

    Cutting on the batch size keeps every batch exactly as one process would form it,
    so per-rank results are bit-identical to the single-process ones.
    """
    part = rank() if part is None else part
    parts = world_size() if parts is None else parts
    blocks = -(-n // block)
    per, extra = divmod(blocks, parts)
    first = part * per + min(part, extra)
    last = first + per + (1 if part < extra else 0)
    return min(first * block, n), min(last * block, n)


def batch_rows(batch_size: int) -> tuple[int, int]:
    """[first, last) rows of each global training batch that this rank trains on."""
    if batch_size % world_size():
        raise UserError(
            f"finetune.batch_size {batch_size} must divide evenly over "
            f"{world_size()} processes (launch.nproc_per_node x nodes)."
        )
    share = batch_size // world_size()
    return rank() * share, (rank() + 1) * share


def gather_rows(local: np.ndarray, n: int, *, block: int, device: torch.device) -> np.ndarray:
    """All ranks' shard_bounds(n, block) rows, concatenated in the original order."""
    if world_size() == 1:
        return local
    bounds = [shard_bounds(n, block=block, part=p) for p in range(world_size())]
    rows = max(stop - start for start, stop in bounds)
    # Collectives need equal shapes: pad every shard to the largest, trim after.
    padded = torch.zeros((rows, *local.shape[1:]), dtype=torch.from_numpy(local[:0]).dtype)
    padded[: len(local)] = torch.from_numpy(np.ascontiguousarray(local))
    padded = padded.to(device)
    gathered = [torch.empty_like(padded) for _ in bounds]
    dist.all_gather(gathered, padded)
    return np.concatenate(
        [g[: stop - start].cpu().numpy() for g, (start, stop) in zip(gathered, bounds, strict=True)]
    )


def mean_across_ranks(value: float, device: torch.device) -> float:
    """The mean of a per-rank scalar (e.g. a training loss) over all ranks."""
    if world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / world_size()


def broadcast_module(model: nn.Module, device: torch.device) -> nn.Module:
    """Give every rank rank 0's parameters and buffers (e.g. an unseeded random init)."""
    if world_size() > 1:
        model.to(device)
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)
    return model


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel in a group, else the model itself: the one place DDP is set up.

    BatchNorm statistics span the global batch, as in one process: on CUDA through torch's
    SyncBatchNorm; on CPU, where SyncBatchNorm has no kernel, by gather_batch_norm.
    """
    if world_size() == 1:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    gather_batch_norm(model)
    return nn.parallel.DistributedDataParallel(model)


def gather_batch_norm(model: nn.Module) -> None:
    """In training, every BatchNorm normalises the global batch and keeps this rank's rows.

    Each rank gathers all ranks' activations (in rank order: the global batch as one
    process sees it), runs the layer's own forward on them, so statistics and running
    averages are one process's, and slices its rows back out. torch's differentiable
    all_gather returns each rank the gradient for its own rows summed over every rank's
    loss, as SyncBatchNorm does. It moves whole activations, which is fine for CPU (gloo)
    runs; CUDA runs use SyncBatchNorm, which moves only per-channel statistics.
    """
    from torch.distributed.nn.functional import all_gather

    # Its suggested successor lives in a private module; the public one works as documented.
    warnings.filterwarnings("ignore", ".*all_gather is deprecated", FutureWarning)

    def gather(module: nn.Module, args: tuple) -> tuple | None:
        if not module.training:
            return None
        return (torch.cat(all_gather(args[0])), *args[1:])

    def keep_own_rows(module: nn.Module, args: tuple, output: torch.Tensor):
        if not module.training:
            return None
        rows = len(output) // world_size()
        return output[rank() * rows : (rank() + 1) * rows]

    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.register_forward_pre_hook(gather)
            module.register_forward_hook(keep_own_rows)


def _id(device: torch.device) -> torch.device | None:
    return device if device.type == "cuda" else None
