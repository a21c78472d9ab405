"""The tune folder's own files (``tune.json``, ``study.db``): names and readers that the tune
runner, its report and the API share."""

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
