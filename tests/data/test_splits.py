import torch

from trainlab.data import device_splits, describe_splits, load_images


def test_splits_cover_the_training_images_once_and_are_seeded():
    data = load_images("digits")
    cpu = torch.device("cpu")
    splits = device_splits(data, cpu, val_fraction=0.25, seed=3)
    n_train, n_val = len(splits["train"][1]), len(splits["val"][1])
    assert n_train + n_val == len(data.train_labels)
    assert abs(n_val - 0.25 * len(data.train_labels)) <= 1
    assert len(splits["test"][1]) == len(data.test_labels)
    x, y = splits["train"]
    assert x.dtype == torch.float32 and x.shape[1] == 64 and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.int64
    # train + validation is a permutation of the training images: each used exactly once
    joined = torch.cat([splits["train"][0], splits["val"][0]]) * 255
    original = torch.as_tensor(data.train_images.reshape(len(data.train_labels), -1), dtype=torch.float32)
    assert sorted(map(tuple, joined.round().tolist())) == sorted(map(tuple, original.tolist()))
    again = device_splits(data, cpu, val_fraction=0.25, seed=3)
    assert torch.equal(again["val"][0], splits["val"][0])
    assert not torch.equal(device_splits(data, cpu, val_fraction=0.25, seed=4)["val"][0], splits["val"][0])


def test_classes_are_relabelled_and_train_limit_caps_before_the_split():
    data = load_images("digits")
    splits = device_splits(data, torch.device("cpu"), classes=[7, 3], train_limit=100, seed=0)
    assert len(splits["train"][1]) + len(splits["val"][1]) == 100
    for _, y in splits.values():
        assert set(y.tolist()) == {0, 1}  # 7 -> 0, 3 -> 1
    test_x, test_y = splits["test"]
    expected = int(((data.test_labels == 7) | (data.test_labels == 3)).sum())
    assert len(test_y) == expected
    n_train, n_val = len(splits["train"][1]), len(splits["val"][1])
    assert describe_splits(data, splits) == (
        f"digits ({data.source}): {n_train} train, {n_val} validation, {expected} test images")


def test_train_on_val_trains_on_both_parts_and_keeps_the_held_out_part():
    data = load_images("digits")
    cpu = torch.device("cpu")
    plain = device_splits(data, cpu, classes=[1, 2], train_limit=200, seed=5)
    refit = device_splits(data, cpu, classes=[1, 2], train_limit=200, seed=5, train_on_val=True)
    for i in (0, 1):  # images, labels: the plain split's training part, then its validation part
        assert torch.equal(refit["train"][i], torch.cat([plain["train"][i], plain["val"][i]]))
        assert torch.equal(refit["val"][i], plain["val"][i]) and torch.equal(refit["test"][i], plain["test"][i])
