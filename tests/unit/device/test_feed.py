import collections
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from transferlab.device import feed, host
from transferlab.models.training import epoch_batches

CPU = torch.device("cpu")
PROJECT_DIRS = {"transferlab", "stages", "bench"}  # the project's code, not torch's
DEVICES = [CPU] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_stream_yields_each_batch_in_order_on_the_device(device):
    images = np.arange(40, dtype=np.uint8).reshape(10, 2, 2, 1)
    batches = list(feed.stream(lambda i: images[3 * i : 3 * i + 3], 4, device))
    assert [b.device.type for b in batches] == [device.type] * 4
    assert all(b.dtype == torch.uint8 for b in batches)
    np.testing.assert_array_equal(torch.cat(batches).cpu().numpy(), images)


def test_cpu_stream_of_a_read_only_map_copies_without_a_warning(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, np.arange(24, dtype=np.uint8).reshape(6, 2, 2, 1))
    images = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "not writable" UserWarning fails the test
        batches = list(feed.stream(lambda i: images[3 * i : 3 * i + 3], 2, CPU))
    np.testing.assert_array_equal(torch.cat(batches).numpy(), images)


def test_cpu_keeps_nothing_resident_and_threads_fit_the_affinity():
    assert feed.resident(np.zeros((4, 2, 2, 1), np.uint8), CPU) is None
    feed.setup_device(CPU)
    assert 1 <= torch.get_num_threads() <= host.usable_cpus()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("resident", [False, True])
def test_epoch_batches_keep_images_and_labels_together(device, resident):
    if resident and device.type != "cuda":
        pytest.skip("only CUDA keeps images resident")
    labels = np.random.default_rng(0).permutation(12)
    images = np.broadcast_to(labels[:, None, None, None], (12, 3, 3, 1)).astype(np.uint8)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0)).view(3, 4)
    on_device = feed.resident(images, device) if resident else None
    seen = []
    for batch, y in epoch_batches(
        images, torch.from_numpy(labels).to(device), order, on_device, device
    ):
        assert batch.device.type == y.device.type == device.type
        assert torch.equal(batch[:, 0, 0, 0].long(), y)  # each image carries its own label
        seen.extend(y.tolist())
    assert sorted(seen) == sorted(labels.tolist())


def host_syncs(work) -> collections.Counter:
    """Where project code in `work()` made the host wait for the GPU: call site -> count.

    torch's sync debug mode warns at each synchronizing CUDA call; the warning hook runs in
    the calling frame, so the stack names the line of the project's code that synced.
    """
    sites: collections.Counter = collections.Counter()

    def record(message, *args, **kwargs) -> None:
        if "synchroniz" in str(message):
            ours = [
                f for f in traceback.extract_stack() if PROJECT_DIRS & set(Path(f.filename).parts)
            ]
            if ours:  # torch's own occasional waits (allocator growth) are not ours to fix
                sites[f"{Path(ours[-1].filename).name}:{ours[-1].lineno}"] += 1

    before = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            work()
        finally:
            torch.cuda.set_sync_debug_mode(before)
    return sites


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_and_extraction_never_wait_for_the_gpu_per_batch(params):
    """Host waits are per epoch or per run, never per batch: doubling the batches adds none.

    A wait per batch (a blocking host-to-device copy, a .item()) leaves the GPU idle while
    the host queues the next batch; this is what kept throughput below the model's own.
    """
    import dataclasses

    from tests.conftest import TINY_MODEL, make_images
    from transferlab.models import backbone
    from transferlab.models.strategies import param_groups
    from transferlab.models.training import train_model

    cuda = torch.device("cuda")
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    cfg = backbone.input_config(model, 32)
    config = dataclasses.replace(params.finetune, epochs=1, batch_size=4, patience=1)
    val = make_images(2, seed=1)

    def train(per_class: int) -> None:
        train_model(
            model,
            train=make_images(per_class),
            val=val,
            input_cfg=cfg,
            config=config,
            device=cuda,
            param_groups=param_groups(model, "full", config, config.full.lr[0]),
            bn="train",
        )

    def extract(per_class: int) -> None:
        backbone.forward_batches(
            model, make_images(per_class).images, cfg, batch_size=4, device=cuda, desc="x"
        )

    for run in (train, extract):
        run(8)  # warm-up: cudnn autotuning and allocator growth
        assert host_syncs(lambda run=run: run(8)) == host_syncs(lambda run=run: run(16)), run
