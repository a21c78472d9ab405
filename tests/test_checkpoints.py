import json
import pickle
from dataclasses import dataclass

import pytest
import torch

from trainlab.checkpoints import (check_state_dict, checkpoint_info, list_checkpoints, load_checkpoint,
                                  read_checkpoint, read_state_dict, save_checkpoint)
from trainlab.config import BaseConfig
from trainlab.errors import ConfigError, DataError
from trainlab.nn.autoencoder import ConvAutoencoder, DenseAutoencoder, build_autoencoder
from trainlab.runs import Run


@dataclass
class Cfg(BaseConfig):
    latent: int = 2
    """latent"""


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_round_trip_into_a_fresh_run_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = ConvAutoencoder((8, 8), latent=2)
    first = Run.create(tmp_path, "demo", Cfg(), "cpu")
    path = save_checkpoint(first, "conv-latent2", model, architecture=model.architecture(), config=Cfg(),
                           test_l1=0.25)
    assert path == first.path / "checkpoints" / "conv-latent2.pt"
    assert list_checkpoints(first.path) == ["conv-latent2"]
    info = checkpoint_info(first.path, "conv-latent2")
    assert info["config"]["latent"] == 2 and info["test_l1"] == 0.25 and info["experiment"] == "demo"
    # plain PyTorch reads the .pt as a state_dict
    assert set(torch.load(path, weights_only=True)) == set(model.state_dict())

    second = Run.create(tmp_path, "other", Cfg(), "cpu")
    torch.manual_seed(1)
    fresh = build_autoencoder(**info["architecture"])
    x = torch.rand(16, 64)
    with torch.no_grad():
        assert not torch.equal(fresh(x), model(x))
        load_checkpoint(first.path, "conv-latent2", fresh, architecture={"kind": "conv", "latent": 2})
        assert torch.equal(fresh(x), model(x))
    assert not (second.path / "checkpoints").exists()


def test_wrong_shapes_and_architectures_are_one_line_errors(tmp_path):
    model = DenseAutoencoder(in_dim=64, latent=2, hidden=(16, 8))
    run = Run.create(tmp_path, "demo", Cfg(), "cpu")
    save_checkpoint(run, "mlp", model, architecture=model.architecture())
    with pytest.raises(ConfigError) as err:
        load_checkpoint(run.path, "mlp", DenseAutoencoder(64, 32, (16, 8)), architecture={"latent": 32})
    assert "checkpoint 'mlp' has latent=2, this run asks for latent=32" in _one_line(err)
    with pytest.raises(DataError) as err:  # no architecture to compare: the shapes catch it
        load_checkpoint(run.path, "mlp", DenseAutoencoder(64, 32, (16, 8)))
    assert "encoder.4.weight has shape (2, 8), the model expects (32, 8)" in _one_line(err)
    with pytest.raises(DataError) as err:
        load_checkpoint(run.path, "mlp", ConvAutoencoder((8, 8), latent=2))
    assert "does not fit the model: missing encoder.1.weight" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        load_checkpoint(run.path, "conv", model)
    assert "has no checkpoint 'conv' (it has: mlp)" in _one_line(err)
    with pytest.raises(ConfigError, match="is not a folder"):
        load_checkpoint(tmp_path / "nowhere", "mlp", model)


class Payload:
    """Anything that is not a tensor or a plain container."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_files_that_are_not_plain_state_dicts_are_refused(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"encoder.0.weight": torch.zeros(2), "hook": Payload()}, evil)
    with pytest.raises(DataError) as err:
        read_state_dict(evil)
    assert "is not a plain state_dict (torch.load(weights_only=True) refused it" in _one_line(err)
    assert "this must never run" not in capsys.readouterr().out
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Payload(), protocol=2))  # a bare pickle, not a torch zip file
    with pytest.raises(DataError, match="not a plain state_dict"):
        read_state_dict(raw)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(DataError, match="holds a Tensor, not a state_dict"):
        read_state_dict(tensor)
    nested = tmp_path / "nested.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, nested)
    with pytest.raises(DataError, match="holds a dict, not a state_dict"):
        read_state_dict(nested)


def test_a_swapped_pt_file_is_caught_by_its_shapes(tmp_path):
    run = Run.create(tmp_path, "demo", Cfg(), "cpu")
    model = DenseAutoencoder(in_dim=64, latent=2, hidden=(16, 8))
    save_checkpoint(run, "mlp", model, architecture=model.architecture())
    other = DenseAutoencoder(in_dim=64, latent=3, hidden=(16, 8))
    torch.save(other.state_dict(), run.path / "checkpoints" / "mlp.pt")
    info = json.loads((run.path / "checkpoints" / "mlp.json").read_text())
    with pytest.raises(DataError, match="does not fit the model"):
        load_checkpoint(run.path, "mlp", build_autoencoder(**info["architecture"]))
    check_state_dict(other, other.state_dict(), "same")  # its own state passes


@pytest.mark.parametrize("change, fragment", [
    ({"extra": 1}, "unknown key 'extra'"),
    ({"latent": "two"}, "latent='two'; expected an integer >= 1"),
    ({"channels": ["16", 32]}, "expected a list of any number of integers >= 1"),
    ({"channels": [10**8, 32]}, "choose smaller sizes"),
    ({"image_shape": [8, 8, 8]}, "expected a list of 2 integers >= 1"),
    ({"latent": True}, "latent=True"),
    ({"kind": "unet"}, "arch='unet' is not one of mlp, conv"),
])
def test_hostile_checkpoint_description_is_refused_before_building(tmp_path, change, fragment):
    model = ConvAutoencoder((8, 8), latent=2)
    run = Run.create(tmp_path, "demo", Cfg(), "cpu")
    save_checkpoint(run, "conv", model, architecture=model.architecture())
    path = run.path / "checkpoints" / "conv.json"
    info = json.loads(path.read_text())
    info["architecture"].update(change)
    path.write_text(json.dumps(info))
    with pytest.raises(ConfigError) as err:
        build_autoencoder(**checkpoint_info(run.path, "conv")["architecture"])
    assert fragment in _one_line(err)


def test_sound_description_builds_the_saved_model(tmp_path):
    model = DenseAutoencoder(in_dim=64, latent=3, hidden=(16, 8), latent_activation="none")
    assert build_autoencoder(**json.loads(json.dumps(model.architecture()))).architecture() == model.architecture()


def test_a_numpy_network_is_saved_as_tensors_and_comes_back_bit_for_bit(tmp_path):
    import numpy as np

    from trainlab.scratch.network import NeuralNetwork

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    net = NeuralNetwork([6, 5, 3], activation="sigmoid", num_epochs=2, seed=3).fit(X, y)
    run = Run.create(tmp_path, "demo", Cfg(), "cpu")
    save_checkpoint(run, "sigmoid", net, architecture=net.architecture(), config=Cfg())
    assert set(torch.load(run.path / "checkpoints" / "sigmoid.pt", weights_only=True)) == {"W0", "b0", "W1", "b1"}
    state, info = read_checkpoint(run.path, "sigmoid")
    back = NeuralNetwork.from_state_dict(state, info["architecture"])
    assert repr(back) == repr(net)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
