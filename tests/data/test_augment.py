"""Batched augmentation against a per-image oracle built from F.pad and slicing."""

import pytest
import torch
import torch.nn.functional as F

from trainlab.data.augment import augment, random_flip, random_shifts, random_translate, translate


def _images(n=16, c=3, h=9, w=7, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g).to(dtype)


def _oracle(images, shifts, mode):
    """Pad each image by r with F.pad, crop at (r + dy, r + dx): the textbook crop-with-padding."""
    r = int(shifts.abs().max())
    h, w = images.shape[-2:]
    out = []
    for img, (dy, dx) in zip(images.float(), shifts.tolist()):
        padded = F.pad(img[None], (r, r, r, r), mode="reflect" if mode == "reflect" else "constant")[0]
        out.append(padded[:, r + dy : r + dy + h, r + dx : r + dx + w])
    return torch.stack(out).to(images.dtype)


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
@pytest.mark.parametrize("c", [1, 3])
def test_translate_matches_pad_and_crop(mode, c):
    images = _images(c=c)
    shifts = random_shifts(len(images), 3, torch.Generator().manual_seed(1))
    got = translate(images, shifts, mode)
    assert got.dtype == torch.uint8 and got.shape == images.shape
    assert torch.equal(got, _oracle(images, shifts, mode))


def test_zero_shift_is_identity_and_all_shifts_occur():
    images = _images(n=400)
    assert torch.equal(translate(images, torch.zeros(400, 2, dtype=torch.long)), images)
    shifts = random_shifts(400, 2, torch.Generator().manual_seed(0))
    assert set(shifts[:, 0].tolist()) == set(shifts[:, 1].tolist()) == {-2, -1, 0, 1, 2}
    assert torch.equal(random_translate(images, 0, torch.Generator()), images)


def test_random_translate_is_seeded():
    images = _images()
    a = random_translate(images, 2, torch.Generator().manual_seed(5))
    b = random_translate(images, 2, torch.Generator().manual_seed(5))
    c = random_translate(images, 2, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_mirrors_about_half_and_keeps_the_rest():
    images = _images(n=1000, c=1, h=4, w=5)
    out = random_flip(images, torch.Generator().manual_seed(0))
    flipped = (out == images.flip(-1)).flatten(1).all(1)
    kept = (out == images).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert 430 < int((flipped & ~kept).sum()) < 570


def test_augment_keeps_pixels_from_the_image():
    """Reflect-translated, flipped images hold only values of their own source image."""
    images = _images(n=8, c=1, h=6, w=6)
    out = augment(images, torch.Generator().manual_seed(0), flip=True, max_shift=2)
    for src, dst in zip(images, out):
        assert set(dst.unique().tolist()) <= set(src.unique().tolist())


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding_mode"):
        translate(_images(), torch.zeros(16, 2, dtype=torch.long), "edge")
    with pytest.raises(ValueError, match="max_shift < image size"):
        random_translate(_images(h=3, w=3), 3, torch.Generator())
