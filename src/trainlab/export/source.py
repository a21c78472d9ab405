"""What the exporters read from a run or sweep folder (the one source of truth), confined to it.

The readers are the report's and the API's (:mod:`trainlab.report.folder`); :class:`Tail` adds reading metrics.jsonl
a piece at a time, so that a live logger sends each record once, as it is appended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError
from trainlab.export.records import Scalar, flatten, scalars
from trainlab.files import jsonl_record
from trainlab.report.folder import RUN_INFO, config_values, inside, read_checked, run_info_problem, summary_problem

METRICS = "metrics.jsonl"
# A sweep folder's marker and its trials' folder, as the sweeps package writes them
# (literals: the exporter reads folders, it does not import the sweep runner).
SWEEP_SPEC = "sweep.json"
TRIALS = "trials"
ARTIFACTS = ("tables", "figures", "report.html", "report.md", "summary.json", "config.yaml", METRICS)
"""What of a run folder MLflow keeps as artifacts (checkpoints stay in the folder: they can be large)."""


def run_folder(folder: str | Path) -> Path:
    """``folder`` if it is a run or sweep folder, else one line naming the fix."""
    folder = Path(folder)
    if not (folder / RUN_INFO).is_file():
        raise ConfigError(f"{folder} is not a run folder (no {RUN_INFO}); trainlab runs lists them")
    return folder


def is_sweep(folder: Path) -> bool:
    return (folder / SWEEP_SPEC).is_file()


def trial_folders(sweep: Path) -> list[Path]:
    """A sweep's trial run folders (every attempt, in the order they started)."""
    found = [inside(sweep, str(p.parent.relative_to(sweep))) for p in (sweep / TRIALS).glob(f"*/*/{RUN_INFO}")]
    return sorted(found, key=lambda p: p.name)


def info(folder: Path) -> dict[str, Any]:
    return dict(read_checked(inside(folder, RUN_INFO), {}, run_info_problem))


def summary(folder: Path) -> dict[str, Any]:
    return dict(read_checked(inside(folder, "summary.json"), {}, summary_problem))


def params(folder: Path) -> dict[str, str | int | float | bool]:
    """The resolved config, flattened (``a.b`` keys; lists as JSON text)."""
    return flatten(config_values(folder))


def figures(folder: Path) -> list[Path]:
    return [inside(folder, f"figures/{png.name}") for png in sorted(folder.glob("figures/*.png"))]


class Tail:
    """metrics.jsonl read onwards from where the last :meth:`read` stopped."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.offset = 0
        self.count = 0
        """Records read so far: the index (x axis) of a record without step, epoch or t."""

    def read(self, final: bool = False) -> list[Scalar]:
        """The scalars of the whole lines appended since the last call; ``final`` also takes an
        unterminated last line (a finished run's file is complete; a live one may be mid-write)."""
        path = inside(self.folder, METRICS)
        try:
            with open(path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = len(data) if final else data.rfind(b"\n") + 1
        self.offset += end
        out: list[Scalar] = []
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            record = jsonl_record(line)
            if record is not None:
                out += scalars(record, self.count)
                self.count += 1
        return out
