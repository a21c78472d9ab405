"""The NumPy network's scikit-learn style interface: fit, predict, score, history, save/load, errors."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from trainlab.errors import DataError
from trainlab.scratch.network import NeuralNetwork


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    return X[:1200], d.target[:1200], X[1200:], d.target[1200:]


def test_fit_learns_digits_and_records_history(digits):
    X, y, Xv, yv = digits
    net = NeuralNetwork([64, 32, 10], activation="tanh", learning_rate=0.1, weight_init="xavier", batch_size=32, num_epochs=15)
    assert net.fit(X, y, Xv, yv) is net
    assert net.score(Xv, yv) > 0.9
    assert net.result.status == "done" and net.result.seconds > 0
    assert [r["epoch"] for r in net.result.history] == list(range(1, 16))
    h = net.history
    assert len(h["train_loss"]) == len(h["val_loss"]) == len(h["val_acc"]) == 15
    assert h["train_loss"][-1] < h["train_loss"][0] / 3
    # val_* are full passes after each epoch, so the last must equal a fresh evaluation.
    assert h["val_loss"][-1] == pytest.approx(net.loss(Xv, yv), rel=1e-6)
    assert h["val_acc"][-1] == pytest.approx(net.score(Xv, yv))
    proba = net.predict_proba(Xv)
    assert proba.shape == (len(Xv), 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(net.predict(Xv), proba.argmax(axis=1))
    assert net.hidden_features(Xv).shape == (len(Xv), 32)


def test_same_seed_same_result_and_fit_restarts(digits):
    X, y, _, _ = digits
    a = NeuralNetwork([64, 16, 10], num_epochs=2, seed=4).fit(X, y)
    b = NeuralNetwork([64, 16, 10], num_epochs=2, seed=4).fit(X, y)
    c = NeuralNetwork([64, 16, 10], num_epochs=2, seed=5).fit(X, y)
    np.testing.assert_array_equal(a.weights[0], b.weights[0])
    assert not np.array_equal(a.weights[0], c.weights[0])
    first = a.history["train_loss"]
    a.fit(X, y)  # fit starts from a fresh initialisation, like scikit-learn's
    assert a.history["train_loss"] == first


def test_divergence_is_flagged_not_raised(digits):
    X, y, _, _ = digits
    net = NeuralNetwork([64, 64, 64, 10], activation="linear", learning_rate=50.0, weight_init="he", num_epochs=5)
    net.fit(X * 100, y)
    assert net.diverged and net.result.status == "diverged"
    assert len(net.history["train_loss"]) < 5 or not np.isfinite(net.history["train_loss"][-1])


def test_save_load_round_trip(tmp_path, digits):
    X, y, Xv, yv = digits
    net = NeuralNetwork([64, 20, 12, 10], activation="sigmoid", learning_rate=0.3, weight_init="normal", batch_size=16, num_epochs=2, seed=9)
    net.fit(X, y, Xv, yv)
    path = net.save(tmp_path / "net.npz")
    back = NeuralNetwork.load(path)
    assert repr(back) == repr(net)
    assert back.history == net.history and back.result == net.result
    np.testing.assert_array_equal(back.predict_proba(Xv), net.predict_proba(Xv))
    with np.load(path, allow_pickle=False) as data:  # loadable without pickle
        assert "W0" in data.files


def test_load_rejects_other_files(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not a network")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    for path in (text, other, single):
        with pytest.raises(ValueError, match="not a saved NeuralNetwork"):
            NeuralNetwork.load(path)
    with pytest.raises(FileNotFoundError):
        NeuralNetwork.load(tmp_path / "missing.npz")


def test_load_rejects_wrong_weight_shapes(tmp_path):
    path = NeuralNetwork([4, 3, 2]).save(tmp_path / "net.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["W1"] = np.zeros((5, 2), np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="not a saved NeuralNetwork"):
        NeuralNetwork.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"activation": "gelu"}, "activation='gelu' is not one of relu, sigmoid, tanh, identity"),
        ({"weight_init": "orthogonal"}, "weight_init='orthogonal' is not one of"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_epochs": -1}, "num_epochs"),
        ({"layer_sizes": [10]}, "layer_sizes"),
        ({"layer_sizes": [10, 0, 3]}, "layer_sizes"),
        ({"layer_sizes": [10, 1]}, ">= 2 classes"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs, match):
    args = {"layer_sizes": [64, 8, 10], **kwargs}
    with pytest.raises(ValueError, match=match):
        NeuralNetwork(**args)


def test_bad_data_shapes_raise_value_errors(digits):
    X, y, Xv, yv = digits
    net = NeuralNetwork([784, 8, 10], num_epochs=1)
    with pytest.raises(ValueError, match="X has 64 features but layer_sizes\\[0\\] is 784"):
        net.fit(X, y)
    net = NeuralNetwork([64, 8, 10], num_epochs=1)
    with pytest.raises(ValueError, match="one label per row"):
        net.fit(X, y[:-1])
    with pytest.raises(ValueError, match="2-D"):
        net.fit(X[0], y[:1])
    with pytest.raises(ValueError, match="layer_sizes\\[-1\\]=10"):
        net.fit(X, y + 5)
    with pytest.raises(ValueError, match="both X_val and y_val"):
        net.fit(X, y, Xv)
    with pytest.raises(ValueError, match="X_val has 63 features"):
        net.fit(X, y, Xv[:, :63], yv)
    with pytest.raises(ValueError, match="one label per row"):
        net.score(Xv, yv[:5])
    with pytest.raises(ValueError, match="integer class labels"):
        net.fit(X, y + 0.5)


def test_a_file_in_the_original_npz_layout_still_loads(tmp_path):
    """The .npz layout that NeuralNetwork.save wrote before networks went through checkpoints."""
    rng = np.random.default_rng(0)
    W0, b0, W1, b1 = (rng.normal(size=s).astype(np.float32) for s in [(4, 3), (3,), (3, 2), (2,)])
    np.savez(tmp_path / "old.npz", format=np.array("trainlab.scratch.NeuralNetwork/1"),
             layer_sizes=np.array([4, 3, 2], dtype=np.int64), activation=np.array("linear"),
             weight_init=np.array("he"), learning_rate=np.array(0.05), batch_size=np.array(8),
             num_epochs=np.array(3), seed=np.array(7), status=np.array("done"), seconds=np.array(1.5),
             W0=W0, b0=b0, W1=W1, b1=b1, history_train_loss=np.array([0.9, 0.7]),
             history_train_acc=np.array([0.5, 0.6]), history_val_loss=np.array([]), history_val_acc=np.array([]))
    net = NeuralNetwork.load(tmp_path / "old.npz")
    assert repr(net) == ("NeuralNetwork(layer_sizes=[4, 3, 2], activation='identity', learning_rate=0.05, "
                         "weight_init='he', batch_size=8, num_epochs=3, seed=7)")
    np.testing.assert_array_equal(net.weights[1], W1)
    assert net.result.seconds == 1.5 and net.history["train_loss"] == [0.9, 0.7]
    x = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(net.forward(x)[1], x @ W0 + b0)  # identity hidden layer


def test_from_state_dict_checks_the_description_before_building(digits):
    X, y, _, _ = digits
    net = NeuralNetwork([64, 8, 10], activation="tanh", num_epochs=1).fit(X, y)
    same = NeuralNetwork.from_state_dict(net.state_dict(), net.architecture())
    np.testing.assert_array_equal(same.predict_proba(X), net.predict_proba(X))
    huge = {**net.architecture(), "layer_sizes": [64, 10**9, 10]}  # would allocate 2.6 GB if built first
    nan = {**net.state_dict(), "b0": np.full(8, np.nan, np.float32)}
    for state, architecture, match in [
        (net.state_dict(), huge, "W0 has shape"),
        (net.state_dict(), {**net.architecture(), "activation": "swish"}, "activation='swish'"),
        (net.state_dict(), {**net.architecture(), "layer_sizes": [64, 10]}, "needs W0, b0"),
        (net.state_dict(), {**net.architecture(), "dropout": 0.5}, "takes only"),
        (nan, net.architecture(), "b0 is not finite"),
        ({**net.state_dict(), "W2": np.zeros((10, 2), np.float32)}, net.architecture(), "the weights hold"),
    ]:
        with pytest.raises(DataError, match=match):
            NeuralNetwork.from_state_dict(state, architecture)


def test_on_epoch_sees_each_epoch_as_it_ends_and_may_stop_training(digits):
    X, y, Xv, yv = digits
    seen = []
    net = NeuralNetwork([64, 16, 10], learning_rate=0.1, batch_size=64, num_epochs=3)
    net.fit(X, y, Xv, yv, on_epoch=seen.append)
    assert seen == net.result.history and [r["epoch"] for r in seen] == [1, 2, 3]

    class Stop(Exception):
        pass

    def stop_at_two(record):
        seen.append(record)
        if record["epoch"] == 2:
            raise Stop

    seen.clear()
    with pytest.raises(Stop):  # a tune's pruner stops a training this way
        NeuralNetwork([64, 16, 10], learning_rate=0.1, batch_size=64, num_epochs=3).fit(X, y, Xv, yv,
                                                                                       on_epoch=stop_at_two)
    assert [r["epoch"] for r in seen] == [1, 2]
