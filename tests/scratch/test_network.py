"""The NumPy network against the same network built in PyTorch: activations, loss, gradients, one SGD step."""

import numpy as np
import pytest
import torch

from trainlab.scratch.init import INITS
from trainlab.scratch.network import NeuralNetwork

ACTS = ["relu", "sigmoid", "tanh", "identity"]
TORCH_ACT = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "identity": lambda z: z}
SIZES = [7, 6, 5, 4]


def batch(n=9, d=SIZES[0], k=SIZES[-1], seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


def torch_net(net: NeuralNetwork, X: np.ndarray, y: np.ndarray):
    """The same network in float64 torch: activations, probabilities, loss and leaf weights."""
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in net.biases]
    a = torch.tensor(X, dtype=torch.float64)
    acts = [a]
    for W, b in zip(Ws[:-1], bs[:-1], strict=True):
        a = TORCH_ACT[net.activation](a @ W + b)
        acts.append(a)
    logits = a @ Ws[-1] + bs[-1]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    return acts, torch.softmax(logits, dim=1), loss, Ws, bs


@pytest.mark.parametrize("activation", ACTS)
def test_forward_loss_and_every_gradient_match_torch(activation):
    # Scale weights up so that relu kinks, sigmoid saturation and softmax all matter.
    net = NeuralNetwork(SIZES, activation=activation, weight_init="normal", seed=3)
    net.weights = [W * 60 for W in net.weights]
    net.biases = [np.random.default_rng(i).normal(size=b.shape).astype(np.float32) for i, b in enumerate(net.biases)]
    X, y = batch()
    ours = net.forward(X)
    t_acts, t_probs, t_loss, Ws, bs = torch_net(net, X, y)

    assert len(ours) == len(SIZES)
    assert all(a.dtype == np.float32 for a in ours)
    for a, ta in zip(ours[:-1], t_acts, strict=True):
        np.testing.assert_allclose(a, ta.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours[-1], t_probs.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert net.loss(X, y) == pytest.approx(t_loss.item(), rel=1e-5)

    grads = net.backward(ours, y)
    assert len(grads) == len(Ws)
    for (dW, db), W, b in zip(grads, Ws, bs, strict=True):
        assert dW.shape == W.shape and db.shape == b.shape
        assert dW.dtype == np.float32
        np.testing.assert_allclose(dW, W.grad.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(db, b.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ACTS)
def test_one_sgd_step_matches_torch_sgd(activation):
    net = NeuralNetwork(SIZES, activation=activation, learning_rate=0.5, weight_init="xavier", seed=5)
    X, y = batch(seed=2)
    _, t_probs, t_loss, Ws, bs = torch_net(net, X, y)
    opt = torch.optim.SGD(Ws + bs, lr=0.5)
    opt.step()
    loss, correct = net.step(X, y)
    assert loss == pytest.approx(t_loss.item(), rel=1e-5)
    assert correct == int((t_probs.argmax(dim=1).numpy() == y).sum())
    for ours, theirs in zip(net.weights + net.biases, Ws + bs, strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_softmax_is_stable_for_huge_logits():
    net = NeuralNetwork([2, 3], activation="linear")
    net.weights[0] = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    X = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    probs = net.predict_proba(X)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    # torch's log-softmax is the oracle for the loss of a confidently wrong prediction.
    expected = torch.nn.functional.cross_entropy(torch.tensor(X @ net.weights[0], dtype=torch.float64), torch.tensor([1, 0]))
    assert net.loss(X, np.array([1, 0])) == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize(
    "init,std",
    [("normal", 0.01), ("random", 0.02 / np.sqrt(12)), ("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / 700))],
)
def test_initialisations_have_their_textbook_spread(init, std):
    net = NeuralNetwork([400, 300, 2], weight_init=init, seed=0)
    W = net.weights[0]
    assert W.mean() == pytest.approx(0.0, abs=4 * std / np.sqrt(W.size))
    assert W.std() == pytest.approx(std, rel=0.02)
    assert all(not b.any() for b in net.biases)


def test_zero_init_keeps_hidden_units_identical():
    X, y = batch(n=40)
    # sigmoid(0) = 0.5 != 0, so gradients do flow back; they are just the same for every unit.
    net = NeuralNetwork(SIZES, activation="sigmoid", weight_init="zero", num_epochs=3, batch_size=8).fit(X, y)
    for W in net.weights[:-1]:  # every hidden unit has the same incoming weights
        assert np.abs(W).max() > 0
        np.testing.assert_allclose(W, np.repeat(W[:, :1], W.shape[1], axis=1), rtol=1e-5, atol=1e-8)
    assert set(INITS) == {"zero", "random", "normal", "he", "xavier"}
