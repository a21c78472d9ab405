"""cifar-scaling's per-size tune: a validation split carved from one training subset, and an
Optuna search of the CNN's settings on it.

The study asked to "tune the hyper-parameters as best as you can" for each training-set size.
A size's tune only ever sees that size's images (the test set never): its trials train on most
of them and are scored on the rest (:func:`validation_split`), and the settings with the best
validation accuracy then train on all of them. One image per class leaves nothing to hold out
(a held-out image's class would be missing from training, so leave-one-out or k-fold scores
nothing), so that size is scored on ``extra`` images per class drawn from the rest of the
training set: labelled images beyond the size's own, said in the report.

The search is the tune command's (:func:`trainlab.sweeps.tune_folder.open_study`: TPE seeded from
the run's seed, the study in SQLite, here one per size and seed in the run folder's
``tunes/``); its first trial is the untuned settings, so a tuned size never chooses worse on
validation than the untuned one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from trainlab.data import per_class

if TYPE_CHECKING:
    from trainlab.sweeps.space import Param

SEARCHED = ("lr", "weight_decay", "length", "translate")
"""The searched settings (:func:`search_space`); ``length`` multiplies the untuned training steps."""
TUNES_DIR = "tunes"
"""The run folder's folder of per-size studies: ``tunes/<job>/study.db`` (optuna-dashboard opens each)."""


@dataclass
class ValidationSplit:
    """Where one subset's trials train and where they are scored (indices into the training set)."""

    fit: np.ndarray
    """The images each trial trains on."""
    val: np.ndarray
    """The images each trial is scored on; disjoint from ``fit`` and from the test set."""
    extra: bool
    """Whether ``val`` lies outside the subset (one image per class: extra labelled images)."""


def validation_split(labels: np.ndarray, subset: np.ndarray, fraction: float, extra_per_class: int,
                     seed: int) -> ValidationSplit:
    """Hold out ``fraction`` of each class of ``subset`` (at least one image, and at least one
    left to train on); a subset with a class of one image is scored instead on
    ``extra_per_class`` images per class from outside it."""
    counts = np.bincount(labels[subset])
    smallest = int(counts[counts > 0].min())
    if smallest >= 2:
        held = min(smallest - 1, max(1, round(fraction * smallest)))
        local = per_class(labels[subset], held, seed=seed)
        return ValidationSplit(fit=np.delete(subset, local), val=subset[local], extra=False)
    rest = np.setdiff1d(np.arange(len(labels)), subset)
    return ValidationSplit(fit=subset, val=rest[per_class(labels[rest], extra_per_class, seed=seed)], extra=True)


def search_space(lr: float, weight_decay: float, translate: int) -> list[Param]:
    """The searched settings around the untuned ones: learning rate and weight decay (log scale,
    weight decay reaching further up, where small sets need it), the training length as a
    multiple of the untuned number of steps, and the augmentation's translation in pixels."""
    from trainlab.sweeps.space import Param  # here: the sweeps package imports the recipes

    return [Param("lr", "loguniform", lr / 4, lr * 4, log=True),
            Param("weight_decay", "loguniform", weight_decay / 4, weight_decay * 8, log=True),
            Param("length", "loguniform", 0.5, 2.0, log=True),
            Param("translate", "int", 0, max(4, translate))]


def tune(score: Callable[[dict[str, Any]], float], space: list[Param], untuned: dict[str, Any], trials: int,
         folder: Path, seed: int) -> tuple[dict[str, Any], float, float]:
    """Search ``space`` for ``trials`` trials, each scored by ``score(settings)`` (a validation
    accuracy, higher is better), the first with the ``untuned`` settings; return the best
    settings, their score and the untuned settings' score.

    The study lives in ``folder/study.db``: a finished one (a resumed run) gives its best trial at
    once; an unfinished one starts again, so that a resumed run chooses what an uninterrupted one
    chooses (the sampler's draws depend on every trial before).
    """
    import optuna

    from trainlab.sweeps.tune_folder import STUDY_NAME, open_study, study_url  # here, as Param

    folder.mkdir(parents=True, exist_ok=True)
    spec = {"mode": "max", "seed": seed}
    study = open_study(folder, spec)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if study.trials and len(done) < trials:
        optuna.delete_study(study_name=STUDY_NAME, storage=study_url(folder))
        study = open_study(folder, spec)
    if not study.trials:
        study.enqueue_trial(untuned)

        def objective(trial: optuna.Trial) -> float:
            for param in space:
                param.suggest(trial)
            return score(dict(trial.params))

        study.optimize(objective, n_trials=trials)
    return dict(study.best_trial.params), float(study.best_value), float(study.trials[0].value)
