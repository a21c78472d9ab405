"""Pruning a stacked trial member by member: the tune's pruner asked about each member alone.

A recipe that trains several models as one (mnist-grid's stacks) reports every member's
validation numbers through the one hook, ``Run.report_epoch(epoch, members={name: {...}})``.
Optuna prunes whole trials, so each member is put to the tune's own pruner as the trial
would look if that member were all of it: a copy of the running trial whose intermediate
values are the member's curve (``pruner.prune(study, frozen_trial)``, Optuna's pruner
interface). A member the pruner gives up on stops training; the others go on.

The trial's own curve, what later trials' members are compared against, is its best member
at each epoch (:meth:`MemberPruning.report_curve`, written when the trial ends): the trial's
objective is its best member's number too.

Hyperband keeps its rung bookkeeping in the trial's system attributes, one set per trial,
so with member pruning the real trial's rung records follow whichever member asked last;
the median pruner reads only finished trials and has no such caveat.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Mapping


class MemberPruning:
    """The member curves of one running Optuna trial and the pruner's verdict on each member.

    Thread-safe: a recipe's stacks train on worker threads and report as their epochs end.
    """

    def __init__(self, trial: Any, metric: str, mode: str):
        self.trial = trial
        """The running ``optuna.Trial`` the members belong to."""
        self.metric = metric
        """The validation number the members are judged by."""
        self.mode = mode
        """max or min: which member is the best at an epoch."""
        self.curves: dict[str, dict[int, float]] = {}
        """Member name -> {epoch: metric}, as reported."""
        self._lock = threading.Lock()

    def give_up(self, step: int, members: Mapping[str, Mapping[str, float]]) -> set[str]:
        """Record every member's number at epoch ``step``; return the members the pruner gives up on."""
        given_up = set()
        with self._lock:
            for name, values in members.items():
                if self.metric not in values:
                    continue
                curve = self.curves.setdefault(name, {})
                curve[step] = float(values[self.metric])
                if self.trial.study.pruner.prune(self.trial.study, self._as_trial(name, curve)):
                    given_up.add(name)
        return given_up

    def _as_trial(self, name: str, curve: dict[int, float]) -> Any:
        """The running trial as the pruner would see it if member ``name`` were all of it."""
        from optuna.trial import FrozenTrial, TrialState

        t = self.trial
        return FrozenTrial(number=t.number, state=TrialState.RUNNING, value=None, datetime_start=t.datetime_start,
                           datetime_complete=None, params=dict(t.params), distributions=dict(t.distributions),
                           user_attrs={**t.user_attrs, "member": name}, system_attrs={},
                           intermediate_values=dict(curve), trial_id=t._trial_id)

    def best_curve(self) -> dict[int, float]:
        """The trial's curve: at every reported epoch, the best finite number of any member."""
        pick = max if self.mode == "max" else min
        steps = sorted({step for curve in self.curves.values() for step in curve})
        best = {}
        for step in steps:
            values = [c[step] for c in self.curves.values() if step in c and math.isfinite(c[step])]
            if values:
                best[step] = pick(values)
        return best

    def report_curve(self) -> None:
        """Write the best-member curve as the trial's intermediate values (once, as the trial ends)."""
        for step, value in self.best_curve().items():
            self.trial.report(value, step)


__all__ = ["MemberPruning"]
