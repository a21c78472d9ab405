"""The EnergyRegressor is the study's class: same printout, same state_dict keys and shapes."""

import pytest
import torch
from torch import nn

from trainlab.nn.energy import EnergyRegressor, STUDY_WIDTHS, energy_flops, halving_widths, parameter_count


class StudyEnergyRegressor(nn.Module):
    """The study's class as its printout shows it."""

    def __init__(self):
        super().__init__()
        sizes = [784, *STUDY_WIDTHS, 1]
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x):
        return self.net(x)


def test_study_state_dict_loads_as_is_and_gives_the_same_energies():
    torch.manual_seed(0)
    study = StudyEnergyRegressor()
    ours = EnergyRegressor()
    ours.load_state_dict(study.state_dict())  # strict: same keys and shapes
    x = torch.rand(3, 784)
    assert torch.equal(ours(x), study(x))
    assert ours.energy(x).shape == (3,)
    assert str(ours).replace("EnergyRegressor", "X") == str(study).replace("StudyEnergyRegressor", "X")
    assert "(24): Linear(in_features=2, out_features=1, bias=True)" in str(ours)
    assert parameter_count(ours) == pytest.approx(14.4e6, rel=0.01)
    assert EnergyRegressor.from_state_dict(study.state_dict()).widths == STUDY_WIDTHS


def test_narrow_regressor_and_flops():
    assert halving_widths(64) == (64, 32, 16, 8, 4, 2)
    with pytest.raises(ValueError):
        halving_widths(48)
    model = EnergyRegressor(64, halving_widths(64))
    assert model.in_dim == 64 and model.widths == (64, 32, 16, 8, 4, 2)
    macs = 64 * 64 + 64 * 32 + 32 * 16 + 16 * 8 + 8 * 4 + 4 * 2 + 2 * 1
    assert energy_flops(model, 10) == 4 * macs * 10


def test_init_for_training_standardises_every_layer_on_the_data():
    # the study's shape on image-like inputs: every hidden unit's pre-activation has mean 0.5 and std 1 on
    # the batch (so no unit of the 2- and 4-wide tail is dead), the output mean 0 and std 1
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(512, 784, generator=gen) * 2 - 1
    model = EnergyRegressor(784, halving_widths(256)).init_for_training(x, generator=gen)
    h = x
    with torch.no_grad():
        for m in model.net:
            if isinstance(m, nn.Linear):
                z = m(h)
                want = 0.0 if m is model.net[-1] else 0.5
                assert torch.allclose(z.mean(0), torch.full_like(z[0], want), atol=1e-4)
                assert torch.allclose(z.std(0), torch.ones_like(z[0]), atol=1e-4)
                if m is not model.net[-1]:
                    assert bool(((z > 0).float().mean(0) > 0.2).all())  # alive on the data, every unit
            h = m(h)
    # active=None, the earlier recipe: biases 0.5 in the hidden layers, only the output standardised
    earlier = EnergyRegressor(784, halving_widths(256)).init_for_training(x, torch.Generator().manual_seed(2), None)
    assert all(bool((m.bias == 0.5).all()) for m in earlier.net[:-1] if isinstance(m, nn.Linear))
    with torch.no_grad():
        out = earlier(x).squeeze(-1)
    assert abs(float(out.mean())) < 1e-4 and abs(float(out.std()) - 1) < 1e-4
    # the weights come from the generator alone: the same seed, the same model
    first = EnergyRegressor(8, (4, 2)).init_for_training(x[:, :8], generator=torch.Generator().manual_seed(5))
    second = EnergyRegressor(8, (4, 2)).init_for_training(x[:, :8], generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_fold_output_scale_rescales_predictions():
    torch.manual_seed(1)
    model = EnergyRegressor(8, (4, 2))
    x = torch.randn(5, 8)
    before = model(x).detach()
    model.fold_output_scale(3.0, -2.0)
    assert torch.allclose(model(x), 3.0 * before - 2.0, atol=1e-6)


def test_from_state_dict_refuses_what_is_not_the_regressor():
    from trainlab.errors import DataError

    state = EnergyRegressor(6, (4, 2)).state_dict()
    assert EnergyRegressor.from_state_dict(state, in_dim=6).widths == (4, 2)
    bad = dict(state)
    del bad["net.2.bias"]
    with pytest.raises(DataError, match="missing net.2.bias"):
        EnergyRegressor.from_state_dict(bad)
    with pytest.raises(DataError, match="unexpected extra"):
        EnergyRegressor.from_state_dict({**state, "extra": torch.zeros(1)})
    wrong = {**state, "net.2.weight": torch.zeros(2, 3)}
    with pytest.raises(DataError, match=r"net.2.weight/bias have shapes \(2, 3\)/\(2,\), expected \(2, 4\)"):
        EnergyRegressor.from_state_dict(wrong)
    with pytest.raises(DataError, match="inputs of 6 values but the data have 784"):
        EnergyRegressor.from_state_dict(state, in_dim=784)
    with pytest.raises(DataError, match="found list"):
        EnergyRegressor.from_state_dict([1, 2])
    with pytest.raises(DataError, match="found keys fc1.weight"):
        EnergyRegressor.from_state_dict({"fc1.weight": torch.zeros(2, 2)})


def _tiny_weights_file(tmp_path, state):
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    assert path.stat().st_size < 4096  # a small file, whatever it claims
    return path


@pytest.mark.parametrize("state, fragment", [
    ({"net.200000000.weight": torch.zeros(1, 2), "net.0.bias": torch.zeros(1)}, "a layer numbered net.200000000"),
    ({"net.0.weight": torch.tensor(1.0), "net.0.bias": torch.zeros(1)}, "net.0.weight has 0 dimensions, expected 2"),
    ({"net.0.weight": torch.zeros(1, 3), "net.0.bias": torch.tensor(0.5)}, "net.0.bias has 0 dimensions, expected 1"),
    ({"net.0.weight": torch.zeros(1, 3, 1), "net.0.bias": torch.zeros(1)}, "net.0.weight has 3 dimensions"),
])
def test_hostile_weights_file_is_one_line_before_anything_is_built(tmp_path, state, fragment):
    from trainlab.data.tensors import load_tensor_file
    from trainlab.errors import DataError

    loaded = load_tensor_file(_tiny_weights_file(tmp_path, state), "weights")
    with pytest.raises(DataError, match=fragment) as info:
        EnergyRegressor.from_state_dict(loaded, source="weights file w.pt")
    assert "\n" not in str(info.value)
