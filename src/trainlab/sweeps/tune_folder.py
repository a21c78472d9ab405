"""The tune folder's own files (``tune.json``, ``study.db``): names, readers and the study's
opener that the tune runner, its report, the API and recipes that tune inside a run share
(a leaf: importing it runs no experiment code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError
from trainlab.files import read_json
from trainlab.report.folder import RUN_INFO

SPEC_FILE = "tune.json"
STUDY_FILE = "study.db"
STUDY_NAME = "trainlab"
"""The study's name inside ``study.db``: ``optuna.load_study(study_name="trainlab", storage=...)``."""


def study_url(path: Path) -> str:
    """The SQLAlchemy URL of tune folder ``path``'s study (what Optuna and optuna-dashboard take)."""
    return f"sqlite:///{(Path(path) / STUDY_FILE).resolve()}"


def read_spec(path: Path) -> dict[str, Any]:
    """A tune folder's ``tune.json``, or one ConfigError line when it is not a tune folder."""
    spec = read_json(path / SPEC_FILE) if (path / SPEC_FILE).is_file() and (path / RUN_INFO).is_file() else None
    if not isinstance(spec, dict) or not {"experiment", "space", "metric", "mode"} <= spec.keys():
        raise ConfigError(f"{path} is not a tune folder (no readable {SPEC_FILE}); pass the folder trainlab tune printed")
    return spec


def open_study(path: Path, spec: dict[str, Any], pruner: Any = None, seed_offset: int = 0) -> Any:
    """The Optuna study in ``path/study.db`` (created on first use), optimising in ``spec["mode"]``
    with Optuna's ``pruner`` (None: none); the sampler is TPE seeded from ``spec["seed"]`` (plus
    ``seed_offset``, so a resumed tune does not propose its first trials again)."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=int(spec.get("seed", 0)) + seed_offset)
    return optuna.create_study(
        storage=study_url(path), study_name=STUDY_NAME, load_if_exists=True,
        direction="maximize" if spec["mode"] == "max" else "minimize", sampler=sampler,
        pruner=pruner if pruner is not None else optuna.pruners.NopPruner(),
    )
