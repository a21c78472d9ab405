"""TensorBoard event files in the run folder's ``tb/``: scalars, summary + config as hparams, figures.

``tensorboard --logdir runs`` then shows every run; a sweep's trials are ``tb/<trial folder>/``.
``tb/`` is always written whole from the folder: :func:`staged` replaces it only once the new
one is complete (``trainlab export``), and :func:`fresh` starts it again for a live run, so
exporting twice never doubles a scalar.
"""

from __future__ import annotations

import os
import shutil
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from trainlab.export import source
from trainlab.export.records import Scalar, numbers

LOGDIR = "tb"

# PNG colour type -> TensorBoard colour space (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA); palette PNGs show as RGB.
_COLOURS = {0: 1, 4: 2, 2: 3, 3: 3, 6: 4}


class TensorBoardSink:
    """One run folder's event file in ``logdir``."""

    NAME = "tensorboard"

    def __init__(self, folder: Path, logdir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = folder
        self.logdir = logdir
        self.writer = SummaryWriter(log_dir=str(logdir))

    def scalars(self, items: Sequence[Scalar]) -> None:
        for item in items:
            self.writer.add_scalar(item.tag, item.value, item.step)

    def trial(self, folder: Path) -> "TensorBoardSink":
        return TensorBoardSink(folder, self.logdir / folder.name)

    def finish(self) -> None:
        """The summary as ``summary/<key>`` scalars (step 0) and, with the config, as hparams; the figures."""
        from torch.utils.tensorboard.summary import hparams

        summary = source.summary(self.folder)
        measured = {f"summary/{k}": v for k, v in numbers(summary).items()}
        for tag, value in measured.items():
            self.writer.add_scalar(tag, value, 0)
        for key, value in summary.items():
            if isinstance(value, (str, bool)):
                self.writer.add_text(f"summary/{key}", str(value), 0)
        for part in hparams(source.params(self.folder), measured):
            self.writer.file_writer.add_summary(part)
        for png in source.figures(self.folder):
            self.writer.file_writer.add_summary(_image(f"figures/{png.stem}", png.read_bytes()), 0)
        self.writer.close()


def _image(tag: str, png: bytes):
    """An image summary holding the PNG file's own bytes (no decoding, nothing lost)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    width, height = struct.unpack(">II", png[16:24])
    image = Summary.Image(height=height, width=width, colorspace=_COLOURS.get(png[25], 4), encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


@contextmanager
def staged(folder: Path) -> Iterator[Path]:
    """A new log folder that replaces ``folder/tb`` once the block ends without an error."""
    target = folder / LOGDIR
    staging = folder / f".{LOGDIR}.{os.getpid()}.new"
    old = folder / f".{LOGDIR}.{os.getpid()}.old"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def fresh(folder: Path) -> Path:
    """``folder/tb`` emptied for a live logger, which sends the folder's records from the first."""
    target = folder / LOGDIR
    shutil.rmtree(target, ignore_errors=True)
    return target
