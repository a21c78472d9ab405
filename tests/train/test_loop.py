import math

import pytest
import torch
from torch import nn

from trainlab.device import torch_generator
from trainlab.errors import ConfigError
from trainlab.nn.mlp import MLP
from trainlab.train.loop import batch_indices, evaluate, fit, make_optimizer


def _blobs(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + torch.stack([y * 3.0, y * 3.0], 1)
    return x, y


def test_batches_cover_every_index_once_and_are_seeded():
    a = torch.cat(list(batch_indices(103, 10, torch_generator(1), torch.device("cpu"))))
    b = torch.cat(list(batch_indices(103, 10, torch_generator(1), torch.device("cpu"))))
    assert sorted(a.tolist()) == list(range(103))
    assert torch.equal(a, b)


def test_fit_learns_separable_data_and_records_history():
    x, y = _blobs()
    torch.manual_seed(0)
    model = MLP(2, 8, 2, "relu")
    result = fit(model, x, y, optimizer=make_optimizer("adam", model.parameters(), 0.05),
                 loss_fn=nn.CrossEntropyLoss(), epochs=5, batch_size=32, generator=torch_generator(0),
                 on_epoch=lambda e: {"val_acc": evaluate(model, x, y)["acc"]}, progress=False)
    assert result.status == "done"
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert evaluate(model, x, y)["acc"] > 95


def test_nan_loss_stops_with_diverged():
    x, y = _blobs()
    model = MLP(2, 8, 2, "relu")
    result = fit(model, x, y, optimizer=make_optimizer("sgd", model.parameters(), 1e30),
                 loss_fn=nn.CrossEntropyLoss(), epochs=50, batch_size=400, generator=torch_generator(0),
                 progress=False)
    assert result.status == "diverged"
    assert len(result.history) < 50
    assert not math.isfinite(result.history[-1]["train_loss"])


def test_evaluate_accuracy_and_loss_agree_with_direct_computation():
    x, y = _blobs()
    model = MLP(2, 4, 2, "sigmoid")
    out = evaluate(model, x, y, nn.CrossEntropyLoss(), batch_size=64)
    with torch.no_grad():
        logits = model(x)
    assert math.isclose(out["acc"], (logits.argmax(1) == y).float().mean().item() * 100, rel_tol=1e-6)
    assert math.isclose(out["loss"], nn.functional.cross_entropy(logits, y).item(), rel_tol=1e-5)


def test_mlp_printout_matches_the_seed():
    text = str(MLP(784, 5, 2, "sigmoid"))
    assert text.splitlines()[1:4] == [
        "  (fc1): Linear(in_features=784, out_features=5, bias=True)",
        "  (activation): Sigmoid()",
        "  (fc2): Linear(in_features=5, out_features=2, bias=True)",
    ]


def test_an_lr_adams_first_step_cannot_hold_is_refused_and_one_it_can_diverges_cleanly():
    x, y = _blobs()
    model = MLP(2, 8, 2, "relu")
    with pytest.raises(ConfigError, match="^lr=1e\\+38 is too large for Adam") as info:
        make_optimizer("adam", model.parameters(), 1e38)  # torch.optim.Adam raises mid-step
    assert "\n" not in str(info.value)
    make_optimizer("sgd", model.parameters(), 3e38)  # SGD's step is lr itself: it fits
    result = fit(model, x, y, optimizer=make_optimizer("adam", model.parameters(), 3e37),
                 loss_fn=nn.CrossEntropyLoss(), epochs=3, batch_size=100, generator=torch_generator(0),
                 progress=False)
    assert result.status == "diverged"


def test_an_lr_schedule_is_stepped_after_every_optimizer_step():
    # oracle: the same batches by hand, the learning rate set from warm-up + cosine's closed form before each step
    from trainlab.train.warmup_ema import warmup_cosine

    x, y = _blobs(n=100)
    epochs, batch, lr, warmup = 3, 16, 0.05, 5
    steps = epochs * math.ceil(100 / batch)
    torch.manual_seed(0)
    fitted = MLP(2, 8, 2, "relu")
    by_hand = MLP(2, 8, 2, "relu")
    by_hand.load_state_dict(fitted.state_dict())
    opt = torch.optim.Adam(fitted.parameters(), lr=lr)
    fit(fitted, x, y, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), epochs=epochs, batch_size=batch,
        generator=torch_generator(3), progress=False, lr_schedule=warmup_cosine(opt, steps, warmup))

    hand_opt = torch.optim.Adam(by_hand.parameters(), lr=lr)
    gen, step = torch_generator(3), 0
    for _ in range(epochs):
        for idx in batch_indices(100, batch, gen, torch.device("cpu")):
            cosine = 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))
            factor = (step + 1) / warmup if step < warmup else cosine
            hand_opt.param_groups[0]["lr"] = lr * factor
            loss = nn.CrossEntropyLoss()(by_hand(x[idx]), y[idx])
            hand_opt.zero_grad()
            loss.backward()
            hand_opt.step()
            step += 1
    assert step == steps and opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed to 0 at the end
    for a, b in zip(fitted.parameters(), by_hand.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
