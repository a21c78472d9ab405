"""The autoencoder study's trainer: models trained side by side are the same bits as one after another."""

import torch

from trainlab import workers as pool
from trainlab.data import load_images, to_tensor
from trainlab.device import CpuPlan
from trainlab.train.autoencoder import AutoencoderSpec, train_autoencoders


def test_models_trained_side_by_side_are_the_same_bits_as_one_after_another(monkeypatch):
    data = load_images("digits")
    x = to_tensor(data.train_images[:300], "cpu")
    specs = [AutoencoderSpec("mlp", 2, 0), AutoencoderSpec("conv", 32, 1), AutoencoderSpec("mlp", 32, 0)]
    trained = {}
    for workers in (2, 1):
        monkeypatch.setattr(pool, "cpu_plan", lambda *a, workers=workers, **k: CpuPlan(workers=workers, threads=1))
        trained[workers] = train_autoencoders(specs, x, (8, 8), latent_activation="relu", output_activation="relu",
                                              lr=1e-3, epochs=2, batch_size=64)
    assert [t.spec for t in trained[2]] == [t.spec for t in trained[1]] == specs
    for a, b in zip(trained[2], trained[1], strict=True):
        for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
            assert torch.equal(p, q), (a.spec, name)
