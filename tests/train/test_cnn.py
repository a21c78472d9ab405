"""The airbench-style trainer: schedule, lookahead, optimizer groups, TTA, and learning a tiny task."""

import json
import math

import pytest
import torch
from distributed_worker import stripes

from trainlab.nn.cnn import FastCNN
from trainlab.train.cnn import (
    CNNTraining,
    Lookahead,
    evaluate_cnn,
    make_optimizer,
    train_cnn,
    triangle,
    tta_logits,
)


def tiny_settings(**kw) -> CNNTraining:
    base = dict(epochs=6, batch_size=32, lr=4.0, whiten_bias_epochs=1, translate=1, tta_level=2)
    return CNNTraining(**{**base, **kw})


def test_triangle_schedule_hits_its_three_points():
    assert triangle(0, 100, 0.2, 0.25, 0.05) == pytest.approx(0.2)
    assert triangle(25, 100, 0.2, 0.25, 0.05) == pytest.approx(1.0)
    assert triangle(100, 100, 0.2, 0.25, 0.05) == pytest.approx(0.05)
    assert triangle(10, 100, 0.0, 0.2, 0.0) == pytest.approx(0.5)


def test_lookahead_is_an_ema_the_network_is_reset_to():
    net = torch.nn.Linear(2, 1)
    start = net.weight.detach().clone()
    la = Lookahead(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    la.update(net, decay=0.75)
    assert torch.allclose(net.weight, start + 0.25)
    assert torch.allclose(la.average["weight"], net.weight)


def test_optimizer_groups_and_decoupled_rates():
    model = FastCNN(1, 2, (4, 8, 8), image_size=8)
    s = CNNTraining(lr=10.0, momentum=0.5, weight_decay=0.01, bias_scaler=8.0)
    opt = make_optimizer(model, s, batch_size=256)
    groups = {g["role"]: g for g in opt.param_groups}
    lr = 10.0 / (1024 * (1 + 1 / 0.5))
    assert groups["other"]["lr"] == pytest.approx(lr)
    assert groups["norm"]["lr"] == pytest.approx(8 * lr)
    # effective decay per step (lr x weight_decay) is the same for every group
    for g in groups.values():
        assert g["lr"] * g["weight_decay"] == pytest.approx(0.01 * 256 / (1024 * 3))
    assert [p.shape for p in groups["whiten"]["params"]] == [torch.Size([8])]
    assert opt.defaults["nesterov"]


def test_tta_levels():
    model = FastCNN(1, 3, (2, 4, 4), image_size=8).eval()
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(tta_logits(model, x, 0), model(x))
        assert torch.allclose(tta_logits(model, x, 1), 0.5 * (model(x) + model(x.flip(-1))))
        assert torch.allclose(tta_logits(model, x, 1, flip=False), model(x))
        assert tta_logits(model, x, 2).shape == (4, 3)


def test_learns_a_tiny_task_and_is_seeded():
    torch.manual_seed(0)
    train, test = stripes(256, 0), stripes(128, 1)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = FastCNN(1, 2, (8, 16, 16), image_size=8)
        result = train_cnn(model, train, tiny_settings(), generator=torch.Generator().manual_seed(3), test=test,
                           progress=False)
        runs.append((model, result))
    (model, result), (_, again) = runs
    assert result.status == "done" and len(result.history) == 6 and result.seconds > 0
    assert set(result.history[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc"}
    assert result.history == again.history
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    final = evaluate_cnn(model, *test, tta_level=2)
    assert final.acc > 95 and final.predictions.shape == (128,)


def test_fractional_epochs_and_sets_smaller_than_a_batch():
    model = FastCNN(1, 2, (2, 4, 4), image_size=8)
    result = train_cnn(model, stripes(10, 0), tiny_settings(epochs=2.5, batch_size=4), progress=False,
                       generator=torch.Generator().manual_seed(0))
    assert len(result.history) == 3  # 2 full batches per epoch, 2.5 epochs: 5 steps in epochs of 2, 2 and 1
    result = train_cnn(FastCNN(1, 2, (2, 4, 4), image_size=8), stripes(5, 0),
                       tiny_settings(epochs=2, batch_size=1024), generator=torch.Generator().manual_seed(0),
                       progress=False)
    assert result.status == "done" and len(result.history) == 2


def test_huge_learning_rate_is_reported_as_diverged():
    model = FastCNN(1, 2, (2, 4, 4), image_size=8)
    result = train_cnn(model, stripes(64, 0), tiny_settings(lr=1e38, label_smoothing=0.0),
                       generator=torch.Generator().manual_seed(0), progress=False)
    assert result.status == "diverged"
    assert not math.isfinite(result.history[-1]["train_loss"])


def _train_tiny(snapshot=None, seed=0) -> tuple[FastCNN, object]:
    """The tiny stripes task, lookahead from epoch 3 on; ``seed`` sets the initial
    weights and the generator (a resumed training must take both from its snapshot)."""
    torch.manual_seed(seed)
    model = FastCNN(1, 2, (4, 8, 8), image_size=8)
    result = train_cnn(model, stripes(128, 0), tiny_settings(epochs=5), test=stripes(64, 1), progress=False,
                       generator=torch.Generator().manual_seed(3 + seed), snapshot=snapshot)
    return model, result


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_a_training_stopped_at_an_epoch_boundary_continues_to_the_same_weights(tmp_path, monkeypatch, stop_after):
    # 5 epochs of 4 steps, lookahead from step 10 (epoch 3): saves after epochs 1-4, then the finished one (5).
    from trainlab.resume import STOP_AFTER, RunSnapshots

    whole, expected = _train_tiny()
    monkeypatch.setenv(STOP_AFTER, str(stop_after))
    with pytest.raises(KeyboardInterrupt):
        _train_tiny(RunSnapshots(tmp_path, every_s=0).slot("cnn"))
    monkeypatch.delenv(STOP_AFTER)
    store = RunSnapshots(tmp_path, every_s=0)  # a new process: the folder is all it has
    resumed, result = _train_tiny(store.slot("cnn"), seed=1)  # other initial weights and generator seed
    assert result.history == expected.history and result.status == "done"
    for name, value in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert RunSnapshots(tmp_path, every_s=0).load("cnn").finished


def test_a_training_snapshots_only_when_its_slot_is_due(tmp_path):
    from trainlab.resume import MANIFEST, STATE_DIR, RunSnapshots

    _train_tiny(RunSnapshots(tmp_path, every_s=3600).slot("cnn"))
    manifest = json.loads((tmp_path / STATE_DIR / MANIFEST).read_text())
    assert manifest["count"] == 1 and manifest["files"] == {"cnn": "cnn-1"}  # only the finished one


def test_compile_with_bf16_autocast_is_refused_in_one_line(monkeypatch):
    import trainlab.train.cnn as cnn
    from trainlab.errors import ConfigError

    assert cnn._autocast_dtype(torch.device("cuda")) == torch.bfloat16  # how CUDA trains
    assert cnn._autocast_dtype(torch.device("cpu")) is None  # so compile=true on the CPU runs
    # CUDA's autocast on this CPU-only machine: the refusal comes before any compiling or training
    monkeypatch.setattr(cnn, "_autocast_dtype", lambda device: torch.bfloat16)
    x, y = torch.zeros(8, 3, 32, 32, dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ConfigError, match="compile=true with bf16 autocast .* use compile=false") as info:
        train_cnn(FastCNN(3, 10, (4, 4, 4)), (x, y), tiny_settings(compile=True), generator=torch.Generator())
    assert "\n" not in str(info.value)
