import numpy as np
import pytest
import torch

from stages import feed
from stages.finetune import epoch_batches

CPU = torch.device("cpu")
DEVICES = [CPU] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_stream_yields_each_batch_in_order_on_the_device(device):
    images = np.arange(40, dtype=np.uint8).reshape(10, 2, 2, 1)
    batches = list(feed.stream(lambda i: images[3 * i : 3 * i + 3], 4, device))
    assert [b.device.type for b in batches] == [device.type] * 4
    assert all(b.dtype == torch.uint8 for b in batches)
    np.testing.assert_array_equal(torch.cat(batches).cpu().numpy(), images)


def test_cpu_keeps_nothing_resident_and_threads_fit_the_affinity():
    assert feed.resident(np.zeros((4, 2, 2, 1), np.uint8), CPU) is None
    feed.setup_device(CPU)
    assert 1 <= torch.get_num_threads() <= feed.usable_cpus()


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
