"""Run by test_cpu_reproducibility.py in a fresh process: a short fine-tune and a probe fit,
then the ISA and thread count it computed with, and one sha256 over the trained weights,
the test probabilities and the probe's head (the last line).

PROBE_SKIP_PINS=1 runs it without the pins; SIMULATED_CORES=N plays a machine with N cores
(its default thread count, unless OMP_NUM_THREADS sets one)."""

import os

if not os.environ.get("PROBE_SKIP_PINS"):
    import stages  # noqa: F401  (the pins every stage process gets, before torch)

import dataclasses
import hashlib

import numpy as np
import torch

from tests.conftest import REPO, TINY_MODEL, make_images
from transferlab.device import host
from transferlab.evaluation.probes import linear
from transferlab.models.training import train_strategy
from transferlab.params import Model, load_params

if os.environ.get("SIMULATED_CORES"):
    cores = int(os.environ["SIMULATED_CORES"])
    host.usable_cpus = lambda: cores
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", cores)))

shipped = load_params(REPO / "params.yaml")
backbone = Model(TINY_MODEL, "none", image_size=32, seed=shipped.backbone.seed, min_image_size=32)
config = dataclasses.replace(shipped.finetune, epochs=1, batch_size=8, device="cpu")
cpu = torch.device("cpu")
trained = train_strategy(
    "full",
    model_config=backbone,
    config=config,
    train=make_images(16, size=24),
    val=make_images(4, size=24, seed=1),
    num_classes=3,
    device=cpu,
    test=make_images(4, size=24, seed=2),
)
rng = np.random.default_rng(0)
features = rng.normal(size=(600, 64)).astype(np.float32)
labels = (features[:, :3].argmax(1)).astype(np.int64)
fit = linear.fit_grid(
    train_features=features[:400],
    train_labels=labels[:400],
    val_features=features[400:],
    val_labels=labels[400:],
    grid=np.logspace(-3, 1, 3),
    max_iter=200,
    device=cpu,
)
digest = hashlib.sha256()
for tensor in trained.result.state_dict.values():
    digest.update(tensor.numpy().tobytes())
for array in (trained.test_probs, fit.head.coef_, fit.head.intercept_):
    digest.update(np.ascontiguousarray(array).tobytes())
# What the process computed with: the vector ISA torch dispatched to and its threads.
print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())
print(digest.hexdigest())
