import numpy as np
import torch

from tests.conftest import TINY_MODEL, make_images
from transferlab.models import backbone
from transferlab.models.extract import extract_features


def test_features_are_ordered_and_batch_size_independent():
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none")
    config = backbone.input_config(model, 32)
    images = make_images(5).images  # 15 images: batches of 4 leave a padded remainder
    cpu = torch.device("cpu")
    by_4 = extract_features(model, images, config, batch_size=4, device=cpu)
    by_15 = extract_features(model, images, config, batch_size=15, device=cpu)
    assert by_4.shape == (15, model.num_features) and by_4.dtype == np.float32
    np.testing.assert_allclose(by_4, by_15, rtol=1e-4, atol=1e-5)
    one = extract_features(model, images[7:8], config, batch_size=1, device=cpu)
    np.testing.assert_allclose(one[0], by_4[7], rtol=1e-4, atol=1e-5)
