"""One vocabulary of activation names: the older spellings read as ``identity`` everywhere."""

import numpy as np
import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.nn.activations import ACTIVATION_NAMES, activation_name
from trainlab.nn.autoencoder import DenseAutoencoder
from trainlab.nn.mlp import ACTIVATIONS, make_activation
from trainlab.scratch.activations import ACTIVATIONS as NUMPY_ACTIVATIONS
from trainlab.scratch.activations import get_activation


def test_torch_and_numpy_tables_use_the_one_vocabulary():
    assert set(ACTIVATIONS) == set(NUMPY_ACTIVATIONS) == set(ACTIVATION_NAMES)


@pytest.mark.parametrize("alias", ["linear", "none"])
def test_older_spellings_are_the_identity(alias):
    assert activation_name(alias) == "identity"
    assert isinstance(make_activation(alias), torch.nn.Identity)
    z = np.array([-1.5, 0.0, 2.0])
    assert np.array_equal(get_activation(alias).forward(z), z)


def test_autoencoders_take_identity_and_none_alike():
    a = DenseAutoencoder(in_dim=16, latent=2, hidden=(8,), latent_activation="identity")
    b = DenseAutoencoder(in_dim=16, latent=2, hidden=(8,), latent_activation="none")
    assert repr(a) == repr(b)
    with pytest.raises(ConfigError, match="latent_activation"):
        DenseAutoencoder(in_dim=16, latent=2, hidden=(8,), latent_activation="tanh")


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError):
        make_activation("gelu")
    with pytest.raises(ConfigError):
        get_activation("gelu")


def test_an_autoencoder_config_reads_none_as_identity_and_builds_a_linear_code():
    from trainlab.experiments.autoencoder import Config
    from trainlab.nn.autoencoder import DenseAutoencoder

    cfg = Config(latent_activation="none", output_activation="none")
    assert (cfg.latent_activation, cfg.output_activation) == ("identity", "identity")
    model = DenseAutoencoder(latent=2, latent_activation=cfg.latent_activation)
    assert isinstance(model.encoder[-1], __import__("torch").nn.Identity)
