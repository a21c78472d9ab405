"""FastCNN: whitening against its closed form, identity-initialised convs, any image size."""

import pytest
import torch
import torch.nn.functional as F

from trainlab.nn.cnn import FastCNN, block_widths, conv3x3, pools_round_up


def _correlated_images(n=300, c=3, size=12, seed=0):
    """uint8 images with strongly correlated neighbouring pixels and channels."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 1, size // 2, size // 2, generator=g)
    smooth = F.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    noise = 0.1 * torch.rand(n, c, size, size, generator=g)
    return ((0.8 * smooth + noise).clamp(0, 1) * 255).to(torch.uint8)


@pytest.mark.parametrize("c", [1, 3])
def test_whitening_layer_decorrelates_training_patches(c):
    images = _correlated_images(c=c)
    model = FastCNN(c, 10, (4, 8, 8), image_size=12)
    model.init_from_data(images, eps=1e-9)
    x = model.normalize(images)
    np_mean = images.float().div(255).mean(dim=(0, 2, 3))
    assert torch.allclose(model.mean.flatten(), np_mean, atol=1e-5)
    out = F.conv2d(x, model.whiten.weight)  # no bias: the whitening transform itself
    k = c * 4
    assert out.shape[1] == 2 * k
    first = out[:, :k].permute(0, 2, 3, 1).reshape(-1, k).double()
    cov = first.T @ first / first.shape[0]
    assert torch.allclose(cov, torch.eye(k, dtype=torch.float64), atol=2e-3)
    assert torch.equal(out[:, k:], -out[:, :k])
    assert not model.whiten.weight.requires_grad


def test_convs_start_as_identity_on_their_first_channels():
    conv = conv3x3(3, 5)
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(conv(x)[:, :3], x, atol=1e-6)


@pytest.mark.parametrize("channels, size, round_up", [(1, 8, True), (1, 28, False), (3, 32, False), (3, 16, False)])
def test_any_size_reaches_the_head(channels, size, round_up):
    assert pools_round_up(size) is round_up
    model = FastCNN(channels, 7, block_widths(2), image_size=size)
    x = torch.randint(0, 256, (3, channels, size, size), dtype=torch.uint8)
    assert model(x).shape == (3, 7)
    assert model.features(x).shape == (3, 8)
    assert torch.allclose(model(x), model(x.float() / 255), atol=1e-5)


def test_batchnorm_scales_frozen_and_state_dict_round_trips(tmp_path):
    model = FastCNN(3, 10, block_widths(4))
    model.init_from_data(_correlated_images(n=20, size=32))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert "whiten.weight" in frozen and "blocks.0.norm1.weight" in frozen
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = FastCNN(3, 10, block_widths(4))
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    model.eval(), other.eval()
    assert torch.equal(model(x), other(x))
