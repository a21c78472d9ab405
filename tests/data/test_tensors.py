"""User .pt files: weights-only loading, one-line errors for pickles, missing keys and bad shapes."""

import pytest
import torch

from trainlab.data.tensors import load_energy_data, load_tensor_file
from trainlab.errors import DataError


class Custom:  # a class the weights-only unpickler must refuse
    pass


def test_good_files_as_dict_or_tuple(tmp_path):
    x, e = torch.rand(5, 3), torch.rand(5, 1)
    torch.save({"x": x, "energy": e}, tmp_path / "d.pt")
    torch.save((x, e.squeeze(1)), tmp_path / "t.pt")
    for name in ("d.pt", "t.pt"):
        gx, ge = load_energy_data(tmp_path / name)
        assert torch.equal(gx, x) and torch.equal(ge, e.squeeze(1))


@pytest.mark.parametrize("content, message", [
    ({"x": torch.rand(5, 3)}, "lacks key\\(s\\) energy.*found keys x"),
    ({"x": torch.rand(5, 3), "energy": torch.rand(4, 1)}, "energy must be \\(5, 1\\).*found shape \\(4, 1\\)"),
    ({"x": torch.rand(5), "energy": torch.rand(5, 1)}, "x must be \\(n, d\\)"),
    ((torch.rand(5, 3),), "holds a tuple of length 1"),
    ({"x": torch.zeros(5, 3, dtype=torch.long), "energy": torch.rand(5, 1)}, "float tensor.*int64"),
    ({"x": torch.full((5, 3), float("nan")), "energy": torch.rand(5, 1)}, "finite"),
    ({"x": torch.rand(0, 3), "energy": torch.rand(0, 1)}, "n, d >= 1.*\\(0, 3\\)"),  # no rows
    ({"x": torch.rand(5, 0), "energy": torch.rand(5, 1)}, "n, d >= 1.*\\(5, 0\\)"),  # rows of nothing
])
def test_bad_data_files_are_one_line_errors(tmp_path, content, message):
    torch.save(content, tmp_path / "bad.pt")
    with pytest.raises(DataError, match=message) as err:
        load_energy_data(tmp_path / "bad.pt")
    assert "\n" not in str(err.value)


def test_pickles_junk_and_missing_files_are_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 1), tmp_path / "module.pt")
    with pytest.raises(DataError, match="holds a pickled torch.nn.modules.linear.Linear.*state_dict") as err:
        load_tensor_file(tmp_path / "module.pt", "weights")
    assert "\n" not in str(err.value)
    torch.save({"x": Custom()}, tmp_path / "obj.pt")
    with pytest.raises(DataError, match="pickled .*Custom"):
        load_energy_data(tmp_path / "obj.pt")
    (tmp_path / "junk.pt").write_bytes(b"hello world")
    with pytest.raises(DataError, match="not a torch file"):
        load_tensor_file(tmp_path / "junk.pt", "weights")
    with pytest.raises(DataError, match="does not exist"):
        load_tensor_file(tmp_path / "nope.pt", "weights")
