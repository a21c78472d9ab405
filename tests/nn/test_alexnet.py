"""AlexNet: torchvision's names and shapes, weights files loaded weights-only and checked."""

import os

import pytest
import torch

from trainlab.errors import DataError
from trainlab.nn.alexnet import AlexNet, extract_features, load_weights, preprocess

# torchvision.models.alexnet().state_dict(): name -> shape (torchvision 0.2x source)
TORCHVISION_SHAPES = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


def _cheap_state(shapes=TORCHVISION_SHAPES):
    """A state_dict of constant tensors stored as stride-0 views: a 61M-parameter file of a few kB."""
    return {k: torch.full((), 0.001 * (i + 1)).expand(shape) for i, (k, shape) in enumerate(shapes.items())}


def test_names_and_shapes_are_torchvisions():
    model = AlexNet()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == TORCHVISION_SHAPES
    assert sum(p.numel() for p in model.parameters()) == 61_100_840  # torchvision's documented count


def test_weights_file_loads_weights_only(tmp_path):
    torch.save(_cheap_state(), tmp_path / "alexnet.pth")
    assert os.path.getsize(tmp_path / "alexnet.pth") < 100_000
    model = AlexNet()
    load_weights(model, tmp_path / "alexnet.pth")
    assert torch.all(model.features[3].weight == 0.003) and torch.all(model.classifier[6].bias == 0.016)


def test_the_studys_printed_widths_are_refused_with_one_line(tmp_path, alexnet):
    """The study's printout shows 128 and 256 channels for the 2nd and 3rd convolutions; the weights have 192, 384."""
    shapes = dict(TORCHVISION_SHAPES, **{"features.3.weight": (128, 64, 5, 5), "features.3.bias": (128,)})
    torch.save(_cheap_state(shapes), tmp_path / "study.pth")
    with pytest.raises(DataError) as info:
        load_weights(alexnet, tmp_path / "study.pth")
    assert "features.3.weight has shape (128, 64, 5, 5), torchvision's AlexNet expects (192, 64, 5, 5)" in str(info.value)


@pytest.fixture(scope="module")
def alexnet():
    """One randomly initialised AlexNet for the tests that never load into it (61M parameters take seconds)."""
    torch.manual_seed(0)
    return AlexNet()


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("content, fragment", [
    ("missing_key", "missing features.0.weight"),
    ("extra_key", "unexpected fc.weight"),
    ("code", "not a plain state_dict"),
    ("garbage", "not a plain state_dict"),
    ("not_a_dict", "not a state_dict"),
])
def test_bad_weights_files(tmp_path, alexnet, content, fragment):
    path = tmp_path / "w.pth"
    state = _cheap_state()
    if content == "missing_key":
        del state["features.0.weight"]
    if content == "extra_key":
        state["fc.weight"] = torch.zeros(1)
    if content == "code":
        state = {"features.0.weight": _Payload()}
    if content == "garbage":
        path.write_bytes(b"\x00not torch")
    elif content == "not_a_dict":
        torch.save([torch.zeros(1)], path)
    else:
        torch.save(state, path)
    with pytest.raises(DataError) as info:
        load_weights(alexnet, path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_absent_weights_file(tmp_path, alexnet):
    with pytest.raises(DataError, match="no such file"):
        load_weights(alexnet, tmp_path / "absent.pth")


def test_features_of_small_grayscale_and_colour_images(alexnet):
    model = alexnet
    gray = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    hidden, logits = extract_features(model, gray, image_size=64, batch_size=2)
    assert hidden.shape == (3, 4096) and logits.shape == (3, 1000) and bool((hidden >= 0).all())
    assert torch.allclose(logits, model.eval()(preprocess(gray, 64)), atol=1e-5)
    colour = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert extract_features(model, colour, image_size=64)[1].shape == (2, 1000)
    with pytest.raises(ValueError, match="at least 63"):
        preprocess(colour, 32)
