import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.nn.autoencoder import (ConvAutoencoder, DenseAutoencoder, build_autoencoder, dead_units, decode_all,
                                     encode_all)


def test_dense_autoencoder_is_the_studys_layer_list():
    model = DenseAutoencoder(latent=2)
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [(784, 196), (196, 49), (49, 2), (2, 49), (49, 196), (196, 784)]
    # a ReLU after every layer, the code's and the output's included
    kinds = [type(m).__name__ for m in [*model.encoder, *model.decoder]]
    assert kinds == ["Linear", "ReLU"] * 6
    x = torch.rand(5, 784)
    assert model.encode(x).shape == (5, 2) and model.encode(x).min() >= 0
    assert model(x).shape == (5, 784) and model(x).min() >= 0


def test_only_a_linear_code_can_be_negative():
    x = torch.rand(20, 784)
    for activation, negative in (("relu", False), ("none", True)):
        torch.manual_seed(0)
        model = DenseAutoencoder(latent=2, latent_activation=activation)
        with torch.no_grad():
            model.encoder[-2].bias.fill_(-5.0)
        assert bool((model.encode(x) < 0).all()) is negative


@pytest.mark.parametrize("shape, inner", [((28, 28), (7, 7)), ((8, 8), (2, 2)), ((13, 11), (4, 3))])
def test_conv_autoencoder_halves_twice_and_restores_the_image_size(shape, inner):
    model = ConvAutoencoder(shape, latent=3)
    x = torch.rand(4, shape[0] * shape[1])
    code = model.encode(x)
    assert code.shape == (4, 3) and code.min() >= 0
    assert model.decode(code).shape == x.shape and model(x).min() >= 0
    bottleneck = [m for m in model.encoder if isinstance(m, nn.Linear)][0]
    assert bottleneck.in_features == 32 * inner[0] * inner[1]


def test_architecture_rebuilds_the_same_model():
    for model in (DenseAutoencoder(latent=32, latent_activation="none"), ConvAutoencoder((8, 8), latent=2)):
        twin = build_autoencoder(**model.architecture())
        assert type(twin) is type(model)
        assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match="latent_activation='tanh' is not one of relu, identity"):
        DenseAutoencoder(latent_activation="tanh")
    with pytest.raises(ConfigError, match="arch='rnn'"):
        build_autoencoder("rnn")


def test_dead_units_are_the_units_zero_for_every_row():
    codes = torch.tensor([[0.0, 1.0, 0.0, -2.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    assert dead_units(codes).tolist() == [True, False, True, False]


def test_a_relu_code_switched_off_decodes_every_image_to_one_constant():
    model = DenseAutoencoder(latent=2)
    with torch.no_grad():
        model.encoder[-2].bias.fill_(-1e3)  # pre-activations far below zero for every input
    x = torch.rand(64, 784)
    codes = encode_all(model, x, batch_size=10)
    assert dead_units(codes).all()
    out = decode_all(model, codes, batch_size=7)
    assert torch.allclose(out, out[:1].expand_as(out), atol=1e-6)  # chunks may round differently


def test_chunked_encode_and_decode_match_one_pass():
    torch.manual_seed(1)
    model = ConvAutoencoder((8, 8), latent=4)
    x = torch.rand(23, 64)
    with torch.no_grad():
        assert torch.allclose(encode_all(model, x, batch_size=5), model.encode(x), atol=1e-6)
        codes = model.encode(x)
        assert torch.allclose(decode_all(model, codes, batch_size=4), model.decode(codes), atol=1e-6)


def test_conv_output_is_alive_at_initialisation_for_every_seed():
    # PyTorch's default bias of a one-channel ConvTranspose2d (±0.33) switched the output ReLU
    # off for every pixel at seeds 0, 2 and 3; zero biases leave about half the pixels on.
    x = torch.rand(32, 64)
    for seed in range(8):
        torch.manual_seed(seed)
        model = ConvAutoencoder((8, 8), latent=32)
        with torch.no_grad():
            assert 0.2 < (model(x) > 0).float().mean() < 0.8, seed


def test_models_too_big_for_the_machine_are_refused_before_allocating():
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="ConvAutoencoder with .* parameters .* choose smaller sizes"):
            ConvAutoencoder((28, 28), latent=2, channels=(10**8, 32))
        with pytest.raises(ConfigError, match="DenseAutoencoder with"):
            DenseAutoencoder(784, 2, hidden=(10**9,))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_the_size_probe_leaves_the_global_generator_alone():
    # Oracle: a plain nn.Linear drawn from the same seed (the meta build must not draw numbers).
    torch.manual_seed(0)
    model = DenseAutoencoder(64, 2, hidden=(16,))
    torch.manual_seed(0)
    assert torch.equal(model.encoder[0].weight, nn.Linear(64, 16).weight)
