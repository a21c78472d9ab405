"""Batched image augmentation on the device: random translation (crop with padding) and flips.

Every function takes a whole batch (or a whole training set) of images
``(N, C, H, W)`` of any dtype -- uint8 included, so images can stay uint8 on
the device until they are fed to a network -- and draws its randomness from an
explicit ``torch.Generator``. Nothing loops over samples: a translation is two
``gather`` calls with per-sample index rows, a flip is one ``torch.where``.
"""

from __future__ import annotations

import torch

PADDING_MODES = ("reflect", "zeros")


def _source_index(length: int, shifts: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-sample source positions (N, length) for output positions 0..length-1 moved by ``shifts``.

    Returns the indices to gather and, for zero padding, the mask of positions that
    fall inside the image (None for reflect padding, where every position is valid).
    """
    index = torch.arange(length, device=shifts.device) + shifts[:, None]
    if mode == "reflect":
        index = index.abs()  # -1 -> 1, -2 -> 2 (reflect without repeating the edge pixel)
        index = torch.where(index > length - 1, 2 * (length - 1) - index, index)
        return index, None
    inside = (index >= 0) & (index < length)
    return index.clamp(0, length - 1), inside


def translate(images: torch.Tensor, shifts: torch.Tensor, padding_mode: str = "reflect") -> torch.Tensor:
    """Move image ``i`` by ``shifts[i] = (dy, dx)`` pixels: ``out[.., y, x] = in[.., y + dy, x + dx]``.

    Pixels brought in from outside the image are mirrored (``reflect``, the edge
    pixel not repeated, as ``F.pad(mode="reflect")``) or zero (``zeros``). This is
    exactly a crop at offset ``(p + dy, p + dx)`` of the image padded by ``p``.
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode={padding_mode!r} is not one of {', '.join(PADDING_MODES)}")
    n, c, h, w = images.shape
    shifts = shifts.to(images.device)
    rows, row_inside = _source_index(h, shifts[:, 0], padding_mode)
    cols, col_inside = _source_index(w, shifts[:, 1], padding_mode)
    # Expanded indices are views (stride 0): no (N, C, H, W) index tensor is materialised.
    out = images.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    out = out.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    if padding_mode == "zeros":
        inside = row_inside[:, None, :, None] & col_inside[:, None, None, :]
        out = out.masked_fill(~inside, 0)
    return out


def random_shifts(n: int, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) integer shifts, each uniform in ``-max_shift..max_shift``, on the generator's device."""
    return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator, device=generator.device)


def random_translate(images: torch.Tensor, max_shift: int, generator: torch.Generator,
                     padding_mode: str = "reflect") -> torch.Tensor:
    """Translate every image by its own random (dy, dx) in ``-max_shift..max_shift``.

    With ``padding_mode="zeros"`` this is the classic "pad by ``max_shift`` with zeros,
    then crop at a random offset"; ``reflect`` (airbench's choice) fills with mirrored pixels.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return images
    if padding_mode == "reflect" and max_shift >= min(images.shape[-2:]):
        raise ValueError(f"reflect padding needs max_shift < image size {tuple(images.shape[-2:])}")
    return translate(images, random_shifts(images.shape[0], max_shift, generator), padding_mode)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half (each image with probability 1/2) left to right."""
    flip = torch.rand(images.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(-1), images)


def augment(images: torch.Tensor, generator: torch.Generator, *, flip: bool = True, max_shift: int = 2,
            padding_mode: str = "reflect") -> torch.Tensor:
    """Random flip (if ``flip``) then random translation by up to ``max_shift`` pixels."""
    if flip:
        images = random_flip(images, generator)
    return random_translate(images, max_shift, generator, padding_mode)
